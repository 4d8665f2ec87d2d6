#!/usr/bin/env python
"""SMPL motion_135 (the IK's .npz) -> MotionStreamer-272 (T, 272) .npy.

Thin wrapper over the click command ``convert272`` of :mod:`hftrainer_mogents.cli.bridge`::

    python scripts/convert_motion135_to_h3d272.py --in-dir SMPL135 --out-dir PRED272 \
        --skip-existing [--model-dir body_models]
"""

import sys

from hftrainer_mogents.cli.bridge import convert272_main

if __name__ == "__main__":
    sys.exit(convert272_main())
