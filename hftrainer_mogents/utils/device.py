"""Choosing and checking the torch device: one rule for the pipeline, evaluators and bridge."""

from __future__ import annotations

import torch

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else the CPU; any other name is checked.

    Raises:
        InvalidInputError: not a device name, CUDA asked for where there is none, or a CUDA index
            beyond the visible devices.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InvalidInputError(
            f"device {device!r} is not a device name; use 'cpu' or 'cuda'"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device {device!r} was requested but CUDA is not available here; use device='cpu' (--device cpu)"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InvalidInputError(
            f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    return dev
