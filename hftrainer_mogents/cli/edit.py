"""``mogents edit`` (temporal editing of a motion) and the body of ``mogents generate
--sequence`` (one long motion from several prompts); both write with ``generate``'s writers."""

from __future__ import annotations

from typing import Any

import click

from hftrainer_mogents.cli._common import generation_options, model_options, user_errors
from hftrainer_mogents.generation_config import GenerationConfig

__all__ = ["edit", "parse_keep", "parse_sequence", "run_sequence"]


def parse_keep(spec: str) -> tuple[int, int]:
    """``"START:END"`` (frames, end exclusive) -> ``(start, end)``."""
    parts = spec.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise click.BadParameter(
            f"{spec!r}: give a frame range START:END, e.g. 0:40", param_hint="--keep"
        ) from None


def parse_sequence(specs: tuple[str, ...] | list[str]) -> tuple[list[str], list[int]]:
    """``["walks forward:120", ...]`` -> texts and frame counts (the last ``:`` splits)."""
    texts, lengths = [], []
    for spec in specs:
        text, sep, frames = spec.rpartition(":")
        try:
            if not sep or not text.strip():
                raise ValueError
            lengths.append(int(frames))
        except ValueError:
            raise click.BadParameter(
                f"{spec!r}: with --sequence each prompt is TEXT:FRAMES, e.g. 'walks forward:120'",
                param_hint="--sequence",
            ) from None
        texts.append(text)
    return texts, lengths


def _write_run(out: Any, run: dict[str, Any]) -> None:
    from hftrainer_mogents.outputs import RUN_FILE
    from hftrainer_mogents.utils.io import atomic_write_json

    atomic_write_json(out / RUN_FILE, run)


def run_sequence(
    specs: tuple[str, ...] | list[str],
    *,
    transition: int,
    seed: int | None,
    model: str,
    revision: str | None,
    local_files_only: bool,
    device: str | None,
    dtype: str,
    generation_config: GenerationConfig,
    out_dir: str,
    formats: list[str],
    overwrite: bool,
) -> None:
    """``mogents generate --sequence``: one long motion (``generate_long``) written as
    ``sequence.*`` with a ``run.json`` recording the prompts, frames and windows."""
    import secrets
    from pathlib import Path

    from hftrainer_mogents.outputs import file_names, prepare_output_dir, run_header, save_motion
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    texts, lengths = parse_sequence(specs)
    out = Path(out_dir)
    prepare_output_dir(out, overwrite=overwrite)
    seed = secrets.randbits(31) if seed is None else seed
    pipe = MoGenTSPipeline.from_pretrained(
        model, revision=revision, local_files_only=local_files_only, device=device, dtype=dtype
    )
    result = pipe.generate_long(
        texts,
        lengths,
        transition=transition,
        seed=seed,
        generation_config=generation_config,
    )
    motion = result.motions[0]
    title = " / ".join(texts)
    files = save_motion(out, "sequence", motion, formats, title=title)
    run = {
        **run_header(model, revision, str(pipe.device), dtype, formats),
        "generation_config": generation_config.to_dict(),
        "settings": result.settings,
        "sequence": result.settings["sequence"],
        "items": [{"index": 0, "text": title, "frames": int(len(motion)), "files": files}],
    }
    _write_run(out, run)
    click.echo(f"{len(motion)} frames ({len(texts)} prompt(s)) -> {', '.join(file_names(files))}")
    click.echo(f"wrote 1 motion and run.json to {out}")


@click.command()
@click.argument("input_path", metavar="INPUT.npy", type=click.Path(dir_okay=False, exists=True))
@click.argument("text")
@click.option(
    "--keep",
    "keeps",
    multiple=True,
    required=True,
    help="Frames to keep, START:END (end exclusive); repeat for several ranges. The other "
    "frames are re-generated from TEXT.",
)
@click.option("--blend", is_flag=True, help="Put the input frames back beyond the decoder's reach.")
@click.option(
    "--seed", type=int, default=None, help="Random seed (default: drawn and recorded in run.json)."
)
@model_options
@generation_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="mogents_outputs",
    show_default=True,
)
@click.option(
    "--format",
    "formats",
    default="npy,joints,gif,bvh",
    show_default=True,
    help="The formats of mogents generate.",
)
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier run in --out.")
@user_errors
def edit(
    input_path: str,
    text: str,
    keeps: tuple[str, ...],
    blend: bool,
    seed: int | None,
    model: str,
    revision: str | None,
    local_files_only: bool,
    device: str | None,
    dtype: str,
    generation_config: GenerationConfig,
    out_dir: str,
    formats: str,
    overwrite: bool,
) -> None:
    """Re-generate the frames of INPUT.npy (a (T, 263) HumanML3D-263 motion) outside the --keep
    ranges from TEXT, keeping the rest."""
    import secrets
    from pathlib import Path

    import numpy as np

    from hftrainer_mogents.errors import InvalidInputError
    from hftrainer_mogents.outputs import (
        file_names,
        parse_formats,
        prepare_output_dir,
        run_header,
        save_motion,
        slugify,
    )
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    ranges = [parse_keep(k) for k in keeps]
    wanted = parse_formats(formats)
    try:
        motion = np.load(input_path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InvalidInputError(f"cannot read {input_path} as a .npy array: {err}") from err
    out = Path(out_dir)
    prepare_output_dir(out, overwrite=overwrite)  # checked before the model is loaded
    seed = secrets.randbits(31) if seed is None else seed
    pipe = MoGenTSPipeline.from_pretrained(
        model, revision=revision, local_files_only=local_files_only, device=device, dtype=dtype
    )
    result = pipe.edit(
        motion, text, ranges, seed=seed, generation_config=generation_config, blend=blend
    )
    edited = result.motions[0]
    files = save_motion(out, f"edit_{slugify(text)}", edited, wanted, title=text)
    run = {
        **run_header(model, revision, str(pipe.device), dtype, wanted),
        "generation_config": generation_config.to_dict(),
        "settings": result.settings,
        "edit": {
            "input": str(Path(input_path).resolve()),
            "text": text,
            "keep": [list(r) for r in ranges],
            "blend": blend,
            "decoder_reach": result.settings["edit"]["decoder_reach"],
        },
        "items": [{"index": 0, "text": text, "frames": int(len(edited)), "files": files}],
    }
    _write_run(out, run)
    click.echo(f"{len(edited)} frames -> {', '.join(file_names(files))}")
    click.echo(f"wrote 1 motion and run.json to {out}")
