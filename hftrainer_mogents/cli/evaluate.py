"""The evaluators' front-ends: ``mogents evaluate hml263|ms272`` and
``scripts/verify_evaluators.py`` (score prediction folders, one :class:`Verifier` per evaluator).

Each evaluator's options are declared once, on its ``mogents evaluate`` command, with the zoo's
``--<name>-*`` spelling as an extra name (``--pred-dir`` / ``--hml263-pred``); the script's
command takes those options under the zoo's names alone (:func:`zoo_options`), with the same
defaults. Every evaluation goes through the evaluator's ``run_benchmark`` (generate when asked,
evaluate, write ``verify_<name>.json`` and ``.md``).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from hftrainer_mogents.cli._common import Script, generation_options, script_status, user_errors
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.generation_config import GenerationConfig

if TYPE_CHECKING:
    from hftrainer_mogents.evaluation.base import Coverage

__all__ = [
    "evaluate",
    "evaluate_hml263",
    "evaluate_ms272",
    "Verifier",
    "VerifierOptions",
    "VERIFIERS",
    "zoo_options",
    "build_verify_command",
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


def echo_coverage(coverage: Coverage | None, pred_dir: Any) -> None:
    """Name, on stderr, the prediction files that match no test item (ignored) and the items
    left out (with ``--allow-missing``)."""
    if coverage is None:
        return
    if coverage.unmatched:
        shown = coverage.unmatched[:10]
        more = len(coverage.unmatched) - len(shown)
        names = ", ".join(f"{k}.npy" for k in shown) + (f", ... ({more} more)" if more else "")
        click.echo(
            f"warning: {len(coverage.unmatched)} prediction files in {pred_dir} match no test "
            f"item and were ignored: {names}",
            err=True,
        )
    note = coverage.subset_note()
    if note:
        shown = ", ".join(coverage.missing[:10])
        click.echo(f"warning: {note}; missing: {shown}", err=True)


# ------------------------------------------------------------------ mogents evaluate


def _evaluation_options(fn: F) -> F:
    """The options every evaluation shares (each ``mogents evaluate`` command and
    ``verify_evaluators.py``)."""
    options = [
        click.option("--gt-only", is_flag=True, help="Score the real data only."),
        click.option(
            "--n-repeats",
            type=click.IntRange(min=1),
            default=20,
            show_default=True,
            help="Evaluation passes.",
        ),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", default=None, help="Torch device [default: cuda if available]."),
        click.option(
            "--strict", is_flag=True, help="Fail on a missing prediction (now the default)."
        ),
        click.option(
            "--allow-missing",
            is_flag=True,
            help="Score the items that have a prediction when some are missing (the report says "
            "the numbers are over a subset, not comparable to the published ones) [default: a "
            "missing prediction is an error].",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _subset_options(prefix: str) -> Callable[[F], F]:
    """The options that choose which part of the split is scored, ``--<prefix>-*`` in the zoo."""

    def decorate(fn: F) -> F:
        options = [
            click.option(
                "--split-file",
                f"--{prefix}-split-file",
                "split_file",
                type=click.Path(dir_okay=False),
                default=None,
                help="Id list instead of split/test.txt.",
            ),
            click.option(
                "--max-samples",
                f"--{prefix}-max-samples",
                "max_samples",
                type=int,
                default=None,
                help="First ids of the split only.",
            ),
            click.option(
                "--diversity-times",
                f"--{prefix}-diversity-times",
                "diversity_times",
                type=click.IntRange(min=1),
                default=None,
                help="Diversity pairs [default: the protocol's].",
            ),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@click.group()
def evaluate() -> None:
    """Score generated motions with an evaluator (FID, R-precision, MM-Dist, ...)."""


@evaluate.command("hml263")
@_evaluation_options
@click.option(
    "--pred-dir",
    "--hml263-pred",
    "pred_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Predictions (<key>.npy, (T, 263) at 20 fps).",
)
@click.option(
    "--dataset-root",
    "--hml263-gt-root",
    "dataset_root",
    type=click.Path(file_okay=False),
    default="dataset/HumanML3D",
    show_default=True,
    help="HumanML3D folder (new_joint_vecs/, texts/, split/test.txt).",
)
@_subset_options("hml263")
@click.option(
    "--evaluator",
    "--hml263-evaluator",
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
    "--hml263-texts-dir",
    "texts_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Captions (<id>.txt) instead of <dataset-root>/texts; must be the generation's.",
)
@click.option(
    "--caption-selection",
    "--hml263-caption-selection",
    "caption_selection",
    type=click.Choice(["generated", "first", "random"]),
    default=None,
    help="Caption scored per item: the one it was generated from (generation.json, else the "
    "first), the first, or a random one per repeat (the reference's) [default: generated with "
    "predictions, random with --gt-only].",
)
@click.option(
    "--model-path",
    default=None,
    help="Generate the test split into --pred-dir with this model first.",
)
@click.option(
    "--dtype",
    "--hml263-dtype",
    "dtype",
    type=click.Choice(["fp32", "bf16"]),
    default="fp32",
    show_default=True,
    help="Evaluator precision (bf16: faster on bf16 hardware, drifts slightly; not the reference).",
)
@click.option(
    "--gt-cache",
    "--hml263-gt-cache",
    "gt_cache",
    type=click.Path(file_okay=False),
    default=None,
    help="Cache of the real-motion embeddings (model-independent; reused by later runs) "
    "[default: $XDG_CACHE_HOME/hftrainer_mogents/hml263].",
)
@click.option(
    "--no-gt-cache",
    "--hml263-no-gt-cache",
    "no_gt_cache",
    is_flag=True,
    help="Encode the real motions every time.",
)
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
    caption_selection: str | None,
    split_file: str | None,
    model_path: str | None,
    gt_only: bool,
    n_repeats: int,
    seed: int,
    device: str | None,
    dtype: str,
    strict: bool,
    allow_missing: bool,
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
        split_file=split_file,
        max_samples=max_samples,
        texts_dir=texts_dir,
        caption_selection=caption_selection,
        seed=seed,
        n_repeats=n_repeats,
        mm_samples=mm_samples,
        mm_repeats=mm_repeats,
        num_shards=num_shards,
        shard_index=shard_index,
        skip_existing=skip_existing,
        strict=strict,
        allow_missing=allow_missing,
        diversity_times=diversity_times,
        cache_dir=_gt_cache_dir(gt_cache, no_gt_cache),
    )
    if out["generation"] is not None:
        summary = out["generation"]
        click.echo(f"generation: written {summary['written']}, skipped {summary['skipped']}")
    if out["reports"] is None:
        click.echo("sharded generation: run the evaluation once every shard has finished")
        return
    echo_coverage(out["coverage"], pred_dir)
    _echo_reports(out["reports"])


@evaluate.command("ms272")
@_evaluation_options
@click.option(
    "--pred-dir",
    "--ms272-pred",
    "pred_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Predictions (<key>.npy, (T, 272) raw at 30 fps), e.g. the output of mogents bridge.",
)
@click.option(
    "--data-root",
    "--ms272-data-root",
    "data_root",
    type=click.Path(file_okay=False),
    default="data/evaluators/humanml3d_272",
    show_default=True,
    help="humanml3d_272 folder (motion_data/, texts/, split/test.txt, mean_std/).",
)
@_subset_options("ms272")
@click.option(
    "--evaluator",
    "--ms272-evaluator",
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
    "--ms272-caption-selection",
    "caption_selection",
    type=click.Choice(["first", "random"]),
    default=None,
    help="Caption per sample [default: first with predictions, random with --gt-only].",
)
@click.option(
    "--pairs",
    "--ms272-pairs",
    "pairs",
    type=click.Choice(["entry", "caption"]),
    default="entry",
    show_default=True,
    help="One sample per test entry, or per caption line (the zoo's variant).",
)
@click.option(
    "--batch-size",
    "--ms272-batch-size",
    "batch_size",
    type=int,
    default=32,
    show_default=True,
    help="R-precision batch size.",
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
    split_file: str | None,
    gt_only: bool,
    n_repeats: int,
    seed: int,
    device: str | None,
    strict: bool,
    allow_missing: bool,
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
        split_file=split_file,
        caption_selection=caption_selection,
        pairs=pairs,
        strict=strict,
        allow_missing=allow_missing,
        max_samples=max_samples,
        n_repeats=n_repeats,
        seed=seed,
        batch_size=batch_size,
        diversity_times=diversity_times,
    )
    echo_coverage(out["coverage"], pred_dir)
    _echo_reports(out["reports"])


# ------------------------------------------------------------------ scripts/verify_evaluators.py


def zoo_options(command: click.Command, prefix: str) -> list[click.Parameter]:
    """The options of ``command`` that have a ``--<prefix>-*`` name, under that name alone (the
    zoo's spelling; parameter name from it, e.g. ``hml263_gt_root``), with the same defaults."""
    found: list[click.Parameter] = []
    for param in command.params:
        names = [o for o in param.opts if o.startswith(f"--{prefix}-")]
        if not names:
            continue
        clone = copy.copy(param)
        clone.opts = names
        clone.secondary_opts = []
        clone.name = names[0][2:].replace("-", "_")
        found.append(clone)
    return found


class VerifierOptions:
    """The options a :class:`Verifier` adds to ``verify_evaluators.py``: click options
    (:meth:`add_option`), or simple ones in argparse's words (:meth:`add_argument`)."""

    def __init__(self) -> None:
        self.params: list[click.Parameter] = []

    def add_option(self, *options: click.Parameter) -> None:
        """Add click options as they are."""
        self.params.extend(options)

    def add_argument(
        self,
        *names: str,
        action: str | None = None,
        choices: Sequence[str] | None = None,
        type: Callable[[str], Any] | None = None,  # noqa: A002 - argparse's keyword
        default: Any = None,
        required: bool = False,
        help: str | None = None,  # noqa: A002 - argparse's keyword
    ) -> None:
        """Add an option as ``argparse.ArgumentParser.add_argument`` would (``store_true``
        flags, ``choices``, ``type``, ``default``, ``required``)."""
        if action == "store_true":
            self.params.append(click.Option(names, is_flag=True, help=help))
        elif action is not None:
            raise ValueError(f"action {action!r} is not supported; add a click option instead")
        else:
            kind = click.Choice(list(choices)) if choices else type
            self.params.append(
                click.Option(names, type=kind, default=default, required=required, help=help)
            )

    def add_argument_group(self, title: str) -> VerifierOptions:
        """Options are listed together; the group title is not kept."""
        return self


@dataclass(frozen=True)
class Verifier:
    """One evaluator of ``verify_evaluators.py``; adding one is one entry of :data:`VERIFIERS`.

    Attributes:
        name: the ``--which`` value and the report name ``verify_<name>``.
        add_arguments: adds the evaluator's ``--<name>-*`` options (to a :class:`VerifierOptions`).
        run: ``(args, out_dir) -> list of written paths``; evaluates and writes the reports
            (``args`` holds every option of the script as an attribute).
    """

    name: str
    add_arguments: Callable[[VerifierOptions], None]
    run: Callable[[Any, Path], list[Path]]


def _run_hml263(args: Any, out_dir: Path) -> list[Path]:
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
        allow_missing=args.allow_missing,
        caption_selection=args.hml263_caption_selection,
        diversity_times=args.hml263_diversity_times,
        cache_dir=_gt_cache_dir(args.hml263_gt_cache, args.hml263_no_gt_cache),
        progress=not args.no_progress,
    )
    echo_coverage(out["coverage"], args.hml263_pred)
    return list(out["reports"])


def _run_ms272(args: Any, out_dir: Path) -> list[Path]:
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
        allow_missing=args.allow_missing,
        max_samples=args.ms272_max_samples,
        n_repeats=args.n_repeats,
        seed=args.seed,
        batch_size=args.ms272_batch_size,
        diversity_times=args.ms272_diversity_times,
    )
    echo_coverage(out["coverage"], args.ms272_pred)
    return list(out["reports"])


def _hml263_arguments(options: VerifierOptions) -> None:
    options.add_option(*zoo_options(evaluate_hml263, "hml263"))


def _ms272_arguments(options: VerifierOptions) -> None:
    options.add_option(*zoo_options(evaluate_ms272, "ms272"))


VERIFIERS: dict[str, Verifier] = {
    "hml263": Verifier("hml263", _hml263_arguments, _run_hml263),
    "ms272": Verifier("ms272", _ms272_arguments, _run_ms272),
}


def build_verify_command(verifiers: dict[str, Verifier] | None = None) -> click.Command:
    """The ``verify_evaluators.py`` command: the shared evaluation options and each verifier's
    own; it runs the chosen verifiers and returns the exit status (2 when one failed with one of
    our errors, whose message is printed)."""
    verifiers = VERIFIERS if verifiers is None else verifiers

    @click.command("verify_evaluators")
    @click.option(
        "--which",
        type=click.Choice([*verifiers, "both"]),
        default="both",
        show_default=True,
        help="Evaluator to run ('both': every one).",
    )
    @click.option("--out-dir", required=True, help="Folder of the reports.")
    @_evaluation_options
    @click.option("--no-progress", is_flag=True, help="No progress bars.")
    def verify(**kwargs: Any) -> int:
        """Score prediction folders with the evaluators; write verify_<name>.json/.md."""
        args = SimpleNamespace(**kwargs)
        out_dir = Path(args.out_dir)

        def run_one(verifier: Verifier) -> int:
            for path in verifier.run(args, out_dir):
                click.echo(str(path))
            return 0

        status = 0
        for name in list(verifiers) if args.which == "both" else [args.which]:
            run = functools.partial(run_one, verifiers[name])
            status = max(status, script_status(run, prefix=f"verify {name}: "))
        return status

    options = VerifierOptions()
    for verifier in verifiers.values():
        verifier.add_arguments(options)
    verify.params.extend(options.params)
    return verify


def build_verify_parser(verifiers: dict[str, Verifier] | None = None) -> Script:
    """``verify_evaluators.py``: :func:`build_verify_command` as a :class:`Script` (its
    ``parse_args``, ``format_help`` and ``main``)."""
    return Script(build_verify_command(verifiers), "verify_evaluators.py")


def verify_main(
    argv: Sequence[str] | None = None, verifiers: dict[str, Verifier] | None = None
) -> int:
    """Run ``verify_evaluators.py``: the chosen verifiers; print the written paths. Returns the
    exit status (2 on a usage error, or when an evaluator failed with one of our errors, whose
    message is printed)."""
    return build_verify_parser(verifiers).main(argv)
