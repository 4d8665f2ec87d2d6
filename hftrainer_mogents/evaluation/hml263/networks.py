"""The three networks of the HumanML3D-263 text-to-motion evaluator (Guo et al., 2022).

Module and parameter names are those of the official ``text_mot_match/model/finest.tar`` state
dicts (``movement_encoder``, ``text_encoder``, ``motion_encoder``), so they load with
``strict=True`` and no renaming.

Shape symbols: ``B`` batch, ``T`` frames, ``T4 = T // 4`` movement steps, ``L`` caption tokens
(sos and eos included), ``C`` pose channels without the foot contacts (259), ``W`` word width
(300), ``P`` POS classes (15), ``D`` embedding width.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from hftrainer_mogents.config import _ConfigBase
from hftrainer_mogents.errors import ArtifactFormatError

__all__ = [
    "HML263EvaluatorConfig",
    "MovementConvEncoder",
    "TextEncoderBiGRUCo",
    "MotionEncoderBiGRUCo",
    "HML263EvaluatorNetworks",
    "config_from_state_dicts",
]

FOOT_CONTACT_CHANNELS = 4  # the last channels of HumanML3D-263; the evaluator does not see them
LEAKY_SLOPE = 0.2


@dataclass
class HML263EvaluatorConfig(_ConfigBase):
    """Sizes of the evaluator (defaults: the published HumanML3D evaluator).

    ``dim_motion_hidden``, ``dim_text_hidden`` and ``dim_coemb_hidden`` are hard-coded by the
    official wrapper; the movement sizes come from ``Comp_v6_KLD005/opt.txt``.
    """

    dim_pose: int = 263
    dim_word: int = 300
    dim_pos_ohot: int = 15
    dim_movement_enc_hidden: int = 512
    dim_movement_latent: int = 512
    dim_text_hidden: int = 512
    dim_motion_hidden: int = 1024
    dim_coemb_hidden: int = 512
    unit_length: int = 4  # frames per movement step (two stride-2 convolutions)
    max_text_len: int = 20  # caption tokens kept, before sos/eos
    max_motion_length: int = 196  # longest crop of the test protocol, in frames

    @property
    def movement_input_size(self) -> int:
        """Channels the movement encoder reads (the pose without the foot contacts)."""
        return self.dim_pose - FOOT_CONTACT_CHANNELS


class MovementConvEncoder(nn.Module):
    """Two stride-2 1D convolutions and a per-step linear layer: ``(B, T, C) -> (B, T4, L_m)``."""

    def __init__(self, config: HML263EvaluatorConfig):
        super().__init__()
        self.config = config
        hidden, latent = config.dim_movement_enc_hidden, config.dim_movement_latent
        self.main = nn.Sequential(
            nn.Conv1d(config.movement_input_size, hidden, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv1d(hidden, latent, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        )
        self.out_net = nn.Linear(latent, latent)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Args:
            inputs: ``(B, T, C)`` normalised poses without foot contacts.

        Returns:
            ``(B, T4, dim_movement_latent)`` movement features (``T4 = floor(T / 4)`` for ``T``
            a multiple of 4).
        """
        x = self.main(inputs.permute(0, 2, 1))  # (B, C, T) -> (B, latent, T4)
        return self.out_net(x.permute(0, 2, 1))  # (B, T4, latent)


def _bigru_head(hidden: int, out_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(2 * hidden, hidden),
        nn.LayerNorm(hidden),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        nn.Linear(hidden, out_size),
    )


def _run_bigru(
    gru: nn.GRU, hidden: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Final states of a bidirectional GRU over the valid steps of each sequence.

    Args:
        gru: the bidirectional GRU (batch first).
        hidden: ``(2, 1, H)`` learned initial state of both directions.
        x: ``(B, S, H)`` inputs, padded after each sequence's length.
        lengths: ``(B,)`` valid steps (>= 1), any order.

    Returns:
        ``(B, 2H)``: the forward state after the last valid step, then the backward state after
        step 0.
    """
    h0 = hidden.expand(-1, x.shape[0], -1).contiguous()  # (2, B, H)
    lengths = lengths.to("cpu", torch.int64)
    if bool((lengths == x.shape[1]).all()):
        # no padding: the dense call computes the same states on a faster path
        _, h_n = gru(x, h0)  # (2, B, H)
    else:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h_n = gru(packed, h0)  # (2, B, H), back in input order
    return torch.cat([h_n[0], h_n[1]], dim=-1)


class TextEncoderBiGRUCo(nn.Module):
    """Caption encoder: word vector + POS embedding -> bidirectional GRU -> ``(B, D)``."""

    def __init__(self, config: HML263EvaluatorConfig):
        super().__init__()
        self.config = config
        hidden = config.dim_text_hidden
        self.pos_emb = nn.Linear(config.dim_pos_ohot, config.dim_word)
        self.input_emb = nn.Linear(config.dim_word, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.output_net = _bigru_head(hidden, config.dim_coemb_hidden)
        self.hidden = nn.Parameter(torch.zeros(2, 1, hidden))

    def forward(
        self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, cap_lens: torch.Tensor
    ) -> torch.Tensor:
        """Args:
            word_embs: ``(B, L, W)`` word vectors (sos, tokens, eos, then padding).
            pos_onehot: ``(B, L, P)`` POS one-hots.
            cap_lens: ``(B,)`` valid tokens per caption, sos and eos included (any order).

        Returns:
            ``(B, D)`` text embeddings.
        """
        x = self.input_emb(word_embs + self.pos_emb(pos_onehot))  # (B, L, H)
        return self.output_net(_run_bigru(self.gru, self.hidden, x, cap_lens))


class MotionEncoderBiGRUCo(nn.Module):
    """Motion encoder over movement features: bidirectional GRU -> ``(B, D)``."""

    def __init__(self, config: HML263EvaluatorConfig):
        super().__init__()
        self.config = config
        hidden = config.dim_motion_hidden
        self.input_emb = nn.Linear(config.dim_movement_latent, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.output_net = _bigru_head(hidden, config.dim_coemb_hidden)
        self.hidden = nn.Parameter(torch.zeros(2, 1, hidden))

    def forward(self, movements: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        """Args:
            movements: ``(B, T4, dim_movement_latent)`` from :class:`MovementConvEncoder`.
            m_lens: ``(B,)`` valid movement steps (frames // unit_length), any order.

        Returns:
            ``(B, D)`` motion embeddings.
        """
        x = self.input_emb(movements)  # (B, T4, H)
        return self.output_net(_run_bigru(self.gru, self.hidden, x, m_lens))


class HML263EvaluatorNetworks(nn.Module):
    """The three evaluator networks together; ``state_dict`` keys are
    ``movement_encoder.*``, ``text_encoder.*``, ``motion_encoder.*``."""

    def __init__(self, config: HML263EvaluatorConfig | None = None):
        super().__init__()
        self.config = config or HML263EvaluatorConfig()
        self.movement_encoder = MovementConvEncoder(self.config)
        self.text_encoder = TextEncoderBiGRUCo(self.config)
        self.motion_encoder = MotionEncoderBiGRUCo(self.config)

    def encode_text(
        self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, cap_lens: torch.Tensor
    ) -> torch.Tensor:
        """Args:
            word_embs: ``(B, L, W)``; pos_onehot: ``(B, L, P)``; cap_lens: ``(B,)``.

        Returns:
            ``(B, D)`` text embeddings.
        """
        return self.text_encoder(word_embs, pos_onehot, cap_lens)

    def encode_motion(self, motions: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        """Args:
            motions: ``(B, T, dim_pose)`` normalised poses, zero after each length, with
                ``T >= max(m_lens) + 2`` (the last movement step reads two frames past the end).
            m_lens: ``(B,)`` lengths in frames, multiples of ``unit_length``.

        Returns:
            ``(B, D)`` motion embeddings.
        """
        movements = self.movement_encoder(motions[..., :-FOOT_CONTACT_CHANNELS])  # (B, T4, L_m)
        steps = torch.div(m_lens, self.config.unit_length, rounding_mode="floor")
        # steps past the longest sequence are never read
        return self.motion_encoder(movements[:, : int(steps.max())], steps)


def config_from_state_dicts(
    state_dicts: dict[str, dict[str, Any]], **overrides: Any
) -> HML263EvaluatorConfig:
    """The evaluator sizes read from the shapes of its three state dicts.

    Args:
        state_dicts: ``{"movement_encoder": ..., "text_encoder": ..., "motion_encoder": ...}``.
        overrides: other fields (``unit_length``, ``max_text_len``, ...).

    Raises:
        ArtifactFormatError: a state dict lacks a key the sizes are read from.
    """

    def shape(module: str, key: str) -> tuple[int, ...]:
        try:
            return tuple(state_dicts[module][key].shape)
        except KeyError as err:
            raise ArtifactFormatError(
                f"evaluator weights: {module} has no {key!r} (keys: "
                f"{sorted(state_dicts.get(module, {}))[:8]}...)"
            ) from err

    conv0 = shape("movement_encoder", "main.0.weight")  # (hidden, C, 4)
    sizes = {
        "dim_pose": conv0[1] + FOOT_CONTACT_CHANNELS,
        "dim_movement_enc_hidden": conv0[0],
        "dim_movement_latent": shape("movement_encoder", "out_net.weight")[0],
        "dim_word": shape("text_encoder", "pos_emb.weight")[0],
        "dim_pos_ohot": shape("text_encoder", "pos_emb.weight")[1],
        "dim_text_hidden": shape("text_encoder", "hidden")[2],
        "dim_motion_hidden": shape("motion_encoder", "hidden")[2],
        "dim_coemb_hidden": shape("text_encoder", "output_net.3.weight")[0],
    }
    known = {f.name for f in dataclasses.fields(HML263EvaluatorConfig)}
    sizes.update({k: v for k, v in overrides.items() if k in known})
    return HML263EvaluatorConfig(**sizes)
