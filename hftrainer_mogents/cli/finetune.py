"""``mogents finetune``: fine-tune (or train) one MoGenTS stage on a HumanML3D-format folder
through the hftrainer host's runner.

The command takes the stage's shipped config (:mod:`hftrainer_mogents.training.configs`), sets
the artifact, the folder and the run's settings, writes the result into the work dir
(``finetune_config.py``, with ``mogents_finetune.json`` recording what ``mogents export`` puts on
the model card), and runs the host's ``AccelerateRunner`` in this process, or, with
``--num-processes N`` > 1, under ``accelerate launch`` (gloo on CPU, NCCL on GPUs). Without the
host installed it stops before anything else with the install line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from hftrainer_mogents.cli._common import user_errors
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.stages import STAGE_PRESETS

__all__ = [
    "RUN_RECORD",
    "RUN_CONFIG",
    "FinetuneSettings",
    "finetune_overrides",
    "launch_command",
    "finetune",
]

RUN_RECORD = "mogents_finetune.json"
RUN_CONFIG = "finetune_config.py"
_STAGES = tuple(STAGE_PRESETS)  # vq, mask, res, length


class FinetuneSettings:
    """What ``mogents finetune`` was asked (checked on construction).

    Args:
        stage: ``vq``, ``mask``, ``res`` or ``length``.
        data: the HumanML3D-format folder.
        artifact: the artifact to start from (folder or hub id).
        work_dir: where checkpoints and logs go.
        max_steps: optimisation steps (None: the config's).
        batch_size: per-process batch (None: the config's).
        lr: learning rate (None: the config's).
        seed: seed of the data crops and the objective's draws.
        mode: ``default`` or ``reference`` draws.
        checkpoint_interval: save every this many steps (None: the config's; the last step is
            always saved).
        num_workers: data loader workers (None: the config's).
        mixed_precision: ``no``, ``fp16`` or ``bf16``.
        config: a config file to start from instead of the shipped one.
        resume: continue from the work dir's latest checkpoint.

    Raises:
        InvalidInputError: a bad value (naming the option).
    """

    def __init__(
        self,
        *,
        stage: str,
        data: str | os.PathLike[str],
        artifact: str | os.PathLike[str],
        work_dir: str | os.PathLike[str],
        max_steps: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        seed: int = 0,
        mode: str = "default",
        checkpoint_interval: int | None = None,
        num_workers: int | None = None,
        mixed_precision: str = "no",
        config: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> None:
        if stage not in _STAGES:
            raise InvalidInputError(f"--stage {stage!r}: choose one of {', '.join(_STAGES)}")
        for name, value in (
            ("--max-steps", max_steps),
            ("--batch-size", batch_size),
            ("--checkpoint-interval", checkpoint_interval),
        ):
            if value is not None and value < 1:
                raise InvalidInputError(f"{name} must be at least 1, got {value}")
        if lr is not None and not lr > 0:
            raise InvalidInputError(f"--lr must be > 0, got {lr}")
        if seed < 0:
            raise InvalidInputError(f"--seed must be >= 0, got {seed}")
        if num_workers is not None and num_workers < 0:
            raise InvalidInputError(f"--num-workers must be >= 0, got {num_workers}")
        if mode not in ("default", "reference"):
            raise InvalidInputError(f"--mode {mode!r}: choose default or reference")
        if mixed_precision not in ("no", "fp16", "bf16"):
            raise InvalidInputError(
                f"--mixed-precision {mixed_precision!r}: choose no, fp16 or bf16"
            )
        if not Path(data).is_dir():
            raise InvalidInputError(
                f"--data {data}: not a folder; give a HumanML3D-format folder (new_joint_vecs/, "
                "texts/, train.txt)"
            )
        if config is not None and not Path(config).is_file():
            raise InvalidInputError(f"--config {config}: no such file")
        self.stage = stage
        self.data = str(Path(data).resolve())
        local = Path(artifact).expanduser()
        self.artifact = str(local.resolve()) if local.exists() else str(artifact)
        self.work_dir = str(Path(work_dir).resolve())
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.mode = mode
        self.checkpoint_interval = checkpoint_interval
        self.num_workers = num_workers
        self.mixed_precision = mixed_precision
        self.config = None if config is None else str(Path(config).resolve())
        self.resume = resume

    def record(self) -> dict[str, Any]:
        """The run's record (``mogents_finetune.json``): what the model card of an export
        names."""
        return {
            "stage": self.stage,
            "base_artifact": self.artifact,
            "data": self.data,
            "seed": self.seed,
            "mode": self.mode,
            "config": self.config or f"hftrainer_mogents/training/configs/mogents_{self.stage}.py",
        }


def finetune_overrides(settings: FinetuneSettings) -> dict[str, Any]:
    """The config entries the settings set (merged into the stage's config with
    ``Config.merge_from_dict``; dotted keys address nested entries)."""
    out: dict[str, Any] = {
        "work_dir": settings.work_dir,
        "auto_resume": settings.resume,
        "model.pretrained": settings.artifact,
        "model.stage": settings.stage,
        "trainer.seed": settings.seed,
        "trainer.mode": settings.mode,
        "train_dataloader.dataset.data_root": settings.data,
        "train_dataloader.dataset.artifact": settings.artifact,
        "train_dataloader.dataset.stage": settings.stage,
        "train_dataloader.dataset.seed": settings.seed,
        "accelerator.mixed_precision": settings.mixed_precision,
    }
    optional = {
        "train_cfg.max_iters": settings.max_steps,
        "train_dataloader.batch_size": settings.batch_size,
        "optimizer.lr": settings.lr,
        "default_hooks.checkpoint.interval": settings.checkpoint_interval,
        "train_dataloader.num_workers": settings.num_workers,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


def launch_command(
    config_file: str | os.PathLike[str], num_processes: int, *, mixed_precision: str = "no"
) -> tuple[list[str], dict[str, str]]:
    """The ``accelerate launch`` command line of a multi-process run and the environment entries
    it needs: one process per GPU where CUDA is available, else CPU processes with gloo
    (accelerate's multi-process launcher with ``ACCELERATE_USE_CPU=1``; its ``--cpu`` flag
    would start a single process)."""
    import torch

    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        mixed_precision,
        "--dynamo_backend",
        "no",
        "-m",
        "hftrainer_mogents.cli.host_train",
        str(config_file),
    ]
    env = {} if torch.cuda.is_available() else {"ACCELERATE_USE_CPU": "1"}
    return command, env


def _build_config(settings: FinetuneSettings) -> Any:
    """The stage's config with the settings merged in (the host must be importable)."""
    from mmengine.config import Config

    from hftrainer_mogents.training.configs import config_path

    source = settings.config or str(config_path(settings.stage))
    cfg = Config.fromfile(source)
    cfg.merge_from_dict(finetune_overrides(settings))
    return cfg


def run_finetune(settings: FinetuneSettings, *, num_processes: int = 1) -> Path:
    """Check the host, write the run's config and record into the work dir, and train.

    Returns:
        The work dir.

    Raises:
        HostNotInstalledError: the host is not installed (before anything else).
        InvalidInputError: a bad folder, artifact or setting.
        MoGenTSError: a multi-process run failed (its exit status named).
    """
    from hftrainer_mogents.training.host.runtime import ensure_host, run_config

    ensure_host()
    cfg = _build_config(settings)
    work_dir = Path(settings.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    config_file = work_dir / RUN_CONFIG
    cfg.dump(str(config_file))
    record = {**settings.record(), "num_processes": num_processes}
    (work_dir / RUN_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    if num_processes == 1:
        run_config(cfg)
        return work_dir
    command, extra_env = launch_command(
        config_file, num_processes, mixed_precision=settings.mixed_precision
    )
    # the launched processes import this very copy of the package (a checkout or an install)
    package_root = str(Path(__file__).resolve().parents[2])
    path = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, **extra_env, "PYTHONPATH": os.pathsep.join(path)}
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        from hftrainer_mogents.errors import MoGenTSError

        raise MoGenTSError(
            f"the {num_processes}-process run failed (exit status {done.returncode}); its log "
            f"is above and in {work_dir}"
        )
    return work_dir


def _option_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "num_processes"}


@click.command()
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(),
    help="HumanML3D-format folder (new_joint_vecs/, texts/, split files).",
)
@click.option(
    "--from",
    "artifact",
    required=True,
    help="Artifact to start from (folder or hub repo id); its Mean/Std normalise the data.",
)
@click.option(
    "--stage", type=click.Choice(_STAGES), required=True, help="What to train (the rest is frozen)."
)
@click.option("--work-dir", required=True, type=click.Path(), help="Checkpoints and logs go here.")
@click.option("--max-steps", type=int, default=None, help="Optimisation steps [config's].")
@click.option("--batch-size", type=int, default=None, help="Batch per process [config's].")
@click.option("--lr", type=float, default=None, help="Learning rate [config's, official].")
@click.option("--seed", type=int, default=0, show_default=True, help="Data and draw seed.")
@click.option(
    "--mode",
    type=click.Choice(["default", "reference"]),
    default="default",
    show_default=True,
    help="reference: the official code's random draws, in order.",
)
@click.option("--checkpoint-interval", type=int, default=None, help="Save every N steps.")
@click.option("--num-workers", type=int, default=None, help="Data loader workers [config's].")
@click.option(
    "--mixed-precision",
    type=click.Choice(["no", "fp16", "bf16"]),
    default="no",
    show_default=True,
)
@click.option(
    "--num-processes",
    type=int,
    default=1,
    show_default=True,
    help="Processes (accelerate launch; GPUs when available, else CPU with gloo).",
)
@click.option("--config", type=click.Path(), default=None, help="Config file to start from.")
@click.option("--resume", is_flag=True, help="Continue from the work dir's latest checkpoint.")
@user_errors
def finetune(num_processes: int, **options: Any) -> None:
    """Fine-tune one MoGenTS stage on a HumanML3D-format folder through the hftrainer host;
    `mogents export WORK_DIR --out DIR` then makes an artifact of the result."""
    from hftrainer_mogents.training.host.runtime import require_host

    require_host()  # before anything: the install line, not a half-made work dir
    if num_processes < 1:
        raise InvalidInputError(f"--num-processes must be at least 1, got {num_processes}")
    settings = FinetuneSettings(**_option_values(options))
    work_dir = run_finetune(settings, num_processes=num_processes)
    click.echo(
        f"trained the {settings.stage} stage; checkpoints in {work_dir}; make an artifact with: "
        f"mogents export {work_dir} --out ARTIFACT_DIR"
    )
