"""``python -m hftrainer_mogents.cli`` = the ``mogents`` command."""

from hftrainer_mogents.cli import main

main()
