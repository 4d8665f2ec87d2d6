"""``mogents export``: a fine-tuning run's checkpoint as a checksummed artifact.

The host checkpoint (``checkpoint-*/model.pt``, the bundle's ``state_dict_to_save``) is loaded
with ``load_state_dict_selective`` into the bundle of the run's base artifact, so networks the
checkpoint does not hold keep the base weights; the result is written with ``save_pretrained``
(sha256 checksums in ``model_index.json``) and a model card (``README.md``) that records the base
artifact, the data, the stage and the steps, kept machine-readable in ``finetune.json`` (which
``mogents publish`` renders again). ``MoGenTSPipeline.from_pretrained(out)`` loads it.
Works without the host installed.

Where the run came from is read from the work dir's ``mogents_finetune.json`` (written by
``mogents finetune``) or, for a run of the host's ``tools/train.py``, from the config the runner
saved (``<work dir>/<timestamp>/config.py``, read as text, never executed); ``--from`` overrides.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from hftrainer_mogents.cli._common import user_errors
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError

__all__ = [
    "find_checkpoint",
    "read_run_config",
    "run_provenance",
    "finetune_record",
    "export_checkpoint",
    "export",
]

_CHECKPOINT = re.compile(r"checkpoint-(?:iter_|epoch_)?(\d+)$")


def find_checkpoint(work_dir: str | os.PathLike[str]) -> Path:
    """The work dir's latest host checkpoint folder (highest ``checkpoint-iter_N``).

    Raises:
        ArtifactNotFoundError: no work dir, or no checkpoint holding ``model.pt`` in it.
    """
    folder = Path(work_dir)
    if not folder.is_dir():
        raise ArtifactNotFoundError(f"work dir {folder} not found")
    found = []
    for child in folder.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and (child / "model.pt").is_file():
            found.append((int(match.group(1)), child))
    if not found:
        raise ArtifactNotFoundError(
            f"{folder} holds no checkpoint-*/model.pt; train first (mogents finetune) or give "
            "--checkpoint"
        )
    return max(found)[1]


def _literal(node: ast.AST) -> Any:
    """A config value: literals, and ``dict(...)`` calls with literal keywords."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values) if k is not None}
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def read_run_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The top-level assignments of a saved mmengine config file, read without executing it
    (``dict(...)`` calls and literals; anything else reads as None).

    Raises:
        ArtifactFormatError: the file is not valid Python.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise ArtifactFormatError(f"{path} is not a readable config file ({err})") from err
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                out[target.id] = _literal(node.value)
    return out


def run_provenance(work_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What the run trained: ``base_artifact``, ``data``, ``stage`` (and ``seed``, ``mode``
    where known), from ``mogents_finetune.json`` or the runner's saved config; ``{}`` when
    neither is there."""
    from hftrainer_mogents.cli.finetune import RUN_RECORD

    folder = Path(work_dir)
    record = folder / RUN_RECORD
    if record.is_file():
        return dict(json.loads(record.read_text(encoding="utf-8")))
    saved = sorted(folder.glob("*/config.py"))
    if not saved:
        return {}
    cfg = read_run_config(saved[-1])
    model = cfg.get("model") or {}
    dataset = (cfg.get("train_dataloader") or {}).get("dataset") or {}
    trainer = cfg.get("trainer") or {}
    out = {
        "base_artifact": model.get("pretrained"),
        "stage": model.get("stage") or trainer.get("stage"),
        "data": dataset.get("data_root"),
        "seed": trainer.get("seed"),
        "mode": trainer.get("mode"),
        "config": str(saved[-1]),
    }
    return {k: v for k, v in out.items() if v is not None}


def _steps(checkpoint: Path) -> int | None:
    meta = checkpoint / "meta.pt"
    if meta.is_file():
        import torch

        value = torch.load(meta, map_location="cpu", weights_only=True)
        if isinstance(value, Mapping) and "global_step" in value:
            return int(value["global_step"])
    match = _CHECKPOINT.match(checkpoint.name)
    return int(match.group(1)) if match else None


def finetune_record(
    provenance: Mapping[str, Any], *, steps: int | None, checkpoint: Path
) -> dict[str, Any]:
    """The artifact's ``finetune.json``: the run's provenance with its steps and checkpoint.

    Args:
        provenance: from :func:`run_provenance` (``base_artifact``, ``data``, ``stage``, ...).
        steps: the checkpoint's completed steps (None: unknown).
        checkpoint: the checkpoint folder.
    """
    return {**provenance, "steps": steps, "checkpoint": checkpoint.name}


def export_checkpoint(
    work_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    base: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the run's checkpoint as an artifact (see the module docstring).

    Args:
        work_dir: the run's work dir.
        out: the artifact folder to write (created; must not be the base artifact).
        base: the artifact the run started from (default: the run's record).
        checkpoint: a checkpoint folder or ``model.pt`` (default: the latest in ``work_dir``).

    Returns:
        The artifact folder.

    Raises:
        ArtifactNotFoundError: no checkpoint, or the base artifact is unknown or missing.
        ArtifactFormatError: the checkpoint does not fit the base artifact's networks.
        InvalidInputError: ``out`` is the base artifact's folder.
    """
    from hftrainer_mogents.artifact import FINETUNE_NAME
    from hftrainer_mogents.bundle import MoGenTSBundle
    from hftrainer_mogents.host_compat import load_host_checkpoint
    from hftrainer_mogents.model_card import render_model_card
    from hftrainer_mogents.utils.io import atomic_write_json

    ckpt = Path(checkpoint) if checkpoint is not None else find_checkpoint(work_dir)
    ckpt_dir = ckpt if ckpt.is_dir() else ckpt.parent
    provenance = run_provenance(work_dir) if Path(work_dir).is_dir() else {}
    if base is not None:
        local = Path(base).expanduser()
        provenance["base_artifact"] = str(local.resolve()) if local.exists() else str(base)
    source = provenance.get("base_artifact")
    if not source:
        raise ArtifactNotFoundError(
            f"the base artifact of {work_dir} is not recorded (no mogents_finetune.json or "
            "saved config with model.pretrained); give it with --from"
        )
    target = Path(out).resolve()
    if Path(str(source)).exists() and Path(str(source)).resolve() == target:
        raise InvalidInputError(f"--out {out} is the base artifact; write to another folder")
    state = load_host_checkpoint(ckpt)
    bundle = MoGenTSBundle.from_pretrained(source, device="cpu")
    try:
        bundle.load_state_dict_selective(state, strict=True)
    except ArtifactFormatError as err:
        raise ArtifactFormatError(
            f"checkpoint {ckpt} does not fit the networks of {source}: {err}"
        ) from err
    folder = bundle.save_pretrained(target)
    record = finetune_record(provenance, steps=_steps(ckpt_dir), checkpoint=ckpt_dir)
    # machine-readable, so that `mogents publish` renders the same section on its own card
    atomic_write_json(folder / FINETUNE_NAME, record)
    # the card's example loads the folder it sits in (`mogents publish` writes its own card)
    card = render_model_card(bundle, repo_id=str(target), title=target.name, finetune=record)
    (folder / "README.md").write_text(card, encoding="utf-8")
    return folder


@click.command()
@click.argument("work_dir", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Artifact folder to write.")
@click.option(
    "--from",
    "base",
    default=None,
    help="The artifact the run started from [the run's record].",
)
@click.option(
    "--checkpoint",
    type=click.Path(exists=True),
    default=None,
    help="A checkpoint folder or model.pt [the latest in WORK_DIR].",
)
@user_errors
def export(work_dir: str, out: str, base: str | None, checkpoint: str | None) -> None:
    """Turn a fine-tuning run's checkpoint into an artifact that MoGenTSPipeline loads."""
    folder = export_checkpoint(work_dir, out, base=base, checkpoint=checkpoint)
    click.echo(f"wrote {folder}")
