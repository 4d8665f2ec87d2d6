#!/usr/bin/env python
"""Score prediction folders with the evaluators and write verify_<name>.json / .md.

Thin wrapper over :mod:`hftrainer_mogents.cli.evaluate`: the options of ``mogents evaluate
hml263|ms272`` under the zoo's ``--<name>-*`` names::

    python scripts/verify_evaluators.py --which hml263 --hml263-pred OUT --out-dir OUT/metrics
"""

import sys

from hftrainer_mogents.cli.evaluate import verify_main

if __name__ == "__main__":
    sys.exit(verify_main())
