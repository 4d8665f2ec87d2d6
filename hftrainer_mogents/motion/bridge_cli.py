"""The zoo's bridge scripts with their flags, over :mod:`hftrainer_mogents.motion.bridge`:
``scripts/hml263_to_smpl_ik.py`` (:func:`ik_main`) and ``scripts/convert_motion135_to_h3d272.py``
(:func:`convert272_main`).

Defaults are the zoo scripts' (``--refine-iters 0``, no floor alignment); the chain script passes
``--floor-align --refine-iters 80 --refine-lr 0.02`` as the zoo's chain does. Flags of the zoo that
tune options this implementation does not have (pose priors, the parent-frame orientation mode)
are accepted at their neutral values and refused otherwise, with a message.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

import numpy as np

from hftrainer_mogents.errors import InvalidInputError, MoGenTSError

__all__ = ["build_ik_parser", "ik_main", "build_convert272_parser", "convert272_main"]

# the zoo's names of the two starts, and ours
_ROTATION_INIT = {
    "joints": "joints",
    "position": "joints",
    "position_ik": "joints",
    "hml263": "hml263",
    "hml263_init": "hml263",
    "auto": "joints",
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
        default="joints",
        help="start of the fit: analytic IK on the joints (joints/position/position_ik/auto) or "
        "HumanML3D's stored rotations (hml263/hml263_init, the zoo's)",
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
    ap.add_argument("--no-progress", action="store_true")
    return ap


def ik_main(argv: Sequence[str] | None = None) -> int:
    """Run ``hml263_to_smpl_ik.py``; prints the summary (without its items)."""
    from hftrainer_mogents.motion.bridge import run_ik
    from hftrainer_mogents.motion.smpl135 import IKConfig

    args = build_ik_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
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
        mean = std = None
        if args.input_normalized:
            if not (args.mean_path and args.std_path):
                raise InvalidInputError("--input-normalized needs --mean-path and --std-path")
            mean = np.load(args.mean_path, allow_pickle=False).astype(np.float32)
            std = np.load(args.std_path, allow_pickle=False).astype(np.float32)
            if mean.shape != (263,) or std.shape != (263,):
                raise InvalidInputError(
                    f"expected (263,) mean/std, got {mean.shape} and {std.shape}"
                )
        config = IKConfig(
            source_fps=args.source_fps,
            target_fps=args.target_fps,
            floor_align=args.floor_align,
            rotation_init=_ROTATION_INIT[args.rotation_init],  # type: ignore[arg-type]
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
            chunk_clips=args.batch_size,
            progress=not args.no_progress,
        )
    except MoGenTSError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in summary.items() if k not in ("items", "config")}
    print(f"[done] {json.dumps(shown, indent=2)}")
    return 0


def build_convert272_parser() -> argparse.ArgumentParser:
    """``convert_motion135_to_h3d272.py`` options."""
    ap = argparse.ArgumentParser(
        prog="convert_motion135_to_h3d272.py",
        description="SMPL motion_135 (.npz from the IK, or (T,135) .npy) -> MotionStreamer-272 .npy",
    )
    ap.add_argument("--in-dir", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument(
        "--model-dir",
        default=None,
        help="SMPL neutral model (needed for bare (T,135) .npy inputs; the IK's .npz carry "
        "their joints)",
    )
    ap.add_argument("--workers", type=int, default=1, help="(accepted; the work is vectorised)")
    ap.add_argument("--skip-existing", action="store_true")
    ap.add_argument("--num-shards", type=int, default=None)
    ap.add_argument("--shard-index", type=int, default=None)
    ap.add_argument("--ids", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--rotation-space", choices=["local"], default="local")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def convert272_main(argv: Sequence[str] | None = None) -> int:
    """Run ``convert_motion135_to_h3d272.py``; prints the summary."""
    from hftrainer_mogents.motion.bridge import run_272

    args = build_convert272_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = run_272(
            args.in_dir,
            args.out_dir,
            model_dir=args.model_dir,
            num_shards=args.num_shards,
            shard_index=args.shard_index,
            skip_existing=args.skip_existing,
            ids_file=args.ids,
            limit=args.limit,
            progress=not args.no_progress,
        )
    except MoGenTSError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(f"[done] {json.dumps(summary, indent=2)}")
    return 0
