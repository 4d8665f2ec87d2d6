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
import math
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

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

    # field -> (lowest, highest) allowed value of a number field (None: unbounded)
    _RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = {}

    @classmethod
    def from_dict(
        cls: type[C], data: dict[str, Any] | None, *, name: str = "", source: str | None = None
    ) -> C:
        """Build from a JSON block; unknown keys are ignored and missing ones take the defaults,
        both with a warning.

        Args:
            data: the JSON block.
            name: the block's name in messages (e.g. ``"config.vq"``).
            source: the file the block comes from, for messages.

        Raises:
            ArtifactFormatError: the block is not an object, or a value has the wrong type or is
                out of range (naming the file, the key, the value and what is expected).
        """
        label = name or cls.__name__
        where = f"{source}: " if source else ""
        if data is not None and not isinstance(data, dict):
            raise ArtifactFormatError(
                f"{where}{label} must be a JSON object, got {type(data).__name__} {data!r}"
            )
        data = dict(data or {})
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        missing = sorted(known - set(data))
        if unknown:
            logger.warning("%s: ignoring unknown keys %s", label, unknown)
        if missing and data:
            logger.warning("%s: keys %s missing, using the defaults", label, missing)
        values = {k: v for k, v in data.items() if k in known}
        for key, value in values.items():
            problem = cls._field_problem(key, value)
            if problem is not None:
                raise ArtifactFormatError(
                    f"{where}{label}.{key} = {value!r}: expected {problem}; fix the config file "
                    "or convert the checkpoint again"
                )
        return cls(**values)

    @classmethod
    def _field_problem(cls, key: str, value: Any) -> str | None:
        """What ``value`` should be for field ``key`` (None when it fits): the field's type
        (``int``, ``float``, ``bool``, ``str``, optionally ``None``) and :attr:`_RANGES`."""
        hint = typing.get_type_hints(cls).get(key)
        args = set(typing.get_args(hint)) or {hint}
        optional = type(None) in args
        if value is None:
            return None if optional else _type_name(args - {type(None)})
        kinds = args - {type(None)}
        if bool in kinds:
            ok = isinstance(value, bool)
        elif int in kinds:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif float in kinds:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        elif str in kinds:
            ok = isinstance(value, str)
        else:
            return None  # nested configs and other types are checked by their own class
        if not ok:
            return _type_name(kinds) + (" or null" if optional else "")
        low, high = cls._RANGES.get(key, (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            lo = "" if low is None else f">= {low}"
            hi = "" if high is None else f"<= {high}"
            return f"a number {' and '.join(p for p in (lo, hi) if p)}"
        return None

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _type_name(kinds: set[Any]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    return " or ".join(names.get(k, getattr(k, "__name__", str(k))) for k in kinds)


# sizes are at least 1; probabilities and momenta in [0, 1]
_SIZE = (1, None)
_FRACTION = (0.0, 1.0)


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

    _RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        **dict.fromkeys(
            ("code_dim1d", "nb_code1d", "code_dim2d", "nb_code2d", "stride_t", "width", "depth"),
            _SIZE,
        ),
        "down_t": (0, None),
        "dilation_growth_rate": _SIZE,
        "num_quantizers": _SIZE,
        "quantize_dropout_prob": _FRACTION,
        "mu": _FRACTION,
    }

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

    _RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        **dict.fromkeys(("latent_dim", "ff_size", "n_layers", "n_heads", "clip_dim"), _SIZE),
        "dropout": _FRACTION,
        "cond_drop_prob": _FRACTION,
    }


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

    _RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        **dict.fromkeys(("latent_dim", "ff_size", "n_layers", "n_heads", "clip_dim"), _SIZE),
        "dropout": _FRACTION,
        "cond_drop_prob": _FRACTION,
    }


@dataclass
class LengthEstimatorConfig(_ConfigBase):
    """MoMask length estimator: CLIP feature -> logits over ``output_size`` token lengths
    (``config.length``). Hidden sizes 512/256/128 are fixed upstream."""

    input_size: int = 512
    output_size: int = 50

    _RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "input_size": _SIZE,
        "output_size": _SIZE,
    }


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

    _RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = dict.fromkeys(
        ("embed_dim", "context_length", "vocab_size", "width", "heads", "layers"), _SIZE
    )

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
            ArtifactFormatError: wrong ``model_type`` or ``format``, no ``config`` block, a
                required section (``vq``, ``mask``, ``res``, and ``length`` when the artifact
                has a length estimator) missing, or a value of the wrong type or out of range.
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
        if not isinstance(has_length, bool):
            raise ArtifactFormatError(
                f"{source}: has_length_estimator = {has_length!r}: expected true or false"
            )
        required = ["vq", "mask", "res", *(["length"] if has_length else [])]
        absent = [key for key in required if block.get(key) is None]
        if absent:
            raise ArtifactFormatError(
                f"{source}: the 'config' object has no {', '.join(repr(k) for k in absent)} "
                f"section (required: {', '.join(required)}); the network sizes cannot be "
                "guessed: convert the checkpoint again"
            )
        clip_version = doc.get("clip_version", "ViT-B/32")
        if not isinstance(clip_version, str):
            raise ArtifactFormatError(
                f"{source}: clip_version = {clip_version!r}: expected a string"
            )

        def section(config_cls: type[C], key: str) -> C:
            return config_cls.from_dict(block.get(key), name=f"config.{key}", source=source)

        return cls(
            vq=section(VQConfig, "vq"),
            mask=section(MaskTransformerConfig, "mask"),
            res=section(ResidualTransformerConfig, "res"),
            length=section(LengthEstimatorConfig, "length") if has_length else None,
            text_encoder=section(TextEncoderConfig, "text_encoder"),
            clip_version=clip_version,
        )
