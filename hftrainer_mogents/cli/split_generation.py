"""``scripts/mogents_t2m_h3d263.py``: generate the HumanML3D test split with MoGenTS (the zoo's
flags, underscore spellings, and the hyphenated ones as aliases), over
:func:`~hftrainer_mogents.evaluation.hml263.split_generation.generate_test_split`.

Example::

    python scripts/mogents_t2m_h3d263.py --model_path checkpoints/mogents/humanml3d \\
        --data_root dataset/HumanML3D --out_dir outputs/pred263 --seed 0 --skip-existing
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

from hftrainer_mogents.cli._common import (
    add_generation_arguments,
    generation_config_from_args,
    script_logging,
    script_status,
)
from hftrainer_mogents.evaluation.hml263 import split_generation
from hftrainer_mogents.evaluation.hml263.split_generation import MM_REPEATS, MM_SAMPLES
from hftrainer_mogents.utils.memory import keep_freed_memory

__all__ = ["build_generation_parser", "generation_main"]


def build_generation_parser() -> argparse.ArgumentParser:
    """The parser of ``mogents_t2m_h3d263.py`` (the zoo's flags, underscore spellings, and the
    hyphenated ones as aliases)."""
    p = argparse.ArgumentParser(
        prog="mogents_t2m_h3d263.py",
        description="Generate one (T, 263) .npy per HumanML3D test item with MoGenTS.",
    )
    p.add_argument(
        "--model_path",
        "--model-path",
        default=None,
        help="artifact folder or hub id, or a raw official weights root (built from the files)",
    )
    p.add_argument(
        "--length_root",
        "--length-root",
        default=None,
        help="raw weights root only: folder holding <dataset>/length_estimator/ (optional)",
    )
    p.add_argument("--data_root", "--data-root", default="dataset/HumanML3D")
    p.add_argument("--id_file", "--id-file", default=None, help="ids instead of the test split")
    p.add_argument(
        "--anno_file",
        "--anno-file",
        default=None,
        help="annotation JSON for ids missing from data_root: caption = first macro/meso/micro "
        "caption, length = round(num_frames * anno_output_fps / fps)",
    )
    p.add_argument(
        "--anno_output_fps",
        "--anno-output-fps",
        type=float,
        default=20.0,
        help="frame rate the annotation lengths are converted to",
    )
    p.add_argument("--out_dir", "--out-dir", required=True)
    p.add_argument("--batch_size", "--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="default: cuda if available")
    p.add_argument("--caption_selection", "--caption-selection", choices=("first", "random"))
    p.add_argument(
        "--mm_samples",
        "--mm-samples",
        type=int,
        default=None,
        help=f"items generated repeatedly for multimodality (0: none; default: {MM_SAMPLES}, "
        "fewer on a small split)",
    )
    p.add_argument("--mm_repeats", "--mm-repeats", type=int, default=MM_REPEATS)
    p.add_argument("--num_shards", "--num-shards", type=int, default=None)
    p.add_argument("--shard_index", "--shard-index", type=int, default=None)
    p.add_argument("--skip_existing", "--skip-existing", action="store_true")
    p.add_argument("--max_samples", "--max-samples", type=int, default=None)
    p.add_argument("--no_progress", "--no-progress", action="store_true")
    add_generation_arguments(p)
    return p


def _is_raw_weights_root(model_path: str | None) -> bool:
    """A folder that is no artifact (no ``mogents_config.json``): the official weights root."""
    from pathlib import Path

    from hftrainer_mogents.artifact import CONFIG_NAME

    return (
        model_path is not None
        and Path(model_path).is_dir()
        and not (Path(model_path) / CONFIG_NAME).is_file()
    )


def _raw_generator(weights_root: str, length_root: str | None, device: str | None) -> Any:
    """As the zoo's script: the pipeline built from the official files of ``weights_root``
    (``<dataset>/pretrain_*``), with the length estimator of ``length_root`` when it holds one
    and CLIP from its usual cache location (``~/.cache/clip/ViT-B-32.pt``)."""
    from pathlib import Path

    from hftrainer_mogents.convert.official import OfficialLayout, load_official_bundle
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    layout = OfficialLayout(weights_root=Path(weights_root))
    if length_root is not None:
        layout.length_root = Path(length_root)
    bundle, _ = load_official_bundle(layout, load_length_estimator=layout.length_ckpt.is_file())
    return MoGenTSPipeline(bundle, device=device)


def generation_main(
    argv: Sequence[str] | None = None,
    *,
    generator_factory: Callable[[argparse.Namespace], Any] | None = None,
) -> int:
    """Run ``mogents_t2m_h3d263.py``: generate the test split; print the summary JSON. Returns
    the exit status (2 on one of our errors, 1 when some batches failed).

    Args:
        argv: command-line arguments.
        generator_factory: builds the generator from the arguments (default: the MoGenTS
            pipeline through the zoo loader, from ``--model_path``).
    """
    args = build_generation_parser().parse_args(argv)
    script_logging()

    def run() -> int:
        generation_config = generation_config_from_args(args)  # refused before the model loads
        if generator_factory is None:  # looked up on the module, where tests put a stand-in
            if _is_raw_weights_root(args.model_path):
                generator = _raw_generator(args.model_path, args.length_root, args.device)
            else:
                generator = split_generation.load_generator(args.model_path, device=args.device)
            if str(getattr(generator, "device", "cpu")).startswith("cpu"):
                keep_freed_memory()  # this process is ours: spare the page faults of each forward
        else:
            generator = generator_factory(args)
        if hasattr(generator, "set_progress_bar_config"):
            # the script's own bar counts the batches; a bar per infer_t2m call would print
            # once per batch (and in spite of --no_progress)
            generator.set_progress_bar_config(disable=True)
        summary = split_generation.generate_test_split(
            generator,
            args.data_root,
            args.out_dir,
            split_file=args.id_file,
            seed=args.seed,
            generation_kwargs=generation_config,
            batch_size=args.batch_size,
            caption_selection=args.caption_selection or "first",
            mm_samples=args.mm_samples,
            mm_repeats=args.mm_repeats,
            num_shards=args.num_shards,
            shard_index=args.shard_index,
            skip_existing=args.skip_existing,
            max_samples=args.max_samples,
            progress=not args.no_progress,
            anno_file=args.anno_file,
            anno_output_fps=args.anno_output_fps,
        )
        print(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=2))
        return 1 if summary["failed"] else 0

    return script_status(run)
