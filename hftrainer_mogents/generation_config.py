"""The sampling settings of a MoGenTS generation call, in one frozen, validated dataclass.

:class:`GenerationConfig` is the single source of the seven settings and their defaults (the
paper's evaluation settings, MoGenTS' ``eval_res.py``): the pipeline, the HumanML3D test-split
generation, the zoo's model spec and every command-line option read them from here, and ``run.json``
/ ``generation.json`` store :meth:`GenerationConfig.to_dict` whole. Like transformers'
``GenerationConfig``, a bad value is refused when the config is built, before any compute.

This module imports only the standard library and :mod:`hftrainer_mogents.errors`, so the zoo's
plugin discovery can use it without importing torch.

Examples:
    >>> from hftrainer_mogents.generation_config import GenerationConfig
    >>> GenerationConfig(time_steps=18).replace(cond_scale=2.0).to_dict()["time_steps"]
    18
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["GenerationConfig", "GENERATION_FIELDS"]


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings of the mask and residual transformers.

    Attributes:
        time_steps: masked-decoding iterations (the paper's evaluation uses 10; the official demo
            18).
        cond_scale: classifier-free guidance of the mask transformers.
        res_cond_scale: guidance of the residual transformers.
        topkr: top-k filter threshold (0.9 keeps the top 10 % of the logits).
        temperature: mask-transformer sampling temperature (only acts with
            ``gumbel_sample=True``: upstream's categorical sampling ignores it).
        res_temperature: residual sampling temperature.
        gumbel_sample: Gumbel-max instead of categorical sampling for the base layer.

    Raises:
        InvalidInputError: a value of the wrong type or out of range (at construction).
    """

    time_steps: int = field(default=10, metadata={"help": "Masked-decoding iterations."})
    cond_scale: float = field(
        default=4.0, metadata={"help": "Classifier-free guidance of the mask transformers."}
    )
    res_cond_scale: float = field(
        default=5.0, metadata={"help": "Classifier-free guidance of the residual transformers."}
    )
    topkr: float = field(
        default=0.9, metadata={"help": "Top-k filter threshold (0.9 keeps the top 10 %)."}
    )
    temperature: float = field(
        default=1.0,
        metadata={"help": "Mask-transformer temperature (acts with Gumbel sampling only)."},
    )
    res_temperature: float = field(
        default=1.0, metadata={"help": "Residual-transformer sampling temperature."}
    )
    gumbel_sample: bool = field(
        default=False, metadata={"help": "Gumbel-max instead of categorical sampling."}
    )

    def __post_init__(self) -> None:
        steps = self.time_steps
        if not _is_int(steps) or steps < 1:
            raise InvalidInputError(f"time_steps must be an integer >= 1, got {steps!r}")
        for name in ("cond_scale", "res_cond_scale"):
            value = getattr(self, name)
            if not _is_finite(value) or value < 0:
                raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")
        if not _is_finite(self.topkr) or not 0 <= self.topkr < 1:
            raise InvalidInputError(
                f"topkr must be in [0, 1), got {self.topkr!r} (0.9 keeps the top 10 %)"
            )
        for name in ("temperature", "res_temperature"):
            value = getattr(self, name)
            if not _is_finite(value) or value <= 0:
                raise InvalidInputError(f"{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.gumbel_sample, (bool, _np_bool_types())):
            raise InvalidInputError(
                f"gumbel_sample must be True or False, got {self.gumbel_sample!r}"
            )
        # plain Python values, so that to_dict() is JSON as it is and equal configs compare equal
        object.__setattr__(self, "time_steps", int(steps))
        for name in ("cond_scale", "res_cond_scale", "topkr", "temperature", "res_temperature"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "gumbel_sample", bool(self.gumbel_sample))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (JSON-ready), every field included."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GenerationConfig:
        """Build from a mapping; missing keys take the defaults, unknown keys are refused.

        Raises:
            InvalidInputError: an unknown key (the valid ones are listed) or a bad value.
        """
        unknown = sorted(set(values) - set(GENERATION_FIELDS))
        if unknown:
            raise InvalidInputError(
                f"unknown generation setting(s) {unknown}; valid: {list(GENERATION_FIELDS)}"
            )
        return cls(**dict(values))

    @classmethod
    def coerce(
        cls, value: GenerationConfig | Mapping[str, Any], *, name: str = "generation_config"
    ) -> GenerationConfig:
        """``value`` as a :class:`GenerationConfig`: itself, or built from a mapping
        (:meth:`from_dict`).

        Raises:
            InvalidInputError: neither a GenerationConfig nor a mapping, or a bad mapping.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise InvalidInputError(
            f"{name} must be a GenerationConfig or a dict of its settings, got "
            f"{type(value).__name__}"
        )

    def replace(self, **changes: Any) -> GenerationConfig:
        """A copy with ``changes`` applied (validated); ``None`` values leave a field as it is."""
        given = {name: value for name, value in changes.items() if value is not None}
        return self.from_dict({**self.to_dict(), **given})


def _np_bool_types() -> tuple[type, ...]:
    # numpy is not imported here on purpose (plugin discovery stays light); accept its bool
    # type only when it is already loaded
    import sys

    np = sys.modules.get("numpy")
    return (np.bool_,) if np is not None else ()


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


GENERATION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(GenerationConfig))
