"""Motion representations and the converters between them.

The representation registry (``get_spec``, ``list_specs``, ``infer_spec_from_dim``, the zoo's
names, widths, frame rates and channel blocks) is importable from here; it is torch-free.

Submodules (each a set of pure functions; import the one you need):

- :mod:`~hftrainer_mogents.motion.representations`: the registry (``MotionRepr``, ``FieldSpec``).

- :mod:`~hftrainer_mogents.motion.hml263`: HumanML3D-263 layout, skeleton constants
  (``JOINT_NAMES``, ``PARENTS``, ``KINEMATIC_CHAIN``) and ``recover_from_ric``.
- :mod:`~hftrainer_mogents.motion.rotations`: quaternions, matrices, axis-angle, 6D layouts,
  Euler angles, Kabsch alignment.
- :mod:`~hftrainer_mogents.motion.resample`: frame-rate conversion (linear, slerp).
- :mod:`~hftrainer_mogents.motion.smpl135`: SMPL model files, forward kinematics, batched IK to
  ``motion_135`` (a package: ``body_model``, ``kinematics``, ``motion135``, ``fit``).
- :mod:`~hftrainer_mogents.motion.ms272`: MotionStreamer-272 encoding and recovery.
- :mod:`~hftrainer_mogents.motion.converters`: the representation graph and ``convert``.
- :mod:`~hftrainer_mogents.motion.bridge`: the pure steps of the bridge (its batch jobs are in
  :mod:`hftrainer_mogents.jobs.bridge`).
- :mod:`~hftrainer_mogents.motion.export`: SMPL parameters of 263 motions at their own frame rate
  (``generate --format smpl``).
- :mod:`~hftrainer_mogents.motion.gltf`: glTF 2.0 binaries of a skinned SMPL body or a skeleton
  (``generate --format glb``; pygltflib).

Importing this package imports nothing heavy; the submodules other than ``representations``
import torch.
"""

from __future__ import annotations

from hftrainer_mogents.motion.representations import (
    FieldSpec,
    MotionRepr,
    get_spec,
    infer_spec_from_dim,
    list_specs,
)

__all__ = ["FieldSpec", "MotionRepr", "get_spec", "infer_spec_from_dim", "list_specs"]
