"""``mogents generate``: motions from text, written as features, joints, animations, BVH, SMPL
parameters and glTF."""

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
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.jobs.generate import ModelSource

__all__ = ["generate", "parse_sequence", "run_sequence"]


@click.command()
@click.argument("texts", nargs=-1)
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(dir_okay=False),
    help="Prompts, one per line (blank lines and lines starting with # are skipped).",
)
@click.option(
    "--length",
    "lengths",
    type=float,
    multiple=True,
    help="Frames at 20 fps: give it once for all prompts, or once per prompt in their order; "
    "default: estimated by the model.",
)
@click.option(
    "--seed", type=int, default=None, help="Random seed (default: drawn and recorded in run.json)."
)
@model_options
@generation_options
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--mode", type=click.Choice(["fast", "reference"]), default="fast", show_default=True)
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
    help="Any of npy,joints,gif,mp4,bvh,smpl,glb (smpl needs --model-dir; glb holds the SMPL "
    "body with --model-dir, else the 22-joint skeleton).",
)
@smpl_model_option
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write into a folder holding an earlier run: the files its run.json lists are replaced.",
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Resume an earlier run in --out: prompts whose files exist are kept, the rest are "
    "generated as the full run would have (fast mode).",
)
@click.option(
    "--sequence",
    is_flag=True,
    help="One long motion: each argument is TEXT:FRAMES (e.g. 'walks forward:120'), joined in "
    "order by editing (any total length; see --transition).",
)
@click.option(
    "--transition",
    type=int,
    default=40,
    show_default=True,
    help="With --sequence: frames of the previous segment kept at each seam (multiple of 4).",
)
@user_errors
def generate(
    texts: tuple[str, ...],
    from_file: str | None,
    lengths: tuple[float, ...],
    seed: int | None,
    model: str,
    revision: str | None,
    local_files_only: bool,
    device: str | None,
    dtype: str,
    generation_config: GenerationConfig,
    batch_size: int,
    mode: str,
    out_dir: str,
    formats: str,
    smpl_model_dir: str | None,
    overwrite: bool,
    skip_existing: bool,
    sequence: bool,
    transition: int,
) -> None:
    """Generate motions from text and write features, joints, animations, BVH, SMPL and glTF
    files."""
    if sequence:
        from hftrainer_mogents.exports import parse_formats

        _check_sequence_flags(
            texts, from_file, lengths, skip_existing, mode, smpl_model_dir, formats
        )
        return run_sequence(
            texts,
            transition=transition,
            seed=seed,
            model=model,
            revision=revision,
            local_files_only=local_files_only,
            device=device,
            dtype=dtype,
            generation_config=generation_config,
            out_dir=out_dir,
            formats=parse_formats(formats),
            overwrite=overwrite,
        )
    import secrets

    import torch

    from hftrainer_mogents.exports import file_names, load_export_model, parse_formats
    from hftrainer_mogents.jobs.generate import RunItem, generate_run, prepare_output_dir, slugify
    from hftrainer_mogents.pipeline import sample_seed

    prompts, per_prompt = _prompts(texts, from_file, lengths)
    check_run_flags(prompts, per_prompt, seed=seed, batch_size=batch_size)
    wanted = parse_formats(formats, model_dir=smpl_model_dir)
    smpl_model = load_export_model(wanted, smpl_model_dir)  # read before the generator loads
    if skip_existing and mode != "fast":
        raise click.BadParameter(
            "resuming needs --mode fast (reference mode's draws couple the prompts of a batch)",
            param_hint="--skip-existing",
        )
    # the destination is checked before the model is loaded
    previous = prepare_output_dir(out_dir, overwrite=overwrite, skip_existing=skip_existing)
    if previous is not None:
        seed = _resumed_seed(previous, seed, model, wanted, generation_config, per_prompt)
        _resumed_batches(previous, batch_size)
    seed = secrets.randbits(31) if seed is None else seed

    def produce(pipe: Any, batch: list[RunItem]) -> tuple[list[Any], dict[str, Any]]:
        # one batch of the full run at a time, each prompt drawing from its own generator
        # seeded from (seed, its index), as one call over every prompt seeds it: a resumed run
        # generates exactly what the full run would have
        draws = (
            {"seed": seed}
            if mode == "reference"  # re-seeded with the seed per batch, as one call does
            else {
                "generator": [
                    torch.Generator(device=pipe.device).manual_seed(sample_seed(seed, it.index))
                    for it in batch
                ]
            }
        )
        result = pipe(
            [it.text for it in batch],
            None if per_prompt is None else [per_prompt[it.index] for it in batch],
            generation_config=generation_config,
            batch_size=batch_size,
            mode=mode,
            **draws,
        )
        return result.motions, {}

    settings = {**generation_config.to_dict(), "batch_size": batch_size, "mode": mode, "seed": seed}
    _, job = generate_run(
        out_dir,
        [RunItem(i, text, f"{i:03d}_{slugify(text)}") for i, text in enumerate(prompts)],
        produce,
        source=ModelSource(model, revision, local_files_only, device, dtype),
        formats=wanted,
        record={
            "smpl_model": None if smpl_model is None else smpl_model.path,
            "generation_config": generation_config.to_dict(),
            "settings": settings,
            "requested_lengths": per_prompt,
        },
        previous=previous,
        smpl_model=smpl_model,
        on_item=lambda e: click.echo(
            f"[{e['index']}] {e['frames']} frames -> {', '.join(file_names(e['files']))}"
        ),
        batch_size=batch_size,
        overwrite=overwrite,
    )
    if job.skipped:
        click.echo(f"kept {job.skipped} finished prompt(s) of the earlier run")
    click.echo(f"wrote {len(job.todo)} motion(s) and run.json to {out_dir}")


def check_run_flags(
    texts: list[str],
    lengths: list[float] | None,
    *,
    seed: int | None,
    batch_size: int | None = None,
    length_flag: str = "--length",
) -> None:
    """What can be checked without the model, before it loads (a hub model downloads first):
    the prompts, the lengths, the seed and the batch size, each refused naming its flag."""
    import math

    from hftrainer_mogents.config import MIN_MOTION_LENGTH

    for i, text in enumerate(texts):
        if not text.strip():
            raise click.BadParameter(
                f"prompt {i + 1} is empty; describe the motion in words", param_hint="TEXTS"
            )
    for i, frames in enumerate(lengths or []):
        where = f"{frames!r} (prompt {i + 1}, {texts[i]!r})" if len(texts) > 1 else repr(frames)
        if not math.isfinite(frames) or frames < MIN_MOTION_LENGTH:
            raise click.BadParameter(
                f"{where} frames: give a finite length of at least {MIN_MOTION_LENGTH} frames "
                f"({MIN_MOTION_LENGTH // 20} s at 20 fps); longer ones are floored to a multiple "
                "of 4 and kept within 196",
                param_hint=length_flag,
            )
    if seed is not None and not 0 <= seed < 2**63:
        raise click.BadParameter(f"{seed}: give a seed in [0, 2**63)", param_hint="--seed")
    if batch_size is not None and batch_size < 1:
        raise click.BadParameter(f"{batch_size}: give at least 1", param_hint="--batch-size")


def _resumed_batches(previous: dict[str, Any], batch_size: int) -> None:
    """A resumed run regenerates whole batches of the earlier run: the same --batch-size."""
    earlier = previous.get("settings", {}).get("batch_size")
    if earlier is not None and earlier != batch_size:
        raise click.UsageError(
            f"--skip-existing: the earlier run used --batch-size {earlier}, this one "
            f"{batch_size}; resume with --batch-size {earlier} (its batches are regenerated as "
            "they were), or use --overwrite or another --out"
        )


def _prompts(
    texts: tuple[str, ...], from_file: str | None, lengths: tuple[float, ...]
) -> tuple[list[str], list[float] | None]:
    """The prompts (arguments, then the file's) and one length per prompt (None: estimated)."""
    from hftrainer_mogents.jobs.generate import read_prompt_file

    prompts = list(texts) + (read_prompt_file(from_file) if from_file else [])
    if not prompts:
        raise click.UsageError("give at least one prompt (arguments or --from-file)")
    if lengths and len(lengths) not in (1, len(prompts)):
        raise click.BadParameter(
            f"{len(lengths)} --length values for {len(prompts)} prompts: give one, or one per prompt",
            param_hint="--length",
        )
    if not lengths:
        return prompts, None
    return prompts, list(lengths) * len(prompts) if len(lengths) == 1 else list(lengths)


def _check_sequence_flags(
    texts: tuple[str, ...],
    from_file: str | None,
    lengths: tuple[float, ...],
    skip_existing: bool,
    mode: str,
    smpl_model_dir: str | None,
    formats: str,
) -> None:
    """Refuse the flags ``--sequence`` does not take."""
    if from_file or lengths or skip_existing or mode != "fast":
        raise click.UsageError(
            "--sequence takes TEXT:FRAMES arguments; --from-file, --length, --skip-existing "
            "and --mode reference do not apply"
        )
    if smpl_model_dir is not None or {"smpl"} & set(formats.split(",")):
        raise click.UsageError(
            "--sequence writes npy, joints, gif, mp4, bvh and the skeleton glb; SMPL output of "
            "a long motion is not supported yet (fit it with mogents bridge --to smpl135)"
        )
    if not texts:
        raise click.UsageError("--sequence needs at least one TEXT:FRAMES argument")


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

    from hftrainer_mogents.config import UNIT_LENGTH
    from hftrainer_mogents.exports import file_names
    from hftrainer_mogents.jobs.generate import (
        RunItem,
        generate_run,
        prepare_output_dir,
        sequence_producer,
    )

    texts, lengths = parse_sequence(specs)
    check_run_flags(texts, [float(n) for n in lengths], seed=seed, length_flag="--sequence")
    if transition < UNIT_LENGTH or transition % UNIT_LENGTH:
        raise click.BadParameter(
            f"{transition}: give a multiple of {UNIT_LENGTH} frames, at least {UNIT_LENGTH}",
            param_hint="--transition",
        )
    _check_sequence_plan(texts, lengths, transition)  # before the model loads
    prepare_output_dir(out_dir, overwrite=overwrite)
    seed = secrets.randbits(31) if seed is None else seed

    produce = sequence_producer(
        texts, lengths, transition=transition, seed=seed, generation_config=generation_config
    )
    run, _ = generate_run(
        out_dir,
        [RunItem(0, " / ".join(texts), "sequence")],
        produce,
        source=ModelSource(model, revision, local_files_only, device, dtype),
        formats=formats,
        record={"generation_config": generation_config.to_dict()},
        overwrite=overwrite,
    )
    item = run["items"][0]
    names = ", ".join(file_names(item["files"]))
    click.echo(f"{item['frames']} frames ({len(texts)} prompt(s)) -> {names}")
    click.echo(f"wrote 1 motion and run.json to {out_dir}")


def _check_sequence_plan(texts: list[str], lengths: list[int], transition: int) -> None:
    """generate_long's own checks (the transition against the first window included), without
    the model; its flooring warning is logged once, by the generation itself."""
    from hftrainer_mogents.pipeline.long_motion import check_sequence

    check_before_loading(
        lambda: check_sequence(texts, lengths, transition),
        lambda message: "--transition" if "transition" in message else "--sequence",
    )


def _resumed_seed(
    previous: dict[str, Any],
    seed: int | None,
    model: str,
    formats: list[str],
    generation_config: GenerationConfig,
    lengths: list[float] | None,
) -> int:
    """The earlier run's seed, after checking that it was made the way this run would make it."""
    earlier = previous.get("settings", {}).get("seed")
    theirs = {
        "--model": previous.get("model"),
        "--format": previous.get("formats"),
        "the generation settings": previous.get("generation_config"),
        "--length": previous.get("requested_lengths"),
        "--seed": earlier,
    }
    ours = {
        "--model": model,
        "--format": formats,
        "the generation settings": generation_config.to_dict(),
        "--length": lengths,
        "--seed": earlier if seed is None else seed,
    }
    changed = [name for name in ours if ours[name] != theirs[name]]
    if changed or not isinstance(earlier, int):
        raise click.UsageError(
            f"--skip-existing: the earlier run in this folder differs ({', '.join(changed) or 'no seed'}"
            "); resume with its settings, or use --overwrite or another --out"
        )
    return earlier
