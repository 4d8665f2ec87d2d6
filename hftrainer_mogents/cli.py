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


@cli.group()
def evaluate() -> None:
    """Score generated motions with an evaluator (FID, R-precision, MM-Dist, ...)."""


@evaluate.command("hml263")
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
@click.option("--gt-only", is_flag=True, help="Score the real data only.")
@click.option("--n-repeats", type=int, default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="Torch device [default: cuda if available].")
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "bf16"]),
    default="fp32",
    show_default=True,
    help="Evaluator precision (bf16: faster on bf16 hardware, drifts slightly; not the reference).",
)
@click.option("--strict", is_flag=True, help="Fail on a missing prediction.")
@click.option("--max-samples", type=int, default=None, help="First ids of the split only.")
@click.option("--diversity-times", type=int, default=None, help="Diversity pairs.")
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


def main() -> None:  # pragma: no cover - console entry for `python -m hftrainer_mogents`
    cli(prog_name="mogents")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
