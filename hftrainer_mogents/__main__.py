"""``python -m hftrainer_mogents`` = the ``mogents`` command."""

from hftrainer_mogents.cli import cli

cli(prog_name="mogents")
