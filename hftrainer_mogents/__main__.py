"""``python -m hftrainer_mogents`` = the ``mogents`` command."""

from hftrainer_mogents.cli import main

main()
