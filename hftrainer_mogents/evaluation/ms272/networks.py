"""The MotionStreamer-272 evaluator networks (TMR-style), with the official parameter names.

- :class:`MotionEncoder` (upstream ``ActorAgnosticEncoder(nfeats=272, vae=True)``): a linear
  embedding of the 272 features, two learned tokens (``mu``, ``logvar``) put in front, sinusoidal
  positions, a post-norm transformer encoder (sequence first); the embedding is the output at the
  ``mu`` token.
- :class:`TextEncoder` (upstream ``DistilbertActorAgnosticEncoder``): a frozen DistilBERT (from
  transformers), ``ReLU`` then a linear projection, and the same token/transformer stack.

Both return the ``mu`` embedding (the ``.loc`` of upstream's Normal) and ``logvar``. Shape symbols:
``B`` batch, ``T`` frames, ``L`` text tokens, ``D`` latent width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hftrainer_mogents.config import _ConfigBase

__all__ = [
    "MS272EvaluatorConfig",
    "PositionalEncoding",
    "TokenTransformer",
    "MotionEncoder",
    "TextEncoder",
    "EncoderOutput",
    "build_text_model",
]


@dataclass
class MS272EvaluatorConfig(_ConfigBase):
    """Sizes of the evaluator (defaults: the released ``epoch=99.ckpt``).

    Attributes:
        latent_dim: embedding width ``D``.
        ff_size: feed-forward width of the transformer layers.
        num_layers: transformer layers (each encoder).
        num_heads: attention heads (4: the training config's ``num_head: 6`` is a misspelt key
            that upstream ignores).
        dropout: dropout (inactive at evaluation).
        activation: transformer activation.
        nfeats: motion feature width.
        max_len: frames of the padded motion input upstream (300).
        pe_len: rows of the positional-encoding buffer.
        text_model: hub id of the DistilBERT the text encoder was built on.
    """

    latent_dim: int = 256
    ff_size: int = 1024
    num_layers: int = 4
    num_heads: int = 4
    dropout: float = 0.1
    activation: str = "gelu"
    nfeats: int = 272
    max_len: int = 300
    pe_len: int = 5000
    text_model: str = "distilbert-base-uncased"


@dataclass
class EncoderOutput:
    """Output of the encoders.

    Attributes:
        mu: (B, D) the embedding.
        logvar: (B, D).
    """

    mu: torch.Tensor
    logvar: torch.Tensor


class PositionalEncoding(nn.Module):
    """Sinusoidal positions added to a sequence-first input; ``pe`` is in the checkpoint."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe[:, None, :])  # (max_len, 1, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (S, B, D). Returns: (S, B, D)."""
        return self.dropout(x + self.pe[: x.shape[0]])


class TokenTransformer(nn.Module):
    """``mu``/``logvar`` tokens + positions + transformer encoder: the part both encoders share."""

    def __init__(self, config: MS272EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        d = config.latent_dim
        self.mu_token = nn.Parameter(torch.randn(d))
        self.logvar_token = nn.Parameter(torch.randn(d))
        self.sequence_pos_encoding = PositionalEncoding(d, config.pe_len, config.dropout)
        layer = nn.TransformerEncoderLayer(
            d_model=d,
            nhead=config.num_heads,
            dim_feedforward=config.ff_size,
            dropout=config.dropout,
            activation=config.activation,
        )
        self.seqTransEncoder = nn.TransformerEncoder(  # noqa: N815 - checkpoint name
            layer, num_layers=config.num_layers, enable_nested_tensor=False
        )

    def encode_tokens(self, x: torch.Tensor, mask: torch.Tensor) -> EncoderOutput:
        """Args:
            x: (B, S, D) embedded inputs.
            mask: (B, S) True where valid.

        Returns:
            :class:`EncoderOutput` from the two leading tokens.
        """
        bsz = x.shape[0]
        tokens = torch.stack((self.mu_token, self.logvar_token))[:, None].expand(2, bsz, -1)
        xseq = torch.cat((tokens.to(x.dtype), x.transpose(0, 1)), dim=0)  # (2 + S, B, D)
        aug = torch.cat((mask.new_ones(bsz, 2), mask), dim=1)  # (B, 2 + S)
        xseq = self.sequence_pos_encoding(xseq)
        out = self.seqTransEncoder(xseq, src_key_padding_mask=~aug)
        return EncoderOutput(mu=out[0], logvar=out[1])


class MotionEncoder(TokenTransformer):
    """Upstream ``ActorAgnosticEncoder(nfeats=272, vae=True)``: embeds normalised 272 features."""

    def __init__(self, config: MS272EvaluatorConfig) -> None:
        super().__init__(config)
        self.skel_embedding = nn.Linear(config.nfeats, config.latent_dim)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """Args:
            features: (B, T, 272) normalised features, zero after each length.
            lengths: (B,) valid frames.

        Returns:
            :class:`EncoderOutput`; the embedding is ``mu`` (B, D).
        """
        frames = features.shape[1]
        mask = (
            torch.arange(frames, device=features.device)[None]
            < lengths.to(features.device)[:, None]
        )
        return self.encode_tokens(self.skel_embedding(features), mask)


class TextEncoder(TokenTransformer):
    """Upstream ``DistilbertActorAgnosticEncoder(finetune=False, vae=True)``.

    ``text_model`` is a transformers ``DistilBertModel`` (its weights are in the evaluator
    checkpoint); it is frozen and stays in eval mode.
    """

    def __init__(self, config: MS272EvaluatorConfig, text_model: nn.Module) -> None:
        super().__init__(config)
        self.text_model = text_model
        hidden = int(text_model.config.dim)
        self.projection = nn.Sequential(nn.ReLU(), nn.Linear(hidden, config.latent_dim))
        for p in self.text_model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> TextEncoder:
        """Train mode for everything but the frozen DistilBERT (as upstream)."""
        super().train(mode)
        self.text_model.eval()
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        """Args:
            input_ids: (B, L) token ids (with ``[CLS]``/``[SEP]``), padded.
            attention_mask: (B, L) 1 where valid.

        Returns:
            :class:`EncoderOutput`; the embedding is ``mu`` (B, D).
        """
        hidden = self.text_model(input_ids=input_ids, attention_mask=attention_mask)
        x = self.projection(hidden.last_hidden_state)  # (B, L, D)
        return self.encode_tokens(x, attention_mask.bool())


def build_text_model(config_or_path: Any) -> nn.Module:
    """An untrained ``DistilBertModel`` from a transformers config (weights come from the
    evaluator checkpoint)."""
    from transformers import AutoConfig, AutoModel

    cfg = config_or_path
    if not hasattr(cfg, "model_type"):
        cfg = AutoConfig.from_pretrained(config_or_path)
    return AutoModel.from_config(cfg)
