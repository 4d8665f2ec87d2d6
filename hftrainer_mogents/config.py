"""Configuration dataclasses of the MoGenTS networks and the ``mogents_config.json`` format.

Field names are the keys of the ``config`` blocks of ``mogents_config.json`` (format
``hftrainer-mogents-v1``, as the zoo publishes it) and defaults are the values of the released
HumanML3D model. Configs are tolerant: :meth:`from_dict` ignores unknown keys and fills missing ones
from the defaults, with a warning naming them. Weights, by contrast, are loaded strictly. Official ``opt.txt`` files are read by the converter
(:mod:`hftrainer_mogents.convert.official_opts`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from hftrainer_mogents.errors import ArtifactFormatError

__all__ = [
    "MODEL_TYPE",
    "FORMAT",
    "DEFAULT_REPO_ID",
    "DIM_POSE",
    "NUM_JOINTS",
    "UNIT_LENGTH",
    "MAX_MOTION_LENGTH",
    "MIN_MOTION_LENGTH",
    "FPS",
    "N_JOINT_GROUPS",
    "JOINT_CHANNELS",
    "floor_to_unit",
    "clamp_length",
    "VQConfig",
    "MaskTransformerConfig",
    "ResidualTransformerConfig",
    "LengthEstimatorConfig",
    "TextEncoderConfig",
    "MoGenTSConfig",
]

logger = logging.getLogger(__name__)

MODEL_TYPE = "mogents"
FORMAT = "hftrainer-mogents-v1"
# the zoo's published artifact: the default of from_pretrained, the CLI and the zoo spec
DEFAULT_REPO_ID = "ZeyuLing/hftrainer-mogents-humanml3d"

# HumanML3D's numbers, declared once here (motion/hml263.py imports them; the skeleton itself,
# joint names, parents, chains and feet, is declared there)
DIM_POSE = 263  # HumanML3D feature width
NUM_JOINTS = 22  # HumanML3D skeleton
UNIT_LENGTH = 4  # frames per token (VQ temporal downsampling)
MAX_MOTION_LENGTH = 196  # frames at 20 fps -> 49 tokens
MIN_MOTION_LENGTH = 40
FPS = 20
N_JOINT_GROUPS = 6  # spatial tokens per time step of the 2D stream ("J")
JOINT_CHANNELS = 12  # channels per joint slot of the 2D grid: ric 3 + rot6d 6 + vel 3


def floor_to_unit(frames: int, unit: int = UNIT_LENGTH) -> int:
    """``frames`` floored to a multiple of ``unit`` (the VQ's 4 frames per token)."""
    return (int(frames) // unit) * unit


def clamp_length(frames: int) -> int:
    """The generator's length rule: floor to a multiple of 4, then keep within [40, 196]."""
    return max(MIN_MOTION_LENGTH, min(MAX_MOTION_LENGTH, floor_to_unit(frames)))


C = TypeVar("C", bound="_ConfigBase")


class _ConfigBase:
    """to_dict / from_dict shared by the config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON block (plain types)."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any] | None, *, name: str = "") -> C:
        """Build from a JSON block; unknown keys are ignored and missing ones take the defaults,
        both with a warning."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        missing = sorted(known - set(data))
        label = name or cls.__name__
        if unknown:
            logger.warning("%s: ignoring unknown keys %s", label, unknown)
        if missing and data:
            logger.warning("%s: keys %s missing, using the defaults", label, missing)
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass
class VQConfig(_ConfigBase):
    """Dual-stream residual VQ-VAE (``config.vq``; the official ``pretrain_vq/opt.txt``)."""

    dataset_name: str = "humanml3d"
    code_dim1d: int = 512
    nb_code1d: int = 512
    code_dim2d: int = 1024
    nb_code2d: int = 256
    down_t: int = 2
    stride_t: int = 2
    width: int = 512
    depth: int = 3
    dilation_growth_rate: int = 3
    vq_act: str = "relu"
    vq_norm: str | None = None
    num_quantizers: int = 6
    shared_codebook: bool = False
    quantize_dropout_prob: float = 0.2
    mu: float = 0.99

    @property
    def joints_num(self) -> int:
        """Skeleton joints of the dataset (KIT-ML 21, otherwise 22)."""
        return 21 if self.dataset_name == "kit" else NUM_JOINTS

    @property
    def input_width(self) -> int:
        """Feature width: root 4 + ric 3(J-1) + rot 6(J-1) + vel 3J + feet 4 (263 for HumanML3D)."""
        j = self.joints_num
        return 4 + 3 * (j - 1) + 6 * (j - 1) + 3 * j + 4

    @property
    def joint_pad(self) -> tuple[int, int]:
        """Zero slots added (before, after) the joint axis of the 2D grid (22 -> 24; KIT 21 -> 24)."""
        return (1, 2) if self.dataset_name == "kit" else (1, 1)


@dataclass
class MaskTransformerConfig(_ConfigBase):
    """Mask transformers, aux (1D) and ts (2D) (``config.mask``; ``pretrain_mtrans/opt.txt``).

    Codebook size and code width come from :class:`VQConfig` (they are not in opt.txt).
    """

    latent_dim: int = 384
    ff_size: int = 1024
    n_layers: int = 8
    n_heads: int = 6
    dropout: float = 0.2
    cond_drop_prob: float = 0.1
    clip_dim: int = 512
    attnj: bool = True
    attnt: bool = True


@dataclass
class ResidualTransformerConfig(_ConfigBase):
    """Residual transformers, aux (1D) and ts (2D) (``config.res``; ``pretrain_rtrans/opt.txt``)."""

    latent_dim: int = 384
    ff_size: int = 1024
    n_layers: int = 8
    n_heads: int = 6
    dropout: float = 0.2
    cond_drop_prob: float = 0.01
    clip_dim: int = 512
    attnj: bool = True
    attnt: bool = True
    share_weight: bool = True


@dataclass
class LengthEstimatorConfig(_ConfigBase):
    """MoMask length estimator: CLIP feature -> logits over ``output_size`` token lengths
    (``config.length``). Hidden sizes 512/256/128 are fixed upstream."""

    input_size: int = 512
    output_size: int = 50


@dataclass
class TextEncoderConfig(_ConfigBase):
    """The CLIP text tower (OpenAI ``clip.model.CLIP``; ViT-B/32 values by default).

    ``dtype`` selects the numerics of the text path: ``"float16"`` reproduces the official code
    (``clip.model.convert_weights``: fp16 Linear/attention weights and ``text_projection``, LayerNorm
    computed in fp32); ``"float32"`` runs the same weights in fp32.
    """

    embed_dim: int = 512
    context_length: int = 77
    vocab_size: int = 49408
    width: int = 512
    heads: int = 8
    layers: int = 12
    dtype: str = "float16"

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, Any], **overrides: Any) -> TextEncoderConfig:
        """Derive the sizes from an OpenAI-layout CLIP state dict, as ``clip.build_model`` does
        (heads = width // 64)."""
        try:
            width = int(state_dict["ln_final.weight"].shape[0])
            values = {
                "embed_dim": int(state_dict["text_projection"].shape[1]),
                "context_length": int(state_dict["positional_embedding"].shape[0]),
                "vocab_size": int(state_dict["token_embedding.weight"].shape[0]),
                "width": width,
                "heads": width // 64,
                "layers": len(
                    {k.split(".")[2] for k in state_dict if k.startswith("transformer.resblocks.")}
                ),
            }
        except KeyError as err:
            raise ArtifactFormatError(
                f"not an OpenAI-layout CLIP state dict: key {err.args[0]!r} is missing"
            ) from err
        values.update(overrides)
        return cls(**values)


@dataclass
class MoGenTSConfig(_ConfigBase):
    """Everything needed to build the networks: the ``mogents_config.json`` content."""

    vq: VQConfig = field(default_factory=VQConfig)
    mask: MaskTransformerConfig = field(default_factory=MaskTransformerConfig)
    res: ResidualTransformerConfig = field(default_factory=ResidualTransformerConfig)
    length: LengthEstimatorConfig | None = field(default_factory=LengthEstimatorConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    clip_version: str = "ViT-B/32"

    @property
    def has_length_estimator(self) -> bool:
        """Whether the artifact carries a length estimator."""
        return self.length is not None

    def to_json_dict(self, components: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``mogents_config.json`` document (zoo format ``hftrainer-mogents-v1``)."""
        from hftrainer_mogents._version import __version__

        return {
            "model_type": MODEL_TYPE,
            "format": FORMAT,
            "clip_version": self.clip_version,
            "has_length_estimator": self.has_length_estimator,
            "components": components
            or {
                "clip": {
                    "name": self.clip_version,
                    "stored_in_artifact": True,
                    "path": "clip.safetensors",
                }
            },
            "config": {
                "vq": self.vq.to_dict(),
                "mask": self.mask.to_dict(),
                "res": self.res.to_dict(),
                "length": self.length.to_dict() if self.length is not None else None,
                "text_encoder": self.text_encoder.to_dict(),
            },
            "library_version": __version__,
        }

    @classmethod
    def from_json_dict(
        cls, doc: dict[str, Any], *, source: str = "mogents_config.json"
    ) -> MoGenTSConfig:
        """Parse a ``mogents_config.json`` document.

        Raises:
            ArtifactFormatError: wrong ``model_type`` or ``format``, or no ``config`` block.
        """
        if doc.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ArtifactFormatError(
                f"{source}: model_type is {doc.get('model_type')!r}, expected {MODEL_TYPE!r}"
            )
        if doc.get("format", FORMAT) != FORMAT:
            raise ArtifactFormatError(
                f"{source}: format {doc.get('format')!r} is not supported (expected {FORMAT!r}); "
                "upgrade hftrainer-mogents or re-convert the checkpoint"
            )
        block = doc.get("config")
        if not isinstance(block, dict):
            raise ArtifactFormatError(f"{source}: no 'config' object")
        has_length = doc.get("has_length_estimator", block.get("length") is not None)
        length = block.get("length")
        return cls(
            vq=VQConfig.from_dict(block.get("vq"), name="config.vq"),
            mask=MaskTransformerConfig.from_dict(block.get("mask"), name="config.mask"),
            res=ResidualTransformerConfig.from_dict(block.get("res"), name="config.res"),
            length=LengthEstimatorConfig.from_dict(length, name="config.length")
            if has_length
            else None,
            text_encoder=TextEncoderConfig.from_dict(
                block.get("text_encoder"), name="config.text_encoder"
            ),
            clip_version=str(doc.get("clip_version", "ViT-B/32")),
        )
