#!/usr/bin/env python
"""Convert the official MoGenTS checkpoints into an hftrainer-mogents artifact.

Same flags as the zoo's script (and ``mogents convert``)::

    python scripts/convert_mogents_checkpoint.py --weights_root logs --length_root checkpoints \\
        --out_dir checkpoints/mogents/humanml3d --verify [--clip ViT-B-32.pt]
"""

from hftrainer_mogents.cli.convert import convert

if __name__ == "__main__":
    convert(prog_name="convert_mogents_checkpoint.py")
