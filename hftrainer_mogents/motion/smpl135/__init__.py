"""SMPL ``motion_135`` and batched inverse kinematics from HumanML3D-263 or joint positions.

``motion_135`` is SMPL's translation and 22 parent-relative rotations per frame at 30 fps (the
layout is in :mod:`.motion135`). The bridge gets there by fitting neutral SMPL to joint positions
with Adam, many clips in one batch. The modules, in the order they build on each other:

- :mod:`.body_model`: SMPL model files (finding, safe reading) and the :class:`SMPLModel` arrays.
- :mod:`.kinematics`: forward kinematics on the rest joints and the fit's starting rotations.
- :mod:`.motion135`: packing SMPL parameters into ``motion_135`` and back, and its joints.
- :mod:`.fit`: the batched Adam fit, clip preparation and batching, and the converter edges
  ``hml263 -> smpl135`` and ``joints22 -> smpl135``.

Every public name is importable from here (``from hftrainer_mogents.motion.smpl135 import
fit_clips``).
"""

from __future__ import annotations

from hftrainer_mogents.motion.smpl135.body_model import (
    NUM_JOINTS,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    SMPLModel,
    find_smpl_model,
    load_smpl_model,
    resolve_model,
    smplx_model,
)
from hftrainer_mogents.motion.smpl135.fit import (
    ClipResult,
    IKConfig,
    IKFit,
    IKSettingError,
    PreparedClip,
    fit_clips,
    fit_smpl_to_joints,
    hml263_to_smpl135,
    joints_to_smpl135,
    prepare_clip,
)
from hftrainer_mogents.motion.smpl135.kinematics import (
    FKOutput,
    forward_kinematics,
    init_rotations_from_hml263,
    init_rotations_from_joints,
)
from hftrainer_mogents.motion.smpl135.motion135 import (
    DIM_SMPL135,
    FPS,
    motion135_to_smpl_params,
    smpl135_joints,
    smpl_params_to_motion135,
)

__all__ = [
    "IKSettingError",
    "DIM_SMPL135",
    "NUM_JOINTS",
    "FPS",
    "SMPL_PARENTS",
    "SMPL_JOINT_NAMES",
    "SMPLModel",
    "find_smpl_model",
    "load_smpl_model",
    "forward_kinematics",
    "FKOutput",
    "init_rotations_from_joints",
    "init_rotations_from_hml263",
    "IKConfig",
    "IKFit",
    "fit_smpl_to_joints",
    "PreparedClip",
    "prepare_clip",
    "fit_clips",
    "ClipResult",
    "resolve_model",
    "hml263_to_smpl135",
    "joints_to_smpl135",
    "motion135_to_smpl_params",
    "smpl_params_to_motion135",
    "smpl135_joints",
    "smplx_model",
]
