"""The command-line front-ends: the ``mogents`` command and the zoo-compatible ``scripts/``.
Each job is one click command, a thin layer over one library call; a script runs that command
under its own name with the zoo's defaults as a preset (:class:`~hftrainer_mogents.cli._common.Script`), and the zoo's
flag names are extra names of the command's options.

- :mod:`.info`: ``mogents info``;
- :mod:`.generate`: ``mogents generate``;
- :mod:`.edit`: ``mogents edit`` and the body of ``mogents generate --sequence``;
- :mod:`.convert`: ``mogents convert``, ``convert-evaluator``, ``convert-evaluator-ms272``,
  ``convert-smpl-model`` and ``scripts/convert_mogents_checkpoint.py``;
- :mod:`.evaluate`: ``mogents evaluate hml263|ms272`` and ``scripts/verify_evaluators.py``;
- :mod:`.split_generation`: ``scripts/mogents_t2m_h3d263.py`` (generate the HumanML3D test split);
- :mod:`.bridge`: ``mogents bridge``, which is also ``scripts/hml263_to_smpl_ik.py`` (under
  the zoo's preset), and ``scripts/convert_motion135_to_h3d272.py`` (the stages of the chain
  script);
- :mod:`.publish`: ``mogents publish``;
- :mod:`.finetune`: ``mogents finetune`` (training through the hftrainer host);
- :mod:`.export`: ``mogents export`` (a fine-tuning checkpoint as an artifact);
- :mod:`.demo`: ``mogents demo`` (the web demo);
- :mod:`._common`: error handling, shared options and :class:`~hftrainer_mogents.cli._common.Script`.

Each command imports torch and model code inside its body, so ``mogents --help`` is instant.
Library errors (:class:`~hftrainer_mogents.errors.MoGenTSError`) become a one-line message and a
non-zero exit, without a traceback.
"""

from __future__ import annotations

import click

from hftrainer_mogents._version import __version__
from hftrainer_mogents.cli import bridge as _bridge
from hftrainer_mogents.cli import convert as _convert
from hftrainer_mogents.cli import demo as _demo
from hftrainer_mogents.cli import edit as _edit
from hftrainer_mogents.cli import evaluate as _evaluate
from hftrainer_mogents.cli import export as _export
from hftrainer_mogents.cli import finetune as _finetune
from hftrainer_mogents.cli import generate as _generate
from hftrainer_mogents.cli import info as _info
from hftrainer_mogents.cli import publish as _publish

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mogents")
def cli() -> None:
    """MoGenTS text-to-motion: generate, convert, evaluate and bridge HumanML3D-263 motions."""


for _command in (
    _info.info,
    _convert.convert,
    _generate.generate,
    _edit.edit,
    _publish.publish,
    _convert.convert_evaluator,
    _evaluate.evaluate,
    _convert.convert_evaluator_ms272,
    _convert.convert_smpl_model,
    _bridge.bridge,
    _finetune.finetune,
    _export.export,
    _demo.demo,
):
    cli.add_command(_command)


def main() -> None:  # pragma: no cover - console entry for `python -m hftrainer_mogents`
    """Run the ``mogents`` command."""
    cli(prog_name="mogents")
