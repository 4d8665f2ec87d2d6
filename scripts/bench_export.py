"""Time the motion exporters and measure the BVH round-trip error on the shared fixtures.

    python scripts/bench_export.py [--fixtures ../shared/fixtures] [--frames 196] [--repeats 3]

Prints one JSON object: seconds per GIF / MP4 (when ffmpeg exists) / PNG / BVH of a
``--frames``-long clip at the default size (400 x 400 px), and for every fixture motion the
round trip ``joints -> BVH file -> read -> FK`` error (cm, mean and max over joints and frames)
next to the clip's bone-length variation (cm), which bounds how exact a fixed-length skeleton can
be. The 263 fixture motions are random features (bones stretching by ~10 cm), the SMPL ones are
rigid smplx skeletons; the ``+noise`` rows add 1 cm Gaussian noise per coordinate, standing in
for a generated motion.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hftrainer_mogents.motion import bvh, render
from hftrainer_mogents.motion.hml263 import JOINT_NAMES, recover_from_ric

ROOT = Path(__file__).resolve().parents[1]


def _best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times), 3)


def _motions(fixtures: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for path in sorted((fixtures / "ms272_tiny" / "motions").glob("*.npz")):
        joints = np.load(path)["fk_joints24"][:, :22].astype(np.float64)
        out[f"smpl/{path.stem}"] = joints
        noise = np.random.default_rng(0).normal(0, 0.01, joints.shape)
        out[f"smpl/{path.stem}+noise1cm"] = joints + noise
    hml = fixtures / "hml263_eval_tiny"
    for path in sorted((hml / "dataset" / "HumanML3D" / "new_joint_vecs").glob("*.npy")):
        out[f"hml263/{path.stem}"] = recover_from_ric(np.load(path)).astype(np.float64)
    for path in sorted((hml / "recover_from_ric").glob("input_*.npy")):
        out[f"hml263/{path.stem}"] = recover_from_ric(np.load(path)).astype(np.float64)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", type=Path, default=ROOT.parent / "shared" / "fixtures")
    parser.add_argument("--frames", type=int, default=196)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    motions = _motions(args.fixtures)
    base = motions["smpl/walk_turn"]
    clip = np.concatenate([base, base[::-1]] * (args.frames // (2 * len(base)) + 1))[: args.frames]
    result: dict[str, object] = {"frames": args.frames, "seconds": {}, "bvh_round_trip": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seconds = result["seconds"]
        seconds["gif"] = _best_of(
            args.repeats, lambda: render.render_animation(clip, folder / "a.gif", title="walk")
        )
        if render._ffmpeg_available():
            seconds["mp4"] = _best_of(
                args.repeats, lambda: render.render_animation(clip, folder / "a.mp4", title="walk")
            )
        seconds["png"] = _best_of(
            args.repeats, lambda: render.render_frame(clip, 0, folder / "a.png", title="walk")
        )
        seconds["bvh"] = _best_of(args.repeats, lambda: bvh.write_bvh(folder / "a.bvh", clip))

        rows = result["bvh_round_trip"]
        for name, joints in motions.items():
            bvh.write_bvh(folder / "m.bvh", joints)
            fk = bvh.bvh_forward_kinematics(bvh.read_bvh(folder / "m.bvh"), names=JOINT_NAMES)
            err = np.linalg.norm(fk - joints, axis=-1) * 100
            stats = bvh.bone_length_stats(joints)
            rows[name] = {
                "frames": len(joints),
                "err_mean_cm": round(float(err.mean()), 4),
                "err_max_cm": round(float(err.max()), 4),
                "bone_std_mean_cm": round(float(stats.std[1:].mean() * 100), 4),
                "bone_std_max_cm": round(float(stats.std[1:].max() * 100), 4),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
