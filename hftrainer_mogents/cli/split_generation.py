"""``scripts/mogents_t2m_h3d263.py``: generate the HumanML3D test split with MoGenTS (the zoo's
flags, underscore spellings, and the hyphenated ones as aliases), over
:func:`~hftrainer_mogents.evaluation.hml263.split_generation.generate_test_split`.

Example::

    python scripts/mogents_t2m_h3d263.py --model_path checkpoints/mogents/humanml3d \\
        --data_root dataset/HumanML3D --out_dir outputs/pred263 --seed 0 --skip-existing
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import click

from hftrainer_mogents.cli._common import Script, generation_options, script_status
from hftrainer_mogents.evaluation.hml263 import split_generation
from hftrainer_mogents.evaluation.hml263.split_generation import MM_REPEATS, MM_SAMPLES
from hftrainer_mogents.utils.memory import keep_freed_memory

__all__ = ["GENERATION_SCRIPT", "build_generation_parser", "generation_main", "split_command"]

PROG = "mogents_t2m_h3d263.py"


def _names(name: str) -> tuple[str, str]:
    """The zoo's underscore spelling first, the hyphenated one as an alias."""
    return f"--{name}", f"--{name.replace('_', '-')}"


@click.command(
    name=PROG,
    help="Generate one (T, 263) .npy per HumanML3D test item with MoGenTS.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    *_names("model_path"),
    "model_path",
    default=None,
    help="artifact folder or hub id, or a raw official weights root (built from the files)",
)
@click.option(
    *_names("length_root"),
    "length_root",
    default=None,
    help="raw weights root only: folder holding <dataset>/length_estimator/ (optional)",
)
@click.option(*_names("data_root"), "data_root", default="dataset/HumanML3D", show_default=True)
@click.option(*_names("id_file"), "id_file", default=None, help="ids instead of the test split")
@click.option(
    *_names("anno_file"),
    "anno_file",
    default=None,
    help="annotation JSON for ids missing from data_root: caption = first macro/meso/micro "
    "caption, length = round(num_frames * anno_output_fps / fps)",
)
@click.option(
    *_names("anno_output_fps"),
    "anno_output_fps",
    type=float,
    default=20.0,
    show_default=True,
    help="frame rate the annotation lengths are converted to",
)
@click.option(*_names("out_dir"), "out_dir", required=True)
@click.option(*_names("batch_size"), "batch_size", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="default: cuda if available")
@click.option(
    *_names("caption_selection"),
    "caption_selection",
    type=click.Choice(["first", "random"]),
    default=None,
)
@click.option(
    *_names("mm_samples"),
    "mm_samples",
    type=int,
    default=None,
    help=f"items generated repeatedly for multimodality (0: none; default: {MM_SAMPLES}, "
    "fewer on a small split)",
)
@click.option(*_names("mm_repeats"), "mm_repeats", type=int, default=MM_REPEATS, show_default=True)
@click.option(*_names("num_shards"), "num_shards", type=int, default=None)
@click.option(*_names("shard_index"), "shard_index", type=int, default=None)
@click.option(*_names("skip_existing"), "skip_existing", is_flag=True)
@click.option(*_names("max_samples"), "max_samples", type=int, default=None)
@click.option(*_names("no_progress"), "no_progress", is_flag=True)
@generation_options(zoo_names=True)
def split_command(**params: Any) -> dict[str, Any]:
    """The script's settings (the job runs in :func:`generation_main`, which may be handed a
    stand-in generator)."""
    return params


# the zoo's script: its defaults are the command's own, so the preset is empty
GENERATION_SCRIPT = Script(split_command, PROG)


def build_generation_parser() -> Script:
    """The parser of ``mogents_t2m_h3d263.py`` (the zoo's flags, underscore spellings, and the
    hyphenated ones as aliases): :data:`GENERATION_SCRIPT`."""
    return GENERATION_SCRIPT


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
    generator_factory: Callable[[Any], Any] | None = None,
) -> int:
    """Run ``mogents_t2m_h3d263.py``: generate the test split; print the summary JSON. Returns
    the exit status (2 on a usage error or one of our errors, 1 when some batches failed).

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).
        generator_factory: builds the generator from the parsed settings (attribute access, as
            ``args.model_path``; default: the MoGenTS pipeline through the zoo loader, from
            ``--model_path``).
    """
    status = GENERATION_SCRIPT.call(sys.argv[1:] if argv is None else argv)
    if not isinstance(status, dict):  # --help, a usage error or one of our errors
        return status
    args = SimpleNamespace(**status)

    def run() -> int:
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
            generation_kwargs=args.generation_config,
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
