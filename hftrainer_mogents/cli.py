"""The ``mogents`` command.

Each subcommand imports torch and model code inside its body, so ``mogents --help`` is instant.
Library errors (:class:`~hftrainer_mogents.errors.MoGenTSError`) become a one-line message and a
non-zero exit, without a traceback.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hftrainer_mogents._version import __version__
from hftrainer_mogents.errors import MoGenTSError

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(fn: F) -> F:
    """Turn our typed errors into ``click.ClickException`` at the command boundary."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MoGenTSError as err:
            raise click.ClickException(f"{type(err).__name__}: {err}") from err

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mogents")
def cli() -> None:
    """MoGenTS text-to-motion: generate, convert, evaluate and bridge HumanML3D-263 motions."""


def _torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a core dependency
        return {"installed": False, "error": str(err)}
    info: dict[str, Any] = {
        "installed": True,
        "version": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "num_threads": torch.get_num_threads(),
    }
    if info["cuda_available"]:
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


@cli.command()
@_user_errors
def info() -> None:
    """Print versions, devices, installed plugins and what they provide, as JSON."""
    from hftrainer_mogents.zoo import host, loader

    report: dict[str, Any] = {
        "hftrainer_mogents": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": _torch_info(),
        "host": {"installed": host.host_installed(), "version": host.host_version()},
        "plugins": loader.plugin_info(),
    }
    try:
        report["models"] = [
            {
                "name": spec.name,
                "plugin": spec.plugin,
                "task": spec.task,
                "representation": spec.representation,
                "fps": spec.fps,
                "default_artifact": spec.default_artifact,
                "pipeline": spec.pipeline,
                "bundle": spec.bundle,
                "evaluators": list(spec.evaluators),
            }
            for spec in loader.list_models()
        ]
    except MoGenTSError as err:  # a name clash must not hide the rest of the report
        report["models_error"] = str(err)
    report["evaluators"] = [
        {"name": s.name, "plugin": s.plugin, "representation": s.representation, "cls": s.cls}
        for s in loader.list_evaluators()
    ]
    report["converters"] = [
        {"edge": s.name, "plugin": s.plugin, "fn": s.fn} for s in loader.list_converters()
    ]
    report["benchmarks"] = [
        {"name": s.name, "plugin": s.plugin, "model": s.model, "evaluator": s.evaluator}
        for s in loader.list_benchmarks()
    ]
    click.echo(json.dumps(report, indent=2, sort_keys=False))


@cli.command()
@click.option(
    "--weights_root",
    "--weights-root",
    "weights_root",
    type=click.Path(file_okay=False),
    default="logs",
    show_default=True,
    help="Folder holding <dataset>/pretrain_{vq,mtrans,rtrans}.",
)
@click.option(
    "--length_root",
    "--length-root",
    "length_root",
    type=click.Path(file_okay=False),
    default="checkpoints",
    show_default=True,
    help="Folder holding <dataset>/length_estimator/model/finest.tar.",
)
@click.option(
    "--out_dir",
    "--out-dir",
    "out_dir",
    type=click.Path(),
    required=True,
    help="Artifact folder to write.",
)
@click.option(
    "--dataset_name", "--dataset-name", "dataset_name", default="humanml3d", show_default=True
)
@click.option(
    "--vq_name",
    "--vq-name",
    "vq_name",
    default=None,
    help="Default: vq_name from the mtrans opt.txt.",
)
@click.option(
    "--mtrans_name", "--mtrans-name", "mtrans_name", default="pretrain_mtrans", show_default=True
)
@click.option(
    "--rtrans_name", "--rtrans-name", "rtrans_name", default="pretrain_rtrans", show_default=True
)
@click.option("--len_name", "--len-name", "len_name", default="length_estimator", show_default=True)
@click.option(
    "--vq_ckpt_name",
    "--vq-ckpt-name",
    "vq_ckpt_name",
    default="net_best_fid.tar",
    show_default=True,
)
@click.option(
    "--mask_ckpt_name",
    "--mask-ckpt-name",
    "mask_ckpt_name",
    default="net_best_fid.tar",
    show_default=True,
)
@click.option(
    "--res_ckpt_name",
    "--res-ckpt-name",
    "res_ckpt_name",
    default="net_best_fid.tar",
    show_default=True,
)
@click.option(
    "--len_ckpt_name", "--len-ckpt-name", "len_ckpt_name", default="finest.tar", show_default=True
)
@click.option(
    "--clip",
    "clip_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="OpenAI ViT-B-32.pt (TorchScript) or an OpenAI-layout state dict (.pt/.safetensors); default: ~/.cache/clip/ViT-B-32.pt.",
)
@click.option(
    "--no_length_estimator",
    "--no-length-estimator",
    "no_length_estimator",
    is_flag=True,
    help="Convert without the length estimator.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out_dir.")
@click.option(
    "--verify", is_flag=True, help="Reload the artifact and prove it equal to the raw checkpoints."
)
@_user_errors
def convert(
    weights_root,
    length_root,
    out_dir,
    dataset_name,
    vq_name,
    mtrans_name,
    rtrans_name,
    len_name,
    vq_ckpt_name,
    mask_ckpt_name,
    res_ckpt_name,
    len_ckpt_name,
    clip_path,
    no_length_estimator,
    overwrite,
    verify,
) -> None:
    """Convert the official MoGenTS checkpoints (+ CLIP) into a safetensors artifact."""
    from pathlib import Path

    from hftrainer_mogents.convert.official import (
        OfficialLayout,
        convert_official,
        format_verify_table,
    )

    layout = OfficialLayout(
        weights_root=Path(weights_root),
        length_root=Path(length_root),
        dataset_name=dataset_name,
        vq_name=vq_name,
        mtrans_name=mtrans_name,
        rtrans_name=rtrans_name,
        len_name=len_name,
        vq_ckpt_name=vq_ckpt_name,
        mask_ckpt_name=mask_ckpt_name,
        res_ckpt_name=res_ckpt_name,
        len_ckpt_name=len_ckpt_name,
    )
    try:
        result = convert_official(
            layout,
            out_dir,
            clip=clip_path,
            load_length_estimator=not no_length_estimator,
            overwrite=overwrite,
            verify=verify,
        )
    except FileExistsError as err:
        raise click.ClickException(f"{err} (pass --overwrite)") from err
    click.echo(f"wrote {result.out_dir}: {', '.join(result.files)}")
    if verify:
        click.echo(format_verify_table(result.verify))
        if not result.verified:
            raise click.ClickException(
                "verification failed: the artifact differs from the checkpoints"
            )
        click.echo("verified: every tensor and every module output equals the raw checkpoints")


@cli.command()
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
    default="ZeyuLing/hftrainer-mogents-humanml3d",
    show_default=True,
    help="Artifact folder or hub repo id.",
)
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit).")
@click.option("--local-files-only", is_flag=True, help="Do not contact the hub; use the cache.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option(
    "--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True
)
@click.option(
    "--steps",
    "time_steps",
    type=int,
    default=10,
    show_default=True,
    help="Masked-decoding iterations.",
)
@click.option("--cond-scale", type=float, default=4.0, show_default=True)
@click.option("--res-cond-scale", type=float, default=5.0, show_default=True)
@click.option("--topkr", type=float, default=0.9, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--gumbel-sample", is_flag=True)
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
@_user_errors
def generate(
    texts,
    from_file,
    lengths,
    seed,
    model,
    revision,
    local_files_only,
    device,
    dtype,
    time_steps,
    cond_scale,
    res_cond_scale,
    topkr,
    temperature,
    gumbel_sample,
    batch_size,
    mode,
    out_dir,
    formats,
) -> None:
    """Generate motions from text and write features, joints, animations and BVH files."""
    import secrets
    from datetime import datetime, timezone
    from pathlib import Path

    from hftrainer_mogents.outputs import parse_formats, read_prompt_file, save_motion, slugify
    from hftrainer_mogents.pipeline import MoGenTSPipeline
    from hftrainer_mogents.utils.io import atomic_write_json

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
    result = pipe(
        prompts,
        per_prompt,
        time_steps=time_steps,
        cond_scale=cond_scale,
        res_cond_scale=res_cond_scale,
        topkr=topkr,
        temperature=temperature,
        gumbel_sample=gumbel_sample,
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
        "settings": result.settings,
        "requested_lengths": per_prompt,
        "items": items,
    }
    atomic_write_json(out / "run.json", run)
    click.echo(f"wrote {len(items)} motion(s) and run.json to {out}")


@cli.command()
@click.argument("artifact_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--repo-id", required=True, help="Hub repo to publish to, e.g. you/mogents-humanml3d."
)
@click.option("--token", default=None, help="Hub token (default: the logged-in one).")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--revision", default=None, help="Branch to push to.")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of pushing.")
@click.option("--message", default="Upload MoGenTS artifact", show_default=True)
@_user_errors
def publish(artifact_dir, repo_id, token, private, revision, create_pr, message) -> None:
    """Verify an artifact folder and upload it to the Hugging Face Hub with a model card."""
    from hftrainer_mogents.bundle import MoGenTSBundle

    bundle = MoGenTSBundle.from_pretrained(artifact_dir, device="cpu")  # checks files and checksums
    url = bundle.push_to_hub(
        repo_id,
        token=token,
        private=private or None,
        revision=revision,
        commit_message=message,
        create_pr=create_pr,
    )
    click.echo(f"published {artifact_dir} to {repo_id}: {url}")


def main() -> None:  # pragma: no cover - console entry for `python -m hftrainer_mogents`
    cli(prog_name="mogents")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
