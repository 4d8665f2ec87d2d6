"""``mogents edit``: temporal editing of a motion, written by the run of ``mogents generate``
(:func:`~hftrainer_mogents.jobs.generate.generate_run`)."""

from __future__ import annotations

from typing import Any

import click

from hftrainer_mogents.cli._common import (
    check_before_loading,
    generation_options,
    model_options,
    smpl_model_option,
    user_errors,
)

# moved to cli/generate.py (they are ``generate --sequence``); re-exported for one release
from hftrainer_mogents.cli.generate import parse_sequence, run_sequence  # noqa: F401
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


def _check_edit_flags(input_path: str, motion: Any, ranges: list[tuple[int, int]]) -> None:
    """INPUT.npy and --keep, checked before the model loads."""
    import numpy as np

    from hftrainer_mogents.config import MAX_MOTION_LENGTH, MIN_MOTION_LENGTH, UNIT_LENGTH

    if motion.ndim != 2 or motion.shape[1] != 263 or not np.issubdtype(motion.dtype, np.floating):
        raise click.BadParameter(
            f"{input_path} holds a {motion.shape} {motion.dtype} array; give a float (T, 263) "
            "HumanML3D-263 motion",
            param_hint="INPUT.npy",
        )
    frames = motion.shape[0]
    if frames % UNIT_LENGTH or not MIN_MOTION_LENGTH <= frames <= MAX_MOTION_LENGTH:
        raise click.BadParameter(
            f"{input_path} has {frames} frames; the model edits a multiple of {UNIT_LENGTH} "
            f"frames in [{MIN_MOTION_LENGTH}, {MAX_MOTION_LENGTH}]: trim it to "
            f"{min(frames // UNIT_LENGTH * UNIT_LENGTH, MAX_MOTION_LENGTH)} frames",
            param_hint="INPUT.npy",
        )
    if not np.isfinite(motion).all():
        raise click.BadParameter(
            f"{input_path} holds NaN or infinite values", param_hint="INPUT.npy"
        )
    for start, end in ranges:
        if not 0 <= start < end <= frames:
            raise click.BadParameter(
                f"{start}:{end}: a range needs 0 <= START < END <= {frames} (the motion's "
                "frames; END is exclusive)",
                param_hint="--keep",
            )
    from hftrainer_mogents.pipeline.editing import check_keep

    # refuse here what the edit would refuse after loading (a keep of no whole token step)
    check_before_loading(lambda: check_keep(ranges, frames), lambda _: "--keep")


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
    help="The formats of mogents generate (smpl needs --model-dir; glb holds the SMPL body with "
    "--model-dir, else the 22-joint skeleton).",
)
@smpl_model_option
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
    smpl_model_dir: str | None,
    overwrite: bool,
) -> None:
    """Re-generate the frames of INPUT.npy (a (T, 263) HumanML3D-263 motion) outside the --keep
    ranges from TEXT, keeping the rest."""
    import secrets
    from pathlib import Path

    import numpy as np

    from hftrainer_mogents.cli.generate import check_run_flags
    from hftrainer_mogents.errors import InvalidInputError
    from hftrainer_mogents.exports import file_names, load_export_model, parse_formats
    from hftrainer_mogents.jobs.generate import (
        ModelSource,
        RunItem,
        generate_run,
        prepare_output_dir,
        slugify,
    )

    ranges = [parse_keep(k) for k in keeps]
    wanted = parse_formats(formats, model_dir=smpl_model_dir)
    check_run_flags([text], None, seed=seed)
    try:
        motion = np.load(input_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InvalidInputError(f"cannot read {input_path} as a .npy array: {err}") from err
    _check_edit_flags(input_path, motion, ranges)  # before the model loads
    smpl_model = load_export_model(wanted, smpl_model_dir)  # read before the model loads
    prepare_output_dir(out_dir, overwrite=overwrite)  # checked before the model is loaded
    seed = secrets.randbits(31) if seed is None else seed

    def produce(pipe: Any, todo: list[RunItem]) -> tuple[list[Any], dict[str, Any]]:
        result = pipe.edit(
            motion, text, ranges, seed=seed, generation_config=generation_config, blend=blend
        )
        edit = {
            "input": str(Path(input_path).resolve()),
            "text": text,
            # the spans used: snapped inward to whole 4-frame token steps
            "keep": result.settings["edit"]["keep"][0],
            "keep_requested": [list(r) for r in ranges],
            "blend": blend,
            "decoder_reach": result.settings["edit"]["decoder_reach"],
        }
        return result.motions, {"settings": result.settings, "edit": edit}

    run, _ = generate_run(
        out_dir,
        [RunItem(0, text, f"edit_{slugify(text)}")],
        produce,
        source=ModelSource(model, revision, local_files_only, device, dtype),
        formats=wanted,
        record={
            "smpl_model": None if smpl_model is None else smpl_model.path,
            "generation_config": generation_config.to_dict(),
        },
        smpl_model=smpl_model,
        overwrite=overwrite,
    )
    item = run["items"][0]
    click.echo(f"{item['frames']} frames -> {', '.join(file_names(item['files']))}")
    click.echo(f"wrote 1 motion and run.json to {out_dir}")
