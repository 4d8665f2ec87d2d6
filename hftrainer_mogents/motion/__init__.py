"""Motion representations and the converters between them.

Submodules (each a set of pure functions; import the one you need):

- :mod:`~hftrainer_mogents.motion.hml263`: HumanML3D-263 layout, skeleton constants
  (``JOINT_NAMES``, ``PARENTS``, ``KINEMATIC_CHAIN``) and ``recover_from_ric``.
- :mod:`~hftrainer_mogents.motion.rotations`: quaternions, matrices, axis-angle, 6D layouts.

Importing this package imports nothing heavy; the submodules import torch.
"""

from __future__ import annotations
