#!/usr/bin/env python
"""Generate the HumanML3D test split with MoGenTS: one (T, 263) .npy per test item.

Thin wrapper over :mod:`hftrainer_mogents.cli.split_generation` (the zoo's flags)::

    python scripts/mogents_t2m_h3d263.py --model_path checkpoints/mogents/humanml3d \
        --data_root dataset/HumanML3D --out_dir outputs/pred263 [--seed 0] [--time_steps 10] \
        [--num-shards N --shard-index I] [--skip-existing]
"""

import sys

from hftrainer_mogents.cli.split_generation import generation_main

if __name__ == "__main__":
    sys.exit(generation_main())
