"""The evaluators' front-ends: ``mogents evaluate hml263|ms272`` and the parser behind
``scripts/verify_evaluators.py`` (score prediction folders, one :class:`Verifier` per evaluator).

Every evaluation goes through the evaluator's ``run_benchmark`` (generate when asked, evaluate,
write ``verify_<name>.json`` and ``.md``).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from hftrainer_mogents.cli._common import (
    generation_options,
    script_logging,
    script_status,
    user_errors,
)
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.generation_config import GenerationConfig

__all__ = [
    "evaluate",
    "evaluate_hml263",
    "evaluate_ms272",
    "Verifier",
    "VERIFIERS",
    "build_verify_parser",
    "verify_main",
]

F = TypeVar("F", bound=Callable[..., Any])


def _gt_cache_dir(path: str | None, disabled: bool) -> Path | str | None:
    """Where the real-motion embeddings are cached: none when disabled, else ``path`` or the
    default cache folder."""
    from hftrainer_mogents.evaluation.hml263.evaluator import default_cache_dir

    return None if disabled else (path or default_cache_dir())


def _echo_reports(reports: tuple[Path, Path]) -> None:
    json_path, md_path = reports
    click.echo(md_path.read_text(encoding="utf-8"))
    click.echo(f"written {json_path} and {md_path}")


# ------------------------------------------------------------------ mogents evaluate


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


@click.group()
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
@click.option(
    "--texts-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Captions (<id>.txt) instead of <dataset-root>/texts; must be the generation's.",
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
    default=None,
    help="Items generated repeatedly for MultiModality (--model-path; 0: none) "
    "[default: 96, fewer on a small split].",
)
@click.option("--mm-repeats", type=int, default=30, show_default=True, help="Generations each.")
@click.option("--skip-existing", is_flag=True, help="Resume the generation (with --model-path).")
@click.option("--num-shards", type=int, default=None, help="Generation shards (--model-path).")
@click.option("--shard-index", type=int, default=None, help="This shard (--model-path).")
@generation_options
@user_errors
def evaluate_hml263(
    pred_dir: str | None,
    dataset_root: str,
    evaluator_dir: str,
    out_dir: str | None,
    texts_dir: str | None,
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
    mm_samples: int | None,
    mm_repeats: int,
    skip_existing: bool,
    num_shards: int | None,
    shard_index: int | None,
    generation_config: GenerationConfig,
) -> None:
    """HumanML3D-263 test protocol (Guo et al. evaluator), beside the published MoGenTS numbers.

    With --model-path the test split is generated first, with the generation settings given."""
    from hftrainer_mogents.evaluation.hml263.benchmark import run_benchmark

    if pred_dir is None and not gt_only:
        raise click.UsageError("give --pred-dir (or --gt-only)")
    if model_path is not None and pred_dir is None:
        raise click.UsageError("--model-path needs --pred-dir to write the predictions to")
    out = run_benchmark(
        pred_dir,
        dataset_root=dataset_root,
        evaluator_dir=evaluator_dir,
        report_dir=out_dir,
        generate=model_path is not None,
        model_path=model_path,
        generation_kwargs=generation_config,
        device=device,
        dtype=dtype,
        gt_only=gt_only,
        max_samples=max_samples,
        texts_dir=texts_dir,
        seed=seed,
        n_repeats=n_repeats,
        mm_samples=mm_samples,
        mm_repeats=mm_repeats,
        num_shards=num_shards,
        shard_index=shard_index,
        skip_existing=skip_existing,
        strict=strict,
        diversity_times=diversity_times,
        cache_dir=_gt_cache_dir(gt_cache, no_gt_cache),
    )
    if out["generation"] is not None:
        summary = out["generation"]
        click.echo(f"generation: written {summary['written']}, skipped {summary['skipped']}")
    if out["reports"] is None:
        click.echo("sharded generation: run the evaluation once every shard has finished")
        return
    _echo_reports(out["reports"])


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
@user_errors
def evaluate_ms272(
    pred_dir: str | None,
    data_root: str,
    evaluator_dir: str,
    out_dir: str | None,
    caption_selection: Literal["first", "random"] | None,
    pairs: Literal["entry", "caption"],
    batch_size: int,
    gt_only: bool,
    n_repeats: int,
    seed: int,
    device: str | None,
    strict: bool,
    max_samples: int | None,
    diversity_times: int | None,
) -> None:
    """MotionStreamer-272 metrics (TMR-style evaluator) of 272 predictions."""
    from hftrainer_mogents.evaluation.ms272.benchmark import run_benchmark

    if pred_dir is None and not gt_only:
        raise click.UsageError("give --pred-dir (or --gt-only)")
    out = run_benchmark(
        pred_dir,
        data_root=data_root,
        evaluator_dir=evaluator_dir,
        report_dir=out_dir,
        device=device,
        gt_only=gt_only,
        caption_selection=caption_selection,
        pairs=pairs,
        strict=strict,
        max_samples=max_samples,
        n_repeats=n_repeats,
        seed=seed,
        batch_size=batch_size,
        diversity_times=diversity_times,
    )
    _echo_reports(out["reports"])


# ------------------------------------------------------------------ scripts/verify_evaluators.py


@dataclass(frozen=True)
class Verifier:
    """One evaluator of ``verify_evaluators.py``; adding one is one entry of :data:`VERIFIERS`.

    Attributes:
        name: the ``--which`` value and the report name ``verify_<name>``.
        add_arguments: adds the evaluator's ``--<name>-*`` options to the parser.
        run: ``(args, out_dir) -> list of written paths``; evaluates and writes the reports.
    """

    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Path], list[Path]]


def _hml263_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hml263 (HumanML3D-263, Guo et al. evaluator)")
    group.add_argument("--hml263-pred", help="prediction folder (<key>.npy, (T, 263), 20 fps)")
    group.add_argument(
        "--hml263-gt-root", default="dataset/HumanML3D", help="HumanML3D folder (test split)"
    )
    group.add_argument("--hml263-split-file", default=None, help="id list instead of test.txt")
    group.add_argument(
        "--hml263-texts-dir",
        default=None,
        help="caption texts (<id>.txt) the evaluator reads; must match the captions used for "
        "generation (default: <gt-root>/texts)",
    )
    group.add_argument(
        "--hml263-evaluator",
        default="checkpoints/evaluators/hml263",
        help="converted evaluator (mogents convert-evaluator)",
    )
    group.add_argument(
        "--hml263-caption-selection",
        choices=("generated", "first", "random"),
        default=None,
        help="caption scored per item: the one it was generated from (generation.json, else "
        "the first; default with predictions), the first, or a random one per repeat (the "
        "reference's choice; default with --gt-only)",
    )
    group.add_argument("--hml263-max-samples", type=int, default=None, help="first ids only")
    group.add_argument(
        "--hml263-gt-cache",
        default=None,
        help="cache of the real-motion embeddings (model-independent; reused by later runs) "
        "[default: $XDG_CACHE_HOME/hftrainer_mogents/hml263]",
    )
    group.add_argument(
        "--hml263-no-gt-cache", action="store_true", help="encode the real motions every time"
    )
    group.add_argument(
        "--hml263-dtype",
        choices=("fp32", "bf16"),
        default="fp32",
        help="evaluator precision: fp32 (reference) or bf16 (faster on bf16 hardware; drifts)",
    )
    group.add_argument(
        "--hml263-diversity-times",
        type=int,
        default=None,
        help="diversity pairs (default 300 above 300 samples, else 100)",
    )


def _run_hml263(args: argparse.Namespace, out_dir: Path) -> list[Path]:
    from hftrainer_mogents.evaluation.hml263.benchmark import run_benchmark

    if not args.gt_only and not args.hml263_pred:
        raise InvalidInputError("--which hml263 needs --hml263-pred DIR (or --gt-only)")
    out = run_benchmark(
        args.hml263_pred,
        dataset_root=args.hml263_gt_root,
        evaluator_dir=args.hml263_evaluator,
        report_dir=out_dir,
        generate=False,
        device=args.device,
        dtype=args.hml263_dtype,
        gt_only=args.gt_only,
        split_file=args.hml263_split_file,
        texts_dir=args.hml263_texts_dir,
        max_samples=args.hml263_max_samples,
        seed=args.seed,
        n_repeats=args.n_repeats,
        strict=args.strict,
        caption_selection=args.hml263_caption_selection,
        diversity_times=args.hml263_diversity_times,
        cache_dir=_gt_cache_dir(args.hml263_gt_cache, args.hml263_no_gt_cache),
        progress=not args.no_progress,
    )
    return list(out["reports"])


def _ms272_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ms272 (MotionStreamer-272, TMR-style evaluator)")
    group.add_argument("--ms272-pred", help="prediction folder (<key>.npy, (T, 272), 30 fps, raw)")
    group.add_argument(
        "--ms272-data-root",
        default="data/evaluators/humanml3d_272",
        help="humanml3d_272 folder (motion_data/, texts/, split/test.txt, mean_std/)",
    )
    group.add_argument("--ms272-split-file", default=None, help="id list instead of test.txt")
    group.add_argument(
        "--ms272-evaluator",
        default="checkpoints/evaluators/ms272",
        help="converted evaluator (mogents convert-evaluator-ms272)",
    )
    group.add_argument(
        "--ms272-caption-selection",
        choices=("first", "random"),
        default=None,
        help="caption per sample (default: first with predictions, random with --gt-only)",
    )
    group.add_argument(
        "--ms272-pairs",
        choices=("entry", "caption"),
        default="entry",
        help="one sample per test entry, or one per caption line (the zoo's variant)",
    )
    group.add_argument("--ms272-max-samples", type=int, default=None, help="first ids only")
    group.add_argument("--ms272-batch-size", type=int, default=32, help="R-precision batch size")
    group.add_argument("--ms272-diversity-times", type=int, default=None, help="diversity pairs")


def _run_ms272(args: argparse.Namespace, out_dir: Path) -> list[Path]:
    from hftrainer_mogents.evaluation.ms272.benchmark import run_benchmark

    if not args.gt_only and not args.ms272_pred:
        raise InvalidInputError("--which ms272 needs --ms272-pred DIR (or --gt-only)")
    out = run_benchmark(
        args.ms272_pred,
        data_root=args.ms272_data_root,
        evaluator_dir=args.ms272_evaluator,
        report_dir=out_dir,
        device=args.device,
        gt_only=args.gt_only,
        split_file=args.ms272_split_file,
        caption_selection=args.ms272_caption_selection,
        pairs=args.ms272_pairs,
        strict=args.strict,
        max_samples=args.ms272_max_samples,
        n_repeats=args.n_repeats,
        seed=args.seed,
        batch_size=args.ms272_batch_size,
        diversity_times=args.ms272_diversity_times,
    )
    return list(out["reports"])


VERIFIERS: dict[str, Verifier] = {
    "hml263": Verifier("hml263", _hml263_arguments, _run_hml263),
    "ms272": Verifier("ms272", _ms272_arguments, _run_ms272),
}


def build_verify_parser(verifiers: dict[str, Verifier] | None = None) -> argparse.ArgumentParser:
    """The ``verify_evaluators.py`` parser: common options and each verifier's own."""
    verifiers = VERIFIERS if verifiers is None else verifiers
    parser = argparse.ArgumentParser(
        prog="verify_evaluators.py",
        description="Score prediction folders with the evaluators; write verify_<name>.json/.md",
    )
    parser.add_argument(
        "--which",
        choices=(*verifiers, "both"),
        default="both",
        help="evaluator to run ('both': every one)",
    )
    parser.add_argument("--out-dir", required=True, help="folder of the reports")
    parser.add_argument("--gt-only", action="store_true", help="score the real data only")
    parser.add_argument("--n-repeats", type=int, default=20, help="evaluation passes")
    parser.add_argument("--seed", type=int, default=0, help="seeds the passes")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument("--strict", action="store_true", help="fail on a missing prediction")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    for verifier in verifiers.values():
        verifier.add_arguments(parser)
    return parser


def verify_main(
    argv: Sequence[str] | None = None, verifiers: dict[str, Verifier] | None = None
) -> int:
    """Run ``verify_evaluators.py``: the chosen verifiers; print the written paths. Returns the
    exit status (2 when an evaluator failed with one of our errors, whose message is printed)."""
    verifiers = VERIFIERS if verifiers is None else verifiers
    args = build_verify_parser(verifiers).parse_args(argv)
    script_logging()
    out_dir = Path(args.out_dir)

    def run_one(verifier: Verifier) -> int:
        for path in verifier.run(args, out_dir):
            print(path)
        return 0

    status = 0
    for name in list(verifiers) if args.which == "both" else [args.which]:
        run = functools.partial(run_one, verifiers[name])
        status = max(status, script_status(run, prefix=f"verify {name}: "))
    return status
