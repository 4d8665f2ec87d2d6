"""Strict state-dict loading with errors that name the key and both shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from hftrainer_mogents.errors import ArtifactFormatError

__all__ = ["check_state_dict", "load_state_dict_strict"]

_MAX_LISTED = 10


def _listed(keys: list[str]) -> str:
    more = f" (and {len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def check_state_dict(module: nn.Module, state_dict: Mapping[str, Any], *, source: str) -> None:
    """Raise unless ``state_dict`` has exactly the keys and shapes of ``module.state_dict()``.

    Args:
        module: the network to load into (may live on the ``meta`` device).
        state_dict: key -> tensor (anything with a ``shape``).
        source: what the weights come from (a file name), for the message.

    Raises:
        ArtifactFormatError: missing keys, unexpected keys, or shape mismatches, each listed with
            the key and, for mismatches, the file's and the model's shapes.
    """
    expected = module.state_dict()
    problems = []
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: {tuple(state_dict[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listed(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch for {_listed(mismatched)}")
    if problems:
        raise ArtifactFormatError(
            f"{source}: the weights do not fit {type(module).__name__} "
            f"({'; '.join(problems)}); check that the config matches the checkpoint"
        )


def load_state_dict_strict(
    module: nn.Module, state_dict: Mapping[str, Any], *, source: str
) -> nn.Module:
    """:func:`check_state_dict`, then ``module.load_state_dict(state_dict, strict=True)``.

    Returns:
        ``module`` (weights copied in, dtype and device of ``module`` kept).
    """
    check_state_dict(module, state_dict, source=source)
    module.load_state_dict(state_dict, strict=True)
    return module
