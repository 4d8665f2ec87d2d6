"""The bridge's front-ends, over :mod:`hftrainer_mogents.motion.bridge`: ``mogents bridge``
(:func:`~hftrainer_mogents.motion.bridge.run_bridge`) and the zoo's scripts with their flags,
``scripts/hml263_to_smpl_ik.py`` (:func:`ik_main`, stage A of
``scripts/run_mogents_hml263_to_ms272_chain.sh``) and ``scripts/convert_motion135_to_h3d272.py``
(:func:`convert272_main`, stage B; stage C is ``scripts/verify_evaluators.py``).

The scripts' defaults are the zoo's (``--refine-iters 0``, no floor alignment, ``--rotation-init
auto``, the 272 positions on the ``canon272`` skeleton); the chain script
passes ``--floor-align --refine-iters 80 --refine-lr 0.02`` as the zoo's chain does. Flags of the
zoo that tune options this implementation does not have (pose priors, the parent-frame orientation
mode) are accepted at their neutral values and refused otherwise, with a message.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import click

from hftrainer_mogents.cli._common import script_logging, script_status, user_errors
from hftrainer_mogents.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["bridge", "build_ik_parser", "ik_main", "build_convert272_parser", "convert272_main"]


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


# ------------------------------------------------------------------ mogents bridge


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
    type=click.Choice(["joints", "hml263", "auto"]),
    default="joints",
    show_default=True,
    help="Start of the fit: analytic IK on the joints, HumanML3D's stored rotations, or auto (the "
    "zoo's default: hml263 for 263 input, joints for (T, 22, 3) input).",
)
@click.option(
    "--skeleton",
    type=click.Choice(["canon272", "smpl"]),
    default="canon272",
    show_default=True,
    help="With --to ms272: the skeleton of the 272 joint positions. canon272 is the zoo's fixed "
    "skeleton (its published MotionStreamer-272 numbers use it); smpl the fitted SMPL neutral "
    "joints.",
)
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
@click.option(
    "--allow-failures",
    is_flag=True,
    help="Exit 0 even when some clips failed (they are listed in the summary either way).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
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
    rotation_init: Literal["joints", "hml263", "auto"],
    skeleton: str,
    lock_global_orient: bool,
    target_length_anno: str | None,
    canonical_meta_dir: str | None,
    restore_root_translation: str,
    resample_mode: Literal["zoo", "exact"],
    batch_frames: int,
    mean_path: str | None,
    std_path: str | None,
    smpl135_dir: str | None,
    threads: int | None,
    allow_failures: bool,
    progress: bool,
) -> None:
    """Convert HumanML3D-263 clips to SMPL motion_135 or MotionStreamer-272 (batched IK)."""
    from hftrainer_mogents.jobs.bridge import load_target_lengths, run_bridge
    from hftrainer_mogents.motion.smpl135 import IKConfig

    _set_threads(threads)
    if (mean_path is None) != (std_path is None):
        raise click.BadParameter("give both --mean-path and --std-path, or neither")
    mean, std = (
        _load_mean_std(mean_path, std_path)
        if mean_path is not None and std_path is not None
        else (None, None)
    )
    config = IKConfig(
        source_fps=source_fps,
        target_fps=target_fps,
        floor_align=floor_align,
        rotation_init=rotation_init,
        lock_global_orient=lock_global_orient,
        iters=iters,
        lr=lr,
        resample_mode=resample_mode,
        batch_frames=batch_frames,
    )
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
        progress=progress,
        **extra,
    )
    shown = {k: v for k, v in summary.items() if k not in ("items", "config")}
    click.echo(json.dumps(shown, indent=2))
    status = failure_status(summary, allow_failures)
    if status:
        raise SystemExit(status)


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


# ------------------------------------------------------------------ the zoo's scripts


# the zoo's names of the two starts, and ours
_ROTATION_INIT = {
    "joints": "joints",
    "position": "joints",
    "position_ik": "joints",
    "hml263": "hml263",
    "hml263_init": "hml263",
    "auto": "auto",  # the zoo's: hml263 for 263 input, the joints' IK for (T, 22, 3) input
}


def build_ik_parser() -> argparse.ArgumentParser:
    """``hml263_to_smpl_ik.py`` options (the zoo's names)."""
    ap = argparse.ArgumentParser(
        prog="hml263_to_smpl_ik.py",
        description="HumanML3D-263 (or (T,22,3) joints) .npy clips -> SMPL motion_135 .npz "
        "by batched inverse kinematics",
    )
    ap.add_argument("--in-dir", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--model-dir", default="ref_repo/MDM/body_models", help="SMPL neutral model")
    ap.add_argument("--ids", default=None, help="text file of ids (default: every .npy)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--num-shards", type=int, default=None)
    ap.add_argument("--shard-index", type=int, default=None)
    ap.add_argument("--source-fps", type=float, default=20.0)
    ap.add_argument("--target-fps", type=float, default=30.0)
    ap.add_argument("--batch-size", type=int, default=64, help="clips optimised together")
    ap.add_argument("--batch-frames", type=int, default=8192, help="padded frames per batch")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-existing", action="store_true")
    ap.add_argument("--floor-align", action="store_true")
    ap.add_argument("--refine-iters", type=int, default=0)
    ap.add_argument("--refine-lr", type=float, default=2e-2)
    ap.add_argument("--smooth-weight", type=float, default=1e-3)
    ap.add_argument("--pose-keep-weight", type=float, default=1e-4)
    ap.add_argument("--pose-l2-weight", type=float, default=0.0, help="only 0 is supported")
    ap.add_argument("--angle-prior-weight", type=float, default=0.0, help="only 0 is supported")
    ap.add_argument("--orientation-mode", choices=["bone"], default="bone")
    ap.add_argument("--parent-ref-weight", type=float, default=0.25, help="(unused)")
    ap.add_argument(
        "--rotation-init",
        choices=sorted(_ROTATION_INIT),
        default="auto",
        help="start of the fit: analytic IK on the joints (joints/position/position_ik), "
        "HumanML3D's stored rotations (hml263/hml263_init), or auto (the zoo's default: "
        "hml263 for (T,263) input, the joints' IK for (T,22,3) input)",
    )
    ap.add_argument(
        "--lock-global-orient",
        action="store_true",
        help="keep global_orient at its start (with auto on 263 input: HumanML3D's root) and "
        "optimise only body_pose and transl; recommended for HML263 input",
    )
    ap.add_argument(
        "--target-length-anno",
        default=None,
        help="annotation JSON whose data_list entries (dict id -> entry, or a list keyed by "
        "motion_id/id/index) have num_frames: after the fps change each listed clip is refit "
        "to that length (joints linearly, rotations by slerp), before the floor alignment",
    )
    ap.add_argument(
        "--canonical-meta-dir",
        default=None,
        help="folder of <id>.npz sidecars (motion135_dir_to_hml263.py --metadata-dir) holding "
        "source_motion135_transl: see --restore-root-translation",
    )
    ap.add_argument(
        "--restore-root-translation",
        choices=["auto", "none", "source_transl"],
        default="auto",
        help="with --canonical-meta-dir: the output transl becomes the sidecar's "
        "source_motion135_transl refit to the output length, where it has one (auto, "
        "source_transl), or never (none); the fit's own transl is kept as canonical_transl",
    )
    ap.add_argument("--resample-mode", choices=["zoo", "exact"], default="zoo")
    ap.add_argument(
        "--rot6d-convention",
        choices=["row", "column"],
        default="row",
        help="motion_135 6D layout: only 'row' (R[:, :2] row-major) is written",
    )
    ap.add_argument("--input-normalized", action="store_true")
    ap.add_argument("--mean-path", default=None)
    ap.add_argument("--std-path", default=None)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 per process is fastest when several shards share the CPU)",
    )
    ap.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit 0 even when some clips failed (they are listed in the summary either way)",
    )
    ap.add_argument("--no-progress", action="store_true")
    return ap


def ik_main(argv: Sequence[str] | None = None) -> int:
    """Run ``hml263_to_smpl_ik.py``; prints the summary (without its items). Returns the exit
    status (2 on one of our errors)."""
    from hftrainer_mogents.jobs.bridge import load_target_lengths, run_ik
    from hftrainer_mogents.motion.smpl135 import IKConfig

    args = build_ik_parser().parse_args(argv)
    _set_threads(args.threads)
    script_logging()

    def run() -> int:
        if args.pose_l2_weight or args.angle_prior_weight:
            raise InvalidInputError(
                "--pose-l2-weight/--angle-prior-weight are not implemented (the zoo's chain "
                "runs with 0); drop them"
            )
        if args.rot6d_convention != "row":
            raise InvalidInputError(
                "--rot6d-convention column is not written: motion_135 uses the 'row' layout "
                "R[:, :2] row-major, which the 272 conversion expects"
            )
        if args.input_normalized and not (args.mean_path and args.std_path):
            raise InvalidInputError("--input-normalized needs --mean-path and --std-path")
        mean, std = (
            _load_mean_std(args.mean_path, args.std_path) if args.input_normalized else (None, None)
        )
        config = IKConfig(
            source_fps=args.source_fps,
            target_fps=args.target_fps,
            floor_align=args.floor_align,
            rotation_init=_ROTATION_INIT[args.rotation_init],  # type: ignore[arg-type]
            lock_global_orient=args.lock_global_orient,
            iters=args.refine_iters,
            lr=args.refine_lr,
            pose_keep_weight=args.pose_keep_weight,
            smooth_weight=args.smooth_weight,
            resample_mode=args.resample_mode,
            batch_frames=args.batch_frames,
        )
        summary = run_ik(
            args.in_dir,
            args.out_dir,
            model_dir=args.model_dir,
            config=config,
            num_shards=args.num_shards,
            shard_index=args.shard_index,
            skip_existing=args.skip_existing,
            device=args.device,
            ids_file=args.ids,
            limit=args.limit,
            mean=mean,
            std=std,
            target_lengths=(
                load_target_lengths(args.target_length_anno) if args.target_length_anno else None
            ),
            canonical_meta_dir=args.canonical_meta_dir,
            restore_root_translation=args.restore_root_translation,
            chunk_clips=args.batch_size,
            progress=not args.no_progress,
        )
        shown = {k: v for k, v in summary.items() if k not in ("items", "config")}
        print(f"[done] {json.dumps(shown, indent=2)}")
        return failure_status(summary, args.allow_failures)

    return script_status(run)


def build_convert272_parser() -> argparse.ArgumentParser:
    """``convert_motion135_to_h3d272.py`` options."""
    ap = argparse.ArgumentParser(
        prog="convert_motion135_to_h3d272.py",
        description="SMPL motion_135 (.npz from the IK, or (T,135) .npy) -> MotionStreamer-272 .npy",
    )
    ap.add_argument("--in-dir", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument(
        "--skeleton",
        choices=["canon272", "smpl"],
        default="canon272",
        help="skeleton of the 272 joint positions: canon272 (the zoo's fixed skeleton, its "
        "converter's default; no body model) or smpl (SMPL neutral joints)",
    )
    ap.add_argument(
        "--model-dir",
        default=None,
        help="SMPL neutral model, for --skeleton smpl (needed for bare (T,135) .npy inputs; "
        "the IK's .npz carry their joints)",
    )
    ap.add_argument("--workers", type=int, default=1, help="(accepted; the work is vectorised)")
    ap.add_argument("--skip-existing", action="store_true")
    ap.add_argument("--num-shards", type=int, default=None)
    ap.add_argument("--shard-index", type=int, default=None)
    ap.add_argument("--ids", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--rotation-space", choices=["local"], default="local")
    ap.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit 0 even when some clips failed (they are listed in the summary either way)",
    )
    ap.add_argument("--no-progress", action="store_true")
    return ap


def convert272_main(argv: Sequence[str] | None = None) -> int:
    """Run ``convert_motion135_to_h3d272.py``; prints the summary. Returns the exit status (2 on
    one of our errors)."""
    from hftrainer_mogents.jobs.bridge import run_272

    args = build_convert272_parser().parse_args(argv)
    script_logging()

    def run() -> int:
        summary = run_272(
            args.in_dir,
            args.out_dir,
            skeleton=args.skeleton,
            model_dir=args.model_dir,
            num_shards=args.num_shards,
            shard_index=args.shard_index,
            skip_existing=args.skip_existing,
            ids_file=args.ids,
            limit=args.limit,
            progress=not args.no_progress,
        )
        print(f"[done] {json.dumps(summary, indent=2)}")
        return failure_status(summary, args.allow_failures)

    return script_status(run)
