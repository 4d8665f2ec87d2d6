"""``scripts/verify_evaluators.py``: score prediction folders with the evaluators and write
``<out-dir>/verify_<name>.json`` and ``.md``.

Evaluators are dispatched through :data:`VERIFIERS`, a table of :class:`Verifier` entries; adding
one (e.g. ``ms272``) is one entry: its name, a function adding its ``--<name>-*`` arguments, and a
function running it. ``--which both`` runs every entry of the table.

Example::

    python scripts/verify_evaluators.py --which hml263 --hml263-pred OUT --out-dir OUT/metrics
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hftrainer_mogents.errors import MoGenTSError

__all__ = ["Verifier", "VERIFIERS", "build_parser", "main"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verifier:
    """One evaluator of ``verify_evaluators.py``.

    Attributes:
        name: the ``--which`` value and the report name ``verify_<name>``.
        add_arguments: adds the evaluator's ``--<name>-*`` options to the parser.
        run: ``(args, out_dir) -> list of written paths``; evaluates and writes the reports.
    """

    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Path], list[Path]]


# ------------------------------------------------------------------ hml263


def _hml263_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hml263 (HumanML3D-263, Guo et al. evaluator)")
    group.add_argument("--hml263-pred", help="prediction folder (<key>.npy, (T, 263), 20 fps)")
    group.add_argument(
        "--hml263-gt-root", default="dataset/HumanML3D", help="HumanML3D folder (test split)"
    )
    group.add_argument("--hml263-split-file", default=None, help="id list instead of test.txt")
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
    from hftrainer_mogents.errors import InvalidInputError
    from hftrainer_mogents.evaluation.hml263.dataset import read_test_split
    from hftrainer_mogents.evaluation.hml263.evaluator import (
        HumanML263Evaluator,
        default_cache_dir,
    )
    from hftrainer_mogents.evaluation.hml263.report import write_hml263_report

    if not args.gt_only and not args.hml263_pred:
        raise InvalidInputError("--which hml263 needs --hml263-pred DIR (or --gt-only)")
    import torch

    dtype = torch.bfloat16 if args.hml263_dtype == "bf16" else torch.float32
    evaluator = HumanML263Evaluator.from_pretrained(
        args.hml263_evaluator, device=args.device, dtype=dtype
    )
    split = read_test_split(
        args.hml263_gt_root, split_file=args.hml263_split_file, max_samples=args.hml263_max_samples
    )
    selection = args.hml263_caption_selection
    kwargs: dict[str, Any] = {
        "split": split,
        "n_repeats": args.n_repeats,
        "seed": args.seed,
        "strict": args.strict,
        "diversity_times": args.hml263_diversity_times,
        "progress": not args.no_progress,
        "cache_dir": None
        if args.hml263_no_gt_cache
        else (args.hml263_gt_cache or default_cache_dir()),
    }
    if selection == "first":
        kwargs.update(caption_selection="generated", caption_indices={})
    elif selection is not None:
        kwargs["caption_selection"] = selection
    result = evaluator.evaluate_dir(None if args.gt_only else args.hml263_pred, **kwargs)
    result["config"]["caption_selection_flag"] = selection
    return list(write_hml263_report(result, out_dir))


# ------------------------------------------------------------------ ms272


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
    from hftrainer_mogents.errors import InvalidInputError
    from hftrainer_mogents.evaluation.ms272.evaluator import MotionStreamer272Evaluator
    from hftrainer_mogents.evaluation.ms272.report import write_ms272_report

    if not args.gt_only and not args.ms272_pred:
        raise InvalidInputError("--which ms272 needs --ms272-pred DIR (or --gt-only)")
    evaluator = MotionStreamer272Evaluator.from_pretrained(args.ms272_evaluator, device=args.device)
    result = evaluator.evaluate_dir(
        None if args.gt_only else args.ms272_pred,
        data_root=args.ms272_data_root,
        split_file=args.ms272_split_file,
        gt_only=args.gt_only,
        caption_selection=args.ms272_caption_selection,
        pairs=args.ms272_pairs,
        strict=args.strict,
        max_samples=args.ms272_max_samples,
        n_repeats=args.n_repeats,
        seed=args.seed,
        batch_size=args.ms272_batch_size,
        diversity_times=args.ms272_diversity_times,
    )
    return list(write_ms272_report(result, out_dir))


VERIFIERS: dict[str, Verifier] = {
    "hml263": Verifier("hml263", _hml263_arguments, _run_hml263),
    "ms272": Verifier("ms272", _ms272_arguments, _run_ms272),
}


# ------------------------------------------------------------------ command line


def build_parser(verifiers: dict[str, Verifier] | None = None) -> argparse.ArgumentParser:
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


def main(argv: Sequence[str] | None = None, verifiers: dict[str, Verifier] | None = None) -> int:
    """Run the chosen verifiers; print the written paths. Returns the exit status (2 when an
    evaluator failed with one of our errors, whose message is printed)."""
    verifiers = VERIFIERS if verifiers is None else verifiers
    args = build_parser(verifiers).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    names = list(verifiers) if args.which == "both" else [args.which]
    status = 0
    for name in names:
        try:
            for path in verifiers[name].run(args, Path(args.out_dir)):
                print(path)
        except MoGenTSError as err:
            print(f"verify {name}: {type(err).__name__}: {err}", file=sys.stderr)
            status = 2
    return status
