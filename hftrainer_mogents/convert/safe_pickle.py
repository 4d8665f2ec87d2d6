"""Moved to :mod:`hftrainer_mogents.utils.safe_pickle` (the SMPL body model reads with it at run
time too); these names are re-exported here for one release."""

from __future__ import annotations

from hftrainer_mogents.utils.safe_pickle import (
    PickledObject,
    find_state_dicts,
    read_torch_zip,
    restricted_pickle_load,
    torch_load_weights_only,
)

__all__ = [
    "PickledObject",
    "torch_load_weights_only",
    "read_torch_zip",
    "restricted_pickle_load",
    "find_state_dicts",
]
