"""``mogents generate``: motions from text, written as features, joints, animations and BVH."""

from __future__ import annotations

import click

from hftrainer_mogents._version import __version__
from hftrainer_mogents.cli._common import generation_options, user_errors
from hftrainer_mogents.config import DEFAULT_REPO_ID
from hftrainer_mogents.generation_config import GenerationConfig

__all__ = ["generate"]


@click.command()
@click.argument("texts", nargs=-1)
@click.option(
    "--from-file", "from_file", type=click.Path(dir_okay=False), help="Prompts, one per line."
)
@click.option(
    "--length",
    "lengths",
    type=float,
    multiple=True,
    help="Frames at 20 fps (one for all prompts, or one per prompt); default: estimated.",
)
@click.option(
    "--seed", type=int, default=None, help="Random seed (default: drawn and recorded in run.json)."
)
@click.option(
    "--model",
    default=DEFAULT_REPO_ID,
    show_default=True,
    help="Artifact folder or hub repo id.",
)
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit).")
@click.option("--local-files-only", is_flag=True, help="Do not contact the hub; use the cache.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option(
    "--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True
)
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
    help="Any of npy,joints,gif,mp4,bvh.",
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
) -> None:
    """Generate motions from text and write features, joints, animations and BVH files."""
    import secrets
    from datetime import datetime, timezone
    from pathlib import Path

    from hftrainer_mogents.outputs import parse_formats, read_prompt_file, save_motion, slugify
    from hftrainer_mogents.pipeline import MoGenTSPipeline
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
    wanted = parse_formats(formats)
    per_prompt = (
        None
        if not lengths
        else (list(lengths) * len(prompts) if len(lengths) == 1 else list(lengths))
    )
    seed = secrets.randbits(31) if seed is None else seed

    pipe = MoGenTSPipeline.from_pretrained(
        model, revision=revision, local_files_only=local_files_only, device=device, dtype=dtype
    )
    if pipe.device.type == "cpu":
        keep_freed_memory()  # this process is ours: spare the page faults of every forward
    result = pipe(
        prompts,
        per_prompt,
        generation_config=generation_config,
        seed=seed,
        batch_size=batch_size,
        mode=mode,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for i, (text, motion) in enumerate(zip(prompts, result.motions)):
        stem = f"{i:03d}_{slugify(text)}"
        files = save_motion(out, stem, motion, wanted, title=text)
        items.append({"index": i, "text": text, "frames": int(motion.shape[0]), "files": files})
        click.echo(
            f"[{i}] {motion.shape[0]} frames -> {', '.join(v for k, v in files.items() if isinstance(v, str))}"
        )
    run = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hftrainer_mogents": __version__,
        "model": model,
        "revision": revision,
        "device": str(pipe.device),
        "dtype": dtype,
        "formats": wanted,
        "generation_config": generation_config.to_dict(),
        "settings": result.settings,
        "requested_lengths": per_prompt,
        "items": items,
    }
    atomic_write_json(out / "run.json", run)
    click.echo(f"wrote {len(items)} motion(s) and run.json to {out}")
