"""``mogents generate``: motions from text, written as features, joints, animations, BVH, SMPL
parameters and glTF."""

from __future__ import annotations

from typing import Any

import click

from hftrainer_mogents.cli._common import generation_options, model_options, user_errors
from hftrainer_mogents.generation_config import GenerationConfig

__all__ = ["generate"]


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
@click.option(
    "--model-dir",
    "smpl_model_dir",
    type=click.Path(),
    default=None,
    help="SMPL neutral model for --format smpl/glb: a folder holding SMPL_NEUTRAL.npz (or a "
    "chumpy-free .pkl), or the file.",
)
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
        from hftrainer_mogents.cli.edit import run_sequence
        from hftrainer_mogents.outputs import parse_formats as _parse_formats

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
            formats=_parse_formats(formats),
            overwrite=overwrite,
        )
    import secrets
    from pathlib import Path

    import torch

    from hftrainer_mogents.outputs import (
        RUN_FILE,
        file_names,
        finished_items,
        load_export_model,
        parse_formats,
        prepare_output_dir,
        read_prompt_file,
        run_header,
        save_motion,
        slugify,
    )
    from hftrainer_mogents.pipeline import MoGenTSPipeline, sample_seed
    from hftrainer_mogents.utils.io import atomic_write_json
    from hftrainer_mogents.utils.memory import keep_freed_memory

    prompts = list(texts) + (read_prompt_file(from_file) if from_file else [])
    if not prompts:
        raise click.UsageError("give at least one prompt (arguments or --from-file)")
    if lengths and len(lengths) not in (1, len(prompts)):
        raise click.BadParameter(
            f"{len(lengths)} --length values for {len(prompts)} prompts: give one, or one per prompt",
            param_hint="--length",
        )
    wanted = parse_formats(formats, model_dir=smpl_model_dir)
    smpl_model = load_export_model(wanted, smpl_model_dir)  # read before the generator loads
    per_prompt = (
        None
        if not lengths
        else (list(lengths) * len(prompts) if len(lengths) == 1 else list(lengths))
    )
    if skip_existing and mode != "fast":
        raise click.BadParameter(
            "resuming needs --mode fast (reference mode's draws couple the prompts of a batch)",
            param_hint="--skip-existing",
        )
    # the destination is checked before the model is loaded
    out = Path(out_dir)
    previous = prepare_output_dir(out, overwrite=overwrite, skip_existing=skip_existing)
    if previous is not None:
        seed = _resumed_seed(previous, seed, model, wanted, generation_config, per_prompt)
    seed = secrets.randbits(31) if seed is None else seed
    done = finished_items(previous, prompts, out)
    todo = [i for i in range(len(prompts)) if i not in done]

    items = list(done.values())
    settings = {**generation_config.to_dict(), "batch_size": batch_size, "mode": mode, "seed": seed}
    device_name = str(device) if device is not None else None
    if todo:
        pipe = MoGenTSPipeline.from_pretrained(
            model, revision=revision, local_files_only=local_files_only, device=device, dtype=dtype
        )
        device_name = str(pipe.device)
        if pipe.device.type == "cpu":
            keep_freed_memory()  # this process is ours: spare the page faults of every forward
        # each prompt draws from its own generator seeded from (seed, its index): a resumed run
        # generates exactly what the full run would have
        draws = (
            {"seed": seed}
            if len(todo) == len(prompts)
            else {"generator": [torch.Generator().manual_seed(sample_seed(seed, i)) for i in todo]}
        )
        result = pipe(
            [prompts[i] for i in todo],
            None if per_prompt is None else [per_prompt[i] for i in todo],
            generation_config=generation_config,
            batch_size=batch_size,
            mode=mode,
            **draws,
        )
        fits = [None] * len(todo)
        if smpl_model is not None:  # one batched IK for the whole run
            from hftrainer_mogents.motion.export import fit_smpl_params

            fits = fit_smpl_params(result.motions, model=smpl_model, device=device_name)
        for i, motion, fit in zip(todo, result.motions, fits):
            text = prompts[i]
            stem = f"{i:03d}_{slugify(text)}"
            files = save_motion(
                out, stem, motion, wanted, title=text, smpl_model=smpl_model, smpl_fit=fit
            )
            items.append({"index": i, "text": text, "frames": int(motion.shape[0]), "files": files})
            click.echo(f"[{i}] {motion.shape[0]} frames -> {', '.join(file_names(files))}")
    if done:
        click.echo(f"kept {len(done)} finished prompt(s) of the earlier run")
    items.sort(key=lambda item: item["index"])
    run = {
        **run_header(model, revision, device_name, dtype, wanted),
        "smpl_model": None if smpl_model is None else smpl_model.path,
        "generation_config": generation_config.to_dict(),
        "settings": settings,
        "requested_lengths": per_prompt,
        "items": items,
    }
    atomic_write_json(out / RUN_FILE, run)
    click.echo(f"wrote {len(todo)} motion(s) and run.json to {out}")


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
