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
    converters = loader.list_converters()
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
                "converters": [c.name for c in converters if c.src == spec.representation],
            }
            for spec in loader.list_models()
        ]
    except MoGenTSError as err:  # a name clash must not hide the rest of the report
        report["models_error"] = str(err)
    report["evaluators"] = [
        {"name": s.name, "plugin": s.plugin, "representation": s.representation, "cls": s.cls}
        for s in loader.list_evaluators()
    ]
    report["converters"] = [{"edge": s.name, "plugin": s.plugin, "fn": s.fn} for s in converters]
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


@cli.command("convert-evaluator")
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False),
    default="checkpoints",
    show_default=True,
    help="Folder holding t2m/Comp_v6_KLD005 and t2m/text_mot_match (the official evaluator zip).",
)
@click.option(
    "--glove",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of our_vab_*.{npy,pkl} [default: <checkpoints>/glove, then ./glove beside it].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder [default: <checkpoints>/evaluators/hml263].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@_user_errors
def convert_evaluator(
    checkpoints: str, glove: str | None, out: str | None, overwrite: bool
) -> None:
    """Convert the HumanML3D-263 evaluator (weights, mean/std, GloVe) to safetensors/npy/json."""
    from hftrainer_mogents.convert.evaluator_hml263 import convert_hml263_evaluator

    try:
        path = convert_hml263_evaluator(checkpoints, out, glove_dir=glove, overwrite=overwrite)
    except FileExistsError as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(path))


def _evaluation_options(fn: F) -> F:
    """The options every ``mogents evaluate`` command shares."""
    options = [
        click.option("--gt-only", is_flag=True, help="Score the real data only."),
        click.option("--n-repeats", type=int, default=20, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", default=None, help="Torch device [default: cuda if available]."),
        click.option("--strict", is_flag=True, help="Fail on a missing prediction."),
        click.option("--max-samples", type=int, default=None, help="First ids of the split only."),
        click.option("--diversity-times", type=int, default=None, help="Diversity pairs."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@cli.group()
def evaluate() -> None:
    """Score generated motions with an evaluator (FID, R-precision, MM-Dist, ...)."""


@evaluate.command("hml263")
@_evaluation_options
@click.option(
    "--pred-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Predictions (<key>.npy, (T, 263) at 20 fps); generated there first with --model-path.",
)
@click.option(
    "--dataset-root",
    type=click.Path(file_okay=False),
    default="dataset/HumanML3D",
    show_default=True,
    help="HumanML3D folder (new_joint_vecs/, texts/, split/test.txt).",
)
@click.option(
    "--evaluator",
    "evaluator_dir",
    type=click.Path(file_okay=False),
    default="checkpoints/evaluators/hml263",
    show_default=True,
    help="Converted evaluator (mogents convert-evaluator).",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of verify_hml263.json/.md [default: <pred-dir>/metrics].",
)
@click.option("--model-path", default=None, help="Generate the test split with this model first.")
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "bf16"]),
    default="fp32",
    show_default=True,
    help="Evaluator precision (bf16: faster on bf16 hardware, drifts slightly; not the reference).",
)
@click.option(
    "--gt-cache",
    type=click.Path(file_okay=False),
    default=None,
    help="Cache of the real-motion embeddings [default: $XDG_CACHE_HOME/hftrainer_mogents/hml263].",
)
@click.option("--no-gt-cache", is_flag=True, help="Encode the real motions every time.")
@click.option(
    "--mm-samples",
    type=int,
    default=96,
    show_default=True,
    help="Items generated repeatedly for MultiModality (--model-path; 0: none).",
)
@click.option("--mm-repeats", type=int, default=30, show_default=True, help="Generations each.")
@click.option("--skip-existing", is_flag=True, help="Resume the generation (with --model-path).")
@click.option("--num-shards", type=int, default=None, help="Generation shards (--model-path).")
@click.option("--shard-index", type=int, default=None, help="This shard (--model-path).")
@_user_errors
def evaluate_hml263(
    pred_dir: str | None,
    dataset_root: str,
    evaluator_dir: str,
    out_dir: str | None,
    model_path: str | None,
    gt_only: bool,
    n_repeats: int,
    seed: int,
    device: str | None,
    dtype: str,
    strict: bool,
    max_samples: int | None,
    diversity_times: int | None,
    gt_cache: str | None,
    no_gt_cache: bool,
    mm_samples: int,
    mm_repeats: int,
    skip_existing: bool,
    num_shards: int | None,
    shard_index: int | None,
) -> None:
    """HumanML3D-263 test protocol (Guo et al. evaluator), beside the published MoGenTS numbers."""
    from hftrainer_mogents.evaluation.hml263.dataset import read_test_split
    from hftrainer_mogents.evaluation.hml263.evaluator import (
        HumanML263Evaluator,
        default_cache_dir,
    )
    from hftrainer_mogents.evaluation.hml263.protocol import generate_test_split, load_generator
    from hftrainer_mogents.evaluation.hml263.report import write_hml263_report
    from hftrainer_mogents.utils.sharding import resolve_shard

    if pred_dir is None and not gt_only:
        raise click.UsageError("give --pred-dir (or --gt-only)")
    split = read_test_split(dataset_root, max_samples=max_samples)
    if model_path is not None:
        if pred_dir is None:
            raise click.UsageError("--model-path needs --pred-dir to write the predictions to")
        shards, index = resolve_shard(num_shards, shard_index)
        summary = generate_test_split(
            load_generator(model_path, device=device),
            None,
            pred_dir,
            split=split,
            seed=seed,
            mm_samples=mm_samples,
            mm_repeats=mm_repeats,
            num_shards=shards,
            shard_index=index,
            skip_existing=skip_existing,
        )
        click.echo(f"generation: written {summary['written']}, skipped {summary['skipped']}")
        if shards > 1:
            click.echo("sharded generation: run the evaluation once every shard has finished")
            return
    import torch

    evaluator = HumanML263Evaluator.from_pretrained(
        evaluator_dir, device=device, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32
    )
    result = evaluator.evaluate_dir(
        None if gt_only else pred_dir,
        split=split,
        n_repeats=n_repeats,
        seed=seed,
        strict=strict,
        diversity_times=diversity_times,
        cache_dir=None if no_gt_cache else (gt_cache or default_cache_dir()),
    )
    target = out_dir or (f"{pred_dir}/metrics" if pred_dir else "metrics")
    json_path, md_path = write_hml263_report(result, target)
    click.echo(md_path.read_text(encoding="utf-8"))
    click.echo(f"written {json_path} and {md_path}")


@evaluate.command("ms272")
@_evaluation_options
@click.option(
    "--pred-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Predictions (<key>.npy, (T, 272) raw at 30 fps), e.g. the output of mogents bridge.",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default="data/evaluators/humanml3d_272",
    show_default=True,
    help="humanml3d_272 folder (motion_data/, texts/, split/test.txt, mean_std/).",
)
@click.option(
    "--evaluator",
    "evaluator_dir",
    type=click.Path(file_okay=False),
    default="checkpoints/evaluators/ms272",
    show_default=True,
    help="Converted evaluator (mogents convert-evaluator-ms272).",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Report folder [default: <pred-dir>/metrics].",
)
@click.option(
    "--caption-selection",
    type=click.Choice(["first", "random"]),
    default=None,
    help="[default: first with predictions, random with --gt-only]",
)
@click.option(
    "--pairs",
    type=click.Choice(["entry", "caption"]),
    default="entry",
    show_default=True,
    help="One sample per test entry, or per caption line (the zoo's variant).",
)
@click.option(
    "--batch-size", type=int, default=32, show_default=True, help="R-precision batch size."
)
@_user_errors
def evaluate_ms272(**opts: Any) -> None:
    """MotionStreamer-272 metrics (TMR-style evaluator) of 272 predictions."""
    from hftrainer_mogents.evaluation.ms272.evaluator import MotionStreamer272Evaluator
    from hftrainer_mogents.evaluation.ms272.report import write_ms272_report

    if opts["pred_dir"] is None and not opts["gt_only"]:
        raise click.UsageError("give --pred-dir (or --gt-only)")
    evaluator = MotionStreamer272Evaluator.from_pretrained(
        opts["evaluator_dir"], device=opts["device"]
    )
    result = evaluator.evaluate_dir(
        None if opts["gt_only"] else opts["pred_dir"],
        data_root=opts["data_root"],
        gt_only=opts["gt_only"],
        caption_selection=opts["caption_selection"],
        pairs=opts["pairs"],
        strict=opts["strict"],
        max_samples=opts["max_samples"],
        n_repeats=opts["n_repeats"],
        seed=opts["seed"],
        batch_size=opts["batch_size"],
        diversity_times=opts["diversity_times"],
    )
    pred_dir = opts["pred_dir"]
    target = opts["out_dir"] or (f"{pred_dir}/metrics" if pred_dir else "metrics")
    json_path, md_path = write_ms272_report(result, target)
    click.echo(md_path.read_text(encoding="utf-8"))
    click.echo(f"written {json_path} and {md_path}")


@cli.command("convert-evaluator-ms272")
@click.option(
    "--ckpt",
    required=True,
    type=click.Path(dir_okay=False),
    help="MotionStreamer's Evaluator_272/epoch=99.ckpt (Lightning).",
)
@click.option(
    "--out-dir",
    default="checkpoints/evaluators/ms272",
    show_default=True,
    type=click.Path(file_okay=False),
)
@click.option(
    "--text-model",
    default="distilbert-base-uncased",
    show_default=True,
    help="DistilBERT folder or hub id (tokenizer and config are stored in the output).",
)
@click.option(
    "--mean-std",
    type=click.Path(file_okay=False),
    default=None,
    help="humanml3d_272/mean_std (Mean.npy, Std.npy) to store with the evaluator.",
)
@click.option(
    "--num-heads",
    type=int,
    default=4,
    show_default=True,
    help="Attention heads (not in the checkpoint).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.option("--local-files-only", is_flag=True, help="Do not reach the hub for --text-model.")
@_user_errors
def convert_evaluator_ms272(**opts: Any) -> None:
    """Convert MotionStreamer's 272 evaluator checkpoint once, safely, to safetensors."""
    from hftrainer_mogents.convert.evaluator_ms272 import convert_ms272_evaluator

    out = convert_ms272_evaluator(
        opts["ckpt"],
        opts["out_dir"],
        text_model=opts["text_model"],
        mean_std=opts["mean_std"],
        num_heads=opts["num_heads"],
        overwrite=opts["overwrite"],
        local_files_only=opts["local_files_only"],
    )
    click.echo(f"written {out}")


@cli.command()
@click.option(
    "--in-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder of <id>.npy clips, (T, 263) HumanML3D features (or (T, 22, 3) joints).",
)
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--to",
    "to",
    type=click.Choice(["smpl135", "ms272"]),
    default="ms272",
    show_default=True,
    help="smpl135: <id>.npz (motion_135 and fit details); ms272: <id>.npy (T, 272) plus the .npz files under OUT/smpl135.",
)
@click.option(
    "--model-dir",
    required=True,
    type=click.Path(),
    help="SMPL neutral model: a folder holding SMPL_NEUTRAL.npz (or a chumpy-free .pkl), or the file.",
)
@click.option(
    "--num-shards",
    type=int,
    default=None,
    help="Processes sharing the work (default: torchrun's WORLD_SIZE, else 1).",
)
@click.option(
    "--shard-index",
    type=int,
    default=None,
    help="This process's share (default: torchrun's RANK, else 0).",
)
@click.option("--skip-existing", is_flag=True, help="Leave clips whose output exists (resume).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option(
    "--ids",
    "ids_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Text file of ids to convert.",
)
@click.option("--limit", type=int, default=None, help="Only the first N clips.")
@click.option("--iters", type=int, default=80, show_default=True, help="Adam refinement steps.")
@click.option("--lr", type=float, default=0.02, show_default=True, help="Adam learning rate.")
@click.option("--source-fps", type=float, default=20.0, show_default=True)
@click.option("--target-fps", type=float, default=30.0, show_default=True)
@click.option("--floor-align/--no-floor-align", default=True, show_default=True)
@click.option(
    "--rotation-init",
    type=click.Choice(["joints", "hml263"]),
    default="joints",
    show_default=True,
    help="Start of the fit: analytic IK on the joints, or HumanML3D's stored rotations (the zoo's).",
)
@click.option(
    "--resample-mode", type=click.Choice(["zoo", "exact"]), default="zoo", show_default=True
)
@click.option(
    "--batch-frames",
    type=int,
    default=8192,
    show_default=True,
    help="Padded frames optimised together.",
)
@click.option(
    "--mean-path",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --std-path: inputs are normalised, de-normalise them first.",
)
@click.option("--std-path", type=click.Path(dir_okay=False), default=None)
@click.option(
    "--smpl135-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="With --to ms272: where the .npz files go (default OUT/smpl135).",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="torch CPU threads (on a small CPU, 1 thread per shard process is fastest).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@_user_errors
def bridge(**opts: Any) -> None:
    """Convert HumanML3D-263 clips to SMPL motion_135 or MotionStreamer-272 (batched IK)."""
    import numpy as np

    from hftrainer_mogents.motion.bridge import run_bridge
    from hftrainer_mogents.motion.smpl135 import IKConfig

    if opts["threads"]:
        import torch

        torch.set_num_threads(opts["threads"])
    if (opts["mean_path"] is None) != (opts["std_path"] is None):
        raise click.BadParameter("give both --mean-path and --std-path, or neither")
    mean = std = None
    if opts["mean_path"] is not None:
        mean = np.load(opts["mean_path"], allow_pickle=False)
        std = np.load(opts["std_path"], allow_pickle=False)
    config = IKConfig(
        source_fps=opts["source_fps"],
        target_fps=opts["target_fps"],
        floor_align=opts["floor_align"],
        rotation_init=opts["rotation_init"],
        iters=opts["iters"],
        lr=opts["lr"],
        resample_mode=opts["resample_mode"],
        batch_frames=opts["batch_frames"],
    )
    summary = run_bridge(
        opts["in_dir"],
        opts["out_dir"],
        to=opts["to"],
        model_dir=opts["model_dir"],
        smpl135_dir=opts["smpl135_dir"],
        config=config,
        num_shards=opts["num_shards"],
        shard_index=opts["shard_index"],
        skip_existing=opts["skip_existing"],
        device=opts["device"],
        ids_file=opts["ids_file"],
        limit=opts["limit"],
        mean=mean,
        std=std,
        progress=opts["progress"],
    )
    shown = {k: v for k, v in summary.items() if k not in ("items", "config")}
    click.echo(json.dumps(shown, indent=2))


def main() -> None:  # pragma: no cover - console entry for `python -m hftrainer_mogents`
    cli(prog_name="mogents")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
