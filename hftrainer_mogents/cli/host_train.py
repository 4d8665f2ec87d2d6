"""``python -m hftrainer_mogents.cli.host_train CONFIG``: train a config file with the hftrainer
host's runner, as the host's ``tools/train.py`` does, without the host's checkout. ``mogents
finetune --num-processes N`` runs it under ``accelerate launch -m`` (one per process). Not a
``mogents`` subcommand: ``mogents finetune`` is the user's entry.
"""

from __future__ import annotations

import click

from hftrainer_mogents.cli._common import user_errors

__all__ = ["host_train"]


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--work-dir", default=None, help="Override the config's work_dir.")
@click.option("--auto-resume", is_flag=True, help="Continue from the latest checkpoint.")
@click.option("--local_rank", "--local-rank", type=int, default=None, hidden=True)
@user_errors
def host_train(
    config: str, work_dir: str | None, auto_resume: bool, local_rank: int | None
) -> None:
    """Train CONFIG (an mmengine config file) with the hftrainer host's AccelerateRunner."""
    from hftrainer_mogents.training.host.runtime import train_config_file

    train_config_file(config, work_dir=work_dir, auto_resume=auto_resume)


if __name__ == "__main__":  # pragma: no cover - `accelerate launch -m ...` entry
    host_train()
