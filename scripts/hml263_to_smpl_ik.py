#!/usr/bin/env python
"""HumanML3D-263 .npy clips -> SMPL motion_135 .npz by batched inverse kinematics.

Thin wrapper: `mogents bridge` with the zoo's defaults (:mod:`hftrainer_mogents.cli.bridge`)::

    python scripts/hml263_to_smpl_ik.py --in-dir PRED263 --out-dir SMPL135 \
        --model-dir body_models --source-fps 20 --target-fps 30 --floor-align \
        --refine-iters 80 --refine-lr 0.02 --skip-existing [--num-shards N --shard-index I]
"""

import sys

from hftrainer_mogents.cli.bridge import ik_main

if __name__ == "__main__":
    sys.exit(ik_main())
