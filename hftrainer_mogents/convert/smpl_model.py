"""Converting official SMPL model files (chumpy ``.pkl``) to a plain ``.npz``, once.

The official SMPL download ships ``.pkl`` files that hold ``chumpy`` objects and a
``scipy.sparse`` ``J_regressor``. They are read without chumpy and without running pickled code by
the body model's reader (:func:`hftrainer_mogents.motion.smpl135.body_model.read_smpl_pickle`);
:func:`convert_smpl_pickle` writes what it reads to a ``.npz``. Convert once, then point the
bridge at the ``.npz``::

    mogents convert-smpl-model SMPL_NEUTRAL.pkl body_models/SMPL_NEUTRAL.npz
"""

from __future__ import annotations

import os

import numpy as np

from hftrainer_mogents.errors import ArtifactFormatError
from hftrainer_mogents.motion.smpl135.body_model import (  # re-exported for one release
    CHUMPY_HOWTO,
    SMPL_KEYS,
    read_smpl_pickle,
)
from hftrainer_mogents.utils.io import atomic_save_npz

__all__ = ["SMPL_KEYS", "CHUMPY_HOWTO", "read_smpl_pickle", "convert_smpl_pickle"]


def convert_smpl_pickle(
    src: str | os.PathLike[str], dst: str | os.PathLike[str]
) -> dict[str, np.ndarray]:
    """Write the arrays of a SMPL ``.pkl`` (chumpy or plain) to a plain ``.npz`` (atomically).

    Args:
        src: the official ``.pkl`` file.
        dst: the ``.npz`` to write (e.g. ``body_models/SMPL_NEUTRAL.npz``).

    Returns:
        The arrays written.
    """
    arrays = read_smpl_pickle(src, allow_chumpy=True)
    missing = [
        k for k in ("v_template", "shapedirs", "J_regressor", "kintree_table") if k not in arrays
    ]
    if missing:
        raise ArtifactFormatError(f"{src}: not a SMPL model file, missing {missing}")
    atomic_save_npz(dst, **arrays)
    return arrays
