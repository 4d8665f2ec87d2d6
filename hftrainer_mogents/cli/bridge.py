"""The bridge's command, over :mod:`hftrainer_mogents.jobs.bridge`: ``mogents bridge``
(:func:`~hftrainer_mogents.jobs.bridge.run_bridge`), which is also the zoo's
``scripts/hml263_to_smpl_ik.py`` (:data:`IK_SCRIPT`, stage A of
``scripts/run_mogents_hml263_to_ms272_chain.sh``), and ``scripts/convert_motion135_to_h3d272.py``
(:data:`CONVERT272_SCRIPT`, stage B; stage C is ``scripts/verify_evaluators.py``).

Each option is declared once, with the zoo's flag names as extra names (``--iters`` /
``--refine-iters``). The IK script selects the zoo's defaults, :data:`ZOO_IK_DEFAULTS`
(``--refine-iters 0``, no floor alignment, ``--rotation-init auto``, only ``motion_135``);
``mogents bridge`` keeps its own (80 refinement steps, floor alignment, the joints' IK start). The
chain script passes ``--floor-align --refine-iters 80 --refine-lr 0.02`` as the zoo's chain does.
Flags of the zoo that tune options this implementation does not have (pose priors, the
parent-frame orientation mode) are accepted by the script at their neutral values and refused
otherwise, with a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from hftrainer_mogents.cli._common import ScopedOption, Script, in_script, user_errors
from hftrainer_mogents.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "bridge",
    "convert272",
    "ZOO_IK_DEFAULTS",
    "IK_SCRIPT",
    "CONVERT272_SCRIPT",
    "build_ik_parser",
    "ik_main",
    "build_convert272_parser",
    "convert272_main",
    "failure_status",
]

F = TypeVar("F", bound=Callable[..., Any])


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _load_mean_std(mean_path: str, std_path: str) -> tuple[np.ndarray, np.ndarray]:
    """The (263,) mean and std that de-normalise normalised inputs."""
    import numpy as np

    mean = np.load(mean_path, allow_pickle=False).astype(np.float32)
    std = np.load(std_path, allow_pickle=False).astype(np.float32)
    if mean.shape != (263,) or std.shape != (263,):
        raise InvalidInputError(f"expected (263,) mean/std, got {mean.shape} and {std.shape}")
    return mean, std


def _batch_options(fn: F) -> F:
    """The options of a sharded, resumable batch job (both bridge commands)."""
    options = [
        click.option(
            "--num-shards",
            type=int,
            default=None,
            help="Processes sharing the work (default: torchrun's WORLD_SIZE, else 1).",
        ),
        click.option(
            "--shard-index",
            type=int,
            default=None,
            help="This process's share (default: torchrun's RANK, else 0).",
        ),
        click.option(
            "--skip-existing", is_flag=True, help="Leave clips whose output exists (resume)."
        ),
        click.option(
            "--ids",
            "ids_file",
            type=click.Path(dir_okay=False),
            default=None,
            help="Text file of ids to convert (default: every clip).",
        ),
        click.option("--limit", type=int, default=None, help="Only the first N clips."),
        click.option(
            "--allow-failures",
            is_flag=True,
            help="Exit 0 even when some clips failed (they are listed in the summary either way).",
        ),
        click.option("--progress/--no-progress", default=True, show_default=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _skeleton_option(**scope: Any) -> Callable[[F], F]:
    return click.option(
        "--skeleton",
        type=click.Choice(["canon272", "smpl"]),
        default="canon272",
        show_default=True,
        help="The skeleton of the 272 joint positions. canon272 is the zoo's fixed skeleton (its "
        "published MotionStreamer-272 numbers use it; no body model); smpl the SMPL neutral "
        "joints.",
        **scope,
    )


# the zoo's names of the two starts, and ours
_ROTATION_INIT = {
    "joints": "joints",
    "hml263": "hml263",
    "auto": "auto",  # the zoo's: hml263 for 263 input, the joints' IK for (T, 22, 3) input
    "position": "joints",
    "position_ik": "joints",
    "hml263_init": "hml263",
}

# the flags of the IKConfig settings (named in the messages)
_IK_FLAGS = {
    "iters": "'--iters' / '--refine-iters'",
    "lr": "'--lr' / '--refine-lr'",
    "source_fps": "'--source-fps'",
    "target_fps": "'--target-fps'",
    "smooth_weight": "'--smooth-weight'",
    "pose_keep_weight": "'--pose-keep-weight'",
    "batch_frames": "'--batch-frames'",
    "resample_mode": "'--resample-mode'",
    "rotation_init": "'--rotation-init'",
}

_MOGENTS = {"cls": ScopedOption, "scope": "mogents"}  # mogents bridge only
_ZOO = {"cls": ScopedOption, "scope": "zoo"}  # the zoo's script only

#: The defaults of ``scripts/hml263_to_smpl_ik.py`` where they differ from ``mogents bridge``'s.
ZOO_IK_DEFAULTS: dict[str, Any] = {
    "to": "smpl135",
    "model_dir": "ref_repo/MDM/body_models",
    "iters": 0,
    "floor_align": False,
    "rotation_init": "auto",
    "input_normalized": False,
}


# ------------------------------------------------------------------ mogents bridge (and the IK script)


@click.command()
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
    **_MOGENTS,
)
@click.option(
    "--model-dir",
    required=True,
    type=click.Path(),
    show_default=True,
    help="SMPL neutral model: a folder holding SMPL_NEUTRAL.npz (or a chumpy-free .pkl), or the file.",
)
@_batch_options
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option(
    "--iters", "--refine-iters", "iters", type=int, default=80, show_default=True,
    help="Adam refinement steps.",
)  # fmt: skip
@click.option(
    "--lr", "--refine-lr", "lr", type=float, default=0.02, show_default=True,
    help="Adam learning rate.",
)  # fmt: skip
@click.option("--source-fps", type=float, default=20.0, show_default=True)
@click.option("--target-fps", type=float, default=30.0, show_default=True)
@click.option("--floor-align/--no-floor-align", default=True, show_default=True)
@click.option(
    "--rotation-init",
    type=click.Choice(list(_ROTATION_INIT)),
    default="joints",
    show_default=True,
    help="Start of the fit: analytic IK on the joints (joints, position, position_ik), "
    "HumanML3D's stored rotations (hml263, hml263_init), or auto (the zoo's default: hml263 "
    "for 263 input, joints for (T, 22, 3) input).",
)
@_skeleton_option(**_MOGENTS)
@click.option(
    "--lock-global-orient",
    is_flag=True,
    help="Keep the root orientation at its start, optimise only body pose and translation "
    "(the zoo recommends it for 263 input with the HumanML3D start).",
)
@click.option(
    "--target-length-anno",
    type=click.Path(dir_okay=False),
    default=None,
    help="Annotation JSON (data_list entries with num_frames): after the frame-rate change each "
    "listed clip is refit to that length.",
)
@click.option(
    "--canonical-meta-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of <id>.npz sidecars with source_motion135_transl: the output transl is "
    "restored from it (see --restore-root-translation).",
)
@click.option(
    "--restore-root-translation",
    type=click.Choice(["auto", "source_transl", "none"]),
    default="auto",
    show_default=True,
    help="With --canonical-meta-dir: restore transl where the sidecar has it (auto, "
    "source_transl) or never (none).",
)
@click.option(
    "--resample-mode", type=click.Choice(["zoo", "exact"]), default="zoo", show_default=True
)
@click.option(
    "--batch-size",
    type=int,
    default=64,
    show_default=True,
    help="Clips optimised together.",
)
@click.option(
    "--batch-frames",
    type=int,
    default=8192,
    show_default=True,
    help="Padded frames optimised together.",
)
@click.option("--smooth-weight", type=float, default=1e-3, show_default=True)
@click.option("--pose-keep-weight", type=float, default=1e-4, show_default=True)
@click.option(
    "--input-normalized/--no-input-normalized",
    default=None,
    help="Inputs are normalised: de-normalise them with --mean-path and --std-path.",
    **_ZOO,
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
    **_MOGENTS,
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="torch CPU threads (on a small CPU, 1 thread per shard process is fastest).",
)
@click.option(
    "--pose-l2-weight", type=float, default=0.0, show_default=True, help="Only 0 is supported.",
    **_ZOO,
)  # fmt: skip
@click.option(
    "--angle-prior-weight", type=float, default=0.0, show_default=True,
    help="Only 0 is supported.", **_ZOO,
)  # fmt: skip
@click.option(
    "--orientation-mode", type=click.Choice(["bone"]), default="bone", show_default=True, **_ZOO
)
@click.option(
    "--parent-ref-weight", type=float, default=0.25, show_default=True, help="(unused)", **_ZOO
)
@click.option(
    "--rot6d-convention",
    type=click.Choice(["row", "column"]),
    default="row",
    show_default=True,
    help="motion_135 6D layout: only 'row' (R[:, :2] row-major) is written.",
    **_ZOO,
)
@user_errors
def bridge(
    in_dir: str,
    out_dir: str,
    to: Literal["smpl135", "ms272"],
    model_dir: str,
    num_shards: int | None,
    shard_index: int | None,
    skip_existing: bool,
    device: str,
    ids_file: str | None,
    limit: int | None,
    iters: int,
    lr: float,
    source_fps: float,
    target_fps: float,
    floor_align: bool,
    rotation_init: str,
    skeleton: str,
    lock_global_orient: bool,
    target_length_anno: str | None,
    canonical_meta_dir: str | None,
    restore_root_translation: str,
    resample_mode: Literal["zoo", "exact"],
    batch_size: int,
    batch_frames: int,
    smooth_weight: float,
    pose_keep_weight: float,
    input_normalized: bool | None,
    mean_path: str | None,
    std_path: str | None,
    smpl135_dir: str | None,
    threads: int | None,
    allow_failures: bool,
    progress: bool,
    pose_l2_weight: float,
    angle_prior_weight: float,
    orientation_mode: str,
    parent_ref_weight: float,
    rot6d_convention: str,
) -> None:
    """Convert HumanML3D-263 clips to SMPL motion_135 or MotionStreamer-272 (batched IK)."""
    from hftrainer_mogents.jobs.bridge import load_target_lengths, run_bridge
    from hftrainer_mogents.motion.smpl135 import IKConfig, IKSettingError

    _set_threads(threads)
    if pose_l2_weight or angle_prior_weight:
        raise InvalidInputError(
            "--pose-l2-weight/--angle-prior-weight are not implemented (the zoo's chain "
            "runs with 0); drop them"
        )
    if rot6d_convention != "row":
        raise InvalidInputError(
            "--rot6d-convention column is not written: motion_135 uses the 'row' layout "
            "R[:, :2] row-major, which the 272 conversion expects"
        )
    if input_normalized is None:  # mogents bridge: the two files say the inputs are normalised
        if (mean_path is None) != (std_path is None):
            raise click.BadParameter("give both --mean-path and --std-path, or neither")
        input_normalized = mean_path is not None
    elif input_normalized and not (mean_path and std_path):
        raise InvalidInputError("--input-normalized needs --mean-path and --std-path")
    mean, std = (
        _load_mean_std(mean_path, std_path)
        if input_normalized and mean_path is not None and std_path is not None
        else (None, None)
    )
    try:
        config = IKConfig(
            source_fps=source_fps,
            target_fps=target_fps,
            floor_align=floor_align,
            rotation_init=_ROTATION_INIT[rotation_init],  # type: ignore[arg-type]
            lock_global_orient=lock_global_orient,
            iters=iters,
            lr=lr,
            pose_keep_weight=pose_keep_weight,
            smooth_weight=smooth_weight,
            resample_mode=resample_mode,
            batch_frames=batch_frames,
        )
    except IKSettingError as err:
        message = str(err).replace(f"IKConfig.{err.field} ", "")
        raise click.BadParameter(message, param_hint=_IK_FLAGS.get(err.field)) from err
    lengths = load_target_lengths(target_length_anno) if target_length_anno else None
    extra = {"ms272_skeleton": skeleton} if to == "ms272" else {}
    summary = run_bridge(
        in_dir,
        out_dir,
        to=to,
        model_dir=model_dir,
        smpl135_dir=smpl135_dir,
        config=config,
        num_shards=num_shards,
        shard_index=shard_index,
        skip_existing=skip_existing,
        device=device,
        ids_file=ids_file,
        limit=limit,
        mean=mean,
        std=std,
        target_lengths=lengths,
        canonical_meta_dir=canonical_meta_dir,
        restore_root_translation=restore_root_translation,
        chunk_clips=batch_size,
        progress=progress,
        **extra,
    )
    shown = {k: v for k, v in summary.items() if k not in ("items", "config")}
    _finish(summary, shown, allow_failures)


def _finish(summary: dict[str, Any], shown: dict[str, Any], allow_failures: bool) -> None:
    """Print the summary (the scripts prefix ``[done]``, as the zoo's) and exit 1 on failures."""
    text = json.dumps(shown, indent=2)
    click.echo(f"[done] {text}" if in_script() else text)
    status = failure_status(summary, allow_failures)
    if status:
        click.get_current_context().exit(status)


def failure_status(summary: dict[str, Any], allow_failures: bool) -> int:
    """A batch job's exit status: 1 when clips failed (saying so on stderr), unless allowed."""
    failed = int(summary.get("failed") or 0)
    if not failed or allow_failures:
        return 0
    click.echo(
        f"{failed} clip(s) failed (see 'failures' in the summary JSON); fix or remove them and "
        "rerun with --skip-existing, or pass --allow-failures to accept them",
        err=True,
    )
    return 1


# ------------------------------------------------------------------ motion_135 -> 272


@click.command("convert272")
@click.option(
    "--in-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder of SMPL motion_135 clips: the IK's <id>.npz, or (T, 135) <id>.npy.",
)
@click.option(
    "--out-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder of <id>.npy (T, 272).",
)
@_skeleton_option()
@click.option(
    "--model-dir",
    type=click.Path(),
    default=None,
    help="SMPL neutral model, for --skeleton smpl (needed for bare (T, 135) .npy inputs; the "
    "IK's .npz carry their joints).",
)
@click.option(
    "--workers", type=int, default=1, show_default=True, help="(accepted; the work is vectorised)"
)
@_batch_options
@click.option("--rotation-space", type=click.Choice(["local"]), default="local", show_default=True)
@user_errors
def convert272(
    in_dir: str,
    out_dir: str,
    skeleton: str,
    model_dir: str | None,
    workers: int,
    num_shards: int | None,
    shard_index: int | None,
    skip_existing: bool,
    ids_file: str | None,
    limit: int | None,
    allow_failures: bool,
    progress: bool,
    rotation_space: str,
) -> None:
    """SMPL motion_135 (.npz from the IK, or (T, 135) .npy) -> MotionStreamer-272 .npy."""
    from hftrainer_mogents.jobs.bridge import run_272

    summary = run_272(
        in_dir,
        out_dir,
        skeleton=skeleton,
        model_dir=model_dir,
        num_shards=num_shards,
        shard_index=shard_index,
        skip_existing=skip_existing,
        ids_file=ids_file,
        limit=limit,
        progress=progress,
    )
    _finish(summary, summary, allow_failures)


# ------------------------------------------------------------------ the zoo's scripts

#: ``scripts/hml263_to_smpl_ik.py``: ``mogents bridge`` with the zoo's defaults.
IK_SCRIPT = Script(bridge, "hml263_to_smpl_ik.py", ZOO_IK_DEFAULTS)
#: ``scripts/convert_motion135_to_h3d272.py``.
CONVERT272_SCRIPT = Script(convert272, "convert_motion135_to_h3d272.py")


def build_ik_parser() -> Script:
    """``hml263_to_smpl_ik.py``: :data:`IK_SCRIPT` (its ``parse_args`` and ``format_help``)."""
    return IK_SCRIPT


def ik_main(argv: Sequence[str] | None = None) -> int:
    """Run ``hml263_to_smpl_ik.py``; prints the summary (without its items). Returns the exit
    status (1 when clips failed, 2 on a usage error or one of our errors)."""
    return IK_SCRIPT.main(argv)


def build_convert272_parser() -> Script:
    """``convert_motion135_to_h3d272.py``: :data:`CONVERT272_SCRIPT`."""
    return CONVERT272_SCRIPT


def convert272_main(argv: Sequence[str] | None = None) -> int:
    """Run ``convert_motion135_to_h3d272.py``; prints the summary. Returns the exit status (1
    when clips failed, 2 on a usage error or one of our errors)."""
    return CONVERT272_SCRIPT.main(argv)
