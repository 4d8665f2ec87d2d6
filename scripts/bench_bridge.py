#!/usr/bin/env python
"""Speed of the HumanML3D-263 -> SMPL IK: our batched fit against the existing port's way.

Both fit the same clips (120 frames at 20 fps -> 180 at 30 fps, floor-aligned, the same start) with
the same loss and 80 Adam steps at lr 0.02:

- ours: joints by forward kinematics on the rest joints, all clips in length-sorted batches
  (``hftrainer_mogents.motion.smpl135.fit_clips``), timed end to end from the 263 features
  (joint recovery, resampling, initialisation, fit);
- baseline: one clip at a time, the smplx model's full forward (vertices, skinning) each step, as
  the zoo's ``hml263_to_smpl_ik.py`` refines; timed on the fit alone (it gets the start for free).

Prints clips/s of both, the ratio, the mean per-clip MPJPE of both on the clips both fitted (they
must agree), and the time the 4012-clip HumanML3D test split would take::

    python scripts/bench_bridge.py --model-dir ../shared/fixtures/ms272_tiny/smpl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from hftrainer_mogents.motion import hml263, smpl135
from hftrainer_mogents.motion.resample import resample_linear
from hftrainer_mogents.motion.rotations import axis_angle_to_matrix, matrix_to_axis_angle

HML3D_TEST_CLIPS = 4012


def make_clips(fixtures: Path, count: int, frames: int, seed: int) -> list[np.ndarray]:
    """``count`` 263 clips of ``frames`` frames at 20 fps, from the fixture's SMPL motions with a
    random global pose offset and slow random body-pose drift (FK on the fixture model)."""
    model = smpl135.load_smpl_model(fixtures / "smpl")
    rest = torch.from_numpy(model.rest_joints()[:22])
    rng = np.random.default_rng(seed)
    names = ["walk_turn", "sway_arms", "short_spin"]
    clips = []
    for k in range(count):
        with np.load(fixtures / "motions" / f"{names[k % 3]}.npz") as data:
            aa = np.concatenate(
                [
                    data["smpl_global_orient"][:, None],
                    data["smpl_body_pose"].reshape(-1, 23, 3)[:, :21],
                ],
                1,
            )
            transl = data["smpl_transl"]
        need = int(np.ceil((frames + 1) * 1.5))  # 30 fps frames covering frames + 1 at 20 fps
        reps = int(np.ceil(need / len(aa)))
        idx = np.concatenate(
            [np.arange(len(aa))[:: (1 if r % 2 == 0 else -1)] for r in range(reps)]
        )[:need]
        aa, transl = aa[idx], transl[idx]
        drift = np.cumsum(rng.normal(0, 0.01, size=aa.shape), axis=0)
        aa = aa + drift
        aa[:, 0] += rng.normal(0, 0.3, size=3) * np.array([0.2, 1.0, 0.2])
        rot = axis_angle_to_matrix(torch.from_numpy(aa))
        joints = smpl135.forward_kinematics(rot, rest, transl=torch.from_numpy(transl)).joints
        joints20 = resample_linear(joints.numpy(), 30, 20, mode="exact")[: frames + 1]
        clips.append(hml263.joints_to_hml263(joints20))
    return clips


def ours(clips: list[np.ndarray], model: smpl135.SMPLModel, cfg: smpl135.IKConfig, device: str):
    start, cpu = time.perf_counter(), time.process_time()
    prepared = [smpl135.prepare_clip(c, cfg, f"{i:06d}") for i, c in enumerate(clips)]
    results = smpl135.fit_clips(prepared, model, cfg, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu, results, prepared


def baseline(
    prepared: list[smpl135.PreparedClip],
    model: smpl135.SMPLModel,
    cfg: smpl135.IKConfig,
    device: str,
) -> tuple[float, list[float]]:
    """The zoo's refinement: per clip, smplx forward every step."""
    body = smpl135.smplx_model(model).to(device)
    rest = torch.from_numpy(model.rest_joints()[:22])
    errors, elapsed = [], 0.0
    for clip in prepared:
        target = clip.target.float().to(device)
        init = smpl135.init_rotations_from_joints(clip.target, rest).float()
        aa = matrix_to_axis_angle(init).to(device)  # (T, 22, 3)
        n = len(target)
        start = time.perf_counter()
        g = aa[:, 0].clone().requires_grad_(True)
        b21 = aa[:, 1:].reshape(n, 63).clone().requires_grad_(True)
        b21_init = b21.detach().clone()
        tr = (target[:, 0] - rest[0].float().to(device)).clone().requires_grad_(True)
        opt = torch.optim.Adam([g, b21, tr], lr=cfg.lr)
        zeros_betas = torch.zeros(n, 10, device=device)
        for _ in range(cfg.iters):
            body23 = torch.cat([b21, torch.zeros(n, 6, device=device)], 1)
            joints = body(betas=zeros_betas, body_pose=body23, global_orient=g, transl=tr).joints[
                :, :22
            ]
            data = ((joints - target) ** 2).sum(-1).mean()
            keep = ((b21 - b21_init) ** 2).mean()
            tr_acc = tr[2:] - 2 * tr[1:-1] + tr[:-2]
            p_acc = b21[2:] - 2 * b21[1:-1] + b21[:-2]
            smooth = (tr_acc**2).mean() + cfg.pose_smooth_ratio * (p_acc**2).mean()
            loss = data + cfg.pose_keep_weight * keep + cfg.smooth_weight * smooth
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            body23 = torch.cat([b21, torch.zeros(n, 6, device=device)], 1)
            joints = body(betas=zeros_betas, body_pose=body23, global_orient=g, transl=tr).joints[
                :, :22
            ]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - start
        errors.append(float((joints - target).norm(dim=-1).mean()) * 1000)
    return elapsed, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--fixtures",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ms272_tiny"),
    )
    ap.add_argument("--clips", type=int, default=64, help="clips for our batched fit")
    ap.add_argument("--baseline-clips", type=int, default=4, help="clips for the per-clip loop")
    ap.add_argument("--frames", type=int, default=120, help="frames per clip at 20 fps")
    ap.add_argument("--iters", type=int, default=80)
    ap.add_argument("--batch-frames", type=int, default=8192)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fixtures = Path(args.fixtures)
    model = smpl135.load_smpl_model(fixtures / "smpl")
    cfg = smpl135.IKConfig(iters=args.iters, batch_frames=args.batch_frames)
    clips = make_clips(fixtures, args.clips, args.frames, args.seed)

    load = os.getloadavg()[0]
    ours_s, ours_cpu, results, prepared = ours(clips, model, cfg, args.device)
    base_s, base_err = baseline(prepared[: args.baseline_clips], model, cfg, args.device)
    ours_err = [r.mean_mpjpe_mm for r in results]
    common = len(base_err)
    report = {
        "device": args.device
        if not args.device.startswith("cuda")
        else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "clips": args.clips,
        "frames_20fps": args.frames,
        "frames_30fps": len(prepared[0].target),
        "iters": args.iters,
        "load_average_before": round(load, 2),
        "ours_clips_per_s": round(args.clips / ours_s, 2),
        "ours_cpu_s_per_clip": round(ours_cpu / args.clips, 4),
        "baseline_clips_per_s": round(common / base_s, 3),
        "speedup": round((args.clips / ours_s) / (common / base_s), 1),
        "ours_mpjpe_mm_mean": round(float(np.mean(ours_err)), 4),
        "ours_mpjpe_mm_on_baseline_clips": round(float(np.mean(ours_err[:common])), 4),
        "baseline_mpjpe_mm": round(float(np.mean(base_err)), 4),
        "mpjpe_max_abs_diff_mm": round(
            float(np.max(np.abs(np.array(ours_err[:common]) - base_err))), 5
        ),
        "hml3d_test_4012_clips_minutes": round(HML3D_TEST_CLIPS / (args.clips / ours_s) / 60, 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
