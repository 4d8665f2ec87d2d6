"""Batch jobs of the HumanML3D-263 -> SMPL ``motion_135`` -> MotionStreamer-272 bridge.

One file per clip in, one file per clip out. Every file is written atomically, finished clips
are skipped on a rerun (``skip_existing``), a bad clip (NaN, too short, wrong shape) is recorded
as failed and the others go on, and work is split by ``num_shards``/``shard_index`` (item ``i``
goes to shard ``i % num_shards``; torchrun's ``WORLD_SIZE``/``RANK`` are used when not given).

Layouts (the zoo's):

- IK: ``<out>/<id>.npz`` with ``motion_135``, ``transl``, ``global_orient``, ``body_pose``,
  ``target_joints``, ``fitted_joints``, ``fit_mpjpe_mm``, ... and ``<out>/_retarget_summary.json``
  (``_retarget_summary_s{ii}_of_{nn}.json`` when sharded): ``count``, ``failed``,
  ``mean_mpjpe_mm``, ``median_mpjpe_mm``, ``p95_frame_mpjpe_mm_mean``, ``items``, ``failures``.
- 272: ``<out>/<id>.npy`` (T, 272) float32 and ``<out>/_convert272_summary.json``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError, MoGenTSError
from hftrainer_mogents.motion import ms272, smpl135
from hftrainer_mogents.utils.device import resolve_device
from hftrainer_mogents.utils.io import (
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_json,
    is_temporary,
)
from hftrainer_mogents.utils.sharding import resolve_shard, select_shard, shard_summary_name

__all__ = [
    "IK_SUMMARY",
    "CONVERT272_SUMMARY",
    "list_motion_files",
    "run_ik",
    "run_272",
    "run_bridge",
]

logger = logging.getLogger(__name__)

IK_SUMMARY = "_retarget_summary"
CONVERT272_SUMMARY = "_convert272_summary"


def list_motion_files(
    in_dir: str | os.PathLike[str],
    *,
    suffixes: Sequence[str] = (".npy",),
    ids_file: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> list[Path]:
    """The input clips of a folder, sorted by name (or the ids of ``ids_file``, in its order).

    Hidden and temporary files and names starting with ``_`` (summaries) are left out.

    Raises:
        ArtifactNotFoundError: ``in_dir`` (or ``ids_file``) does not exist.
    """
    folder = Path(in_dir)
    if not folder.is_dir():
        raise ArtifactNotFoundError(f"input folder not found: {folder}")
    if ids_file is not None:
        ids_path = Path(ids_file)
        if not ids_path.is_file():
            raise ArtifactNotFoundError(f"ids file not found: {ids_path}")
        ids = [line.strip() for line in ids_path.read_text().splitlines() if line.strip()]
        files = []
        for sid in ids:
            found = [folder / f"{sid}{s}" for s in suffixes if (folder / f"{sid}{s}").is_file()]
            if found:
                files.append(found[0])
            else:
                logger.warning("id %s has no file in %s", sid, folder)
    else:
        files = sorted(
            p
            for p in folder.iterdir()
            if p.suffix in suffixes
            and p.is_file()
            and not is_temporary(p)
            and not p.name.startswith(("_", "."))
        )
    return files[:limit] if limit else files


def _load(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return np.asarray(data["motion_135"])
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, KeyError, EOFError) as err:
        raise InvalidInputError(f"{path.name}: unreadable ({err})") from err


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="clip", disable=not enabled, dynamic_ncols=True)


def _ik_items(out_dir: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    items = []
    for name in names:
        path = out_dir / f"{name}.npz"
        if not path.is_file():
            continue
        try:
            with np.load(path, allow_pickle=False) as data:
                err = np.asarray(data["fit_mpjpe_mm"], dtype=np.float64)
                init = str(data["rotation_init"]) if "rotation_init" in data.files else ""
        except (ValueError, OSError, KeyError, EOFError) as exc:
            logger.warning("cannot read %s for the summary: %s", path, exc)
            continue
        items.append(
            {
                "sid": name,
                "frames": int(len(err)),
                "mpjpe_mm_mean": float(err.mean()),
                "mpjpe_mm_p95": float(np.percentile(err, 95)),
                "rotation_init": init,
            }
        )
    return items


def _ik_summary(
    items: list[dict[str, Any]], failures: list[dict[str, str]], extra: dict[str, Any]
) -> dict[str, Any]:
    means = [it["mpjpe_mm_mean"] for it in items]
    summary: dict[str, Any] = {"count": len(items), "failed": len(failures)}
    if items:
        summary |= {
            "mean_mpjpe_mm": float(np.mean(means)),
            "median_mpjpe_mm": float(np.median(means)),
            "p95_frame_mpjpe_mm_mean": float(np.mean([it["mpjpe_mm_p95"] for it in items])),
        }
    summary |= {"items": items[:100], "failures": failures, **extra}
    return summary


def run_ik(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str],
    config: smpl135.IKConfig | None = None,
    num_shards: int | None = None,
    shard_index: int | None = None,
    skip_existing: bool = False,
    device: str | torch.device | None = None,
    ids_file: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    ms272_dir: str | os.PathLike[str] | None = None,
    chunk_clips: int = 64,
    progress: bool = True,
) -> dict[str, Any]:
    """HumanML3D-263 (or (T, 22, 3) joints) ``.npy`` files -> SMPL ``motion_135`` ``.npz`` files.

    Args:
        in_dir: folder of ``<id>.npy``, (T, 263) physical units (or normalised, with mean/std).
        out_dir: where ``<id>.npz`` and the summary JSON go.
        model_dir: SMPL neutral model folder or file.
        config: fit settings (:class:`~hftrainer_mogents.motion.smpl135.IKConfig`).
        num_shards: processes sharing the work (default: torchrun's env, else 1).
        shard_index: this process's share.
        skip_existing: leave clips whose output exists.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        ids_file: a text file of ids to process (default every ``.npy``).
        limit: process only the first ``limit`` clips.
        mean: (263,) de-normalise inputs as ``x * std + mean`` (with ``std``).
        std: (263,).
        ms272_dir: also write the 272 features of each clip there (``<id>.npy``).
        chunk_clips: clips loaded and optimised together.
        progress: show a tqdm bar.

    Returns:
        The summary written to ``<out_dir>/_retarget_summary*.json``.
    """
    cfg = config or smpl135.IKConfig()
    n_shards, index = resolve_shard(num_shards, shard_index)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    out272 = Path(ms272_dir) if ms272_dir is not None else None
    files = select_shard(list_motion_files(in_dir, ids_file=ids_file, limit=limit), n_shards, index)
    names = [f.stem for f in files]

    def done(path: Path) -> bool:
        finished = (out / f"{path.stem}.npz").is_file()
        if out272 is not None:
            finished = finished and (out272 / f"{path.stem}.npy").is_file()
        return finished

    todo = [f for f in files if not (skip_existing and done(f))]
    model = smpl135.load_smpl_model(model_dir)
    dev = resolve_device(device)
    rest = torch.from_numpy(model.rest_joints()[: smpl135.NUM_JOINTS])
    failures: list[dict[str, str]] = []
    start = time.perf_counter()
    bar = _progress(len(todo), "IK", progress)
    for chunk in _chunks(todo, max(1, chunk_clips)):
        prepared = []
        for path in chunk:
            try:
                motion = _load(path)
                if mean is not None and std is not None and motion.ndim == 2:
                    motion = motion * std + mean
                prepared.append(smpl135.prepare_clip(motion, cfg, path.stem))
            except MoGenTSError as err:
                failures.append({"sid": path.stem, "error": str(err)})
                bar.update(1)
        results = smpl135.fit_clips(prepared, model, cfg, device=dev) if prepared else []
        for res in results:
            if not np.isfinite(res.motion_135).all():
                failures.append({"sid": res.name, "error": "the fit diverged (non-finite values)"})
                bar.update(1)
                continue
            atomic_save_npz(out / f"{res.name}.npz", **res.to_npz_dict())
            if out272 is not None:
                feats = ms272.encode_272(
                    torch.from_numpy(res.fitted_joints).double(),
                    smpl135.motion135_to_smpl_params(torch.from_numpy(res.motion_135).double())[1],
                )
                atomic_save_npy(out272 / f"{res.name}.npy", feats.float().numpy())
            bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - start
    for failure in failures:
        logger.warning("[fail] %s: %s", failure["sid"], failure["error"])
    summary = _ik_summary(
        _ik_items(out, names),
        failures,
        {
            "processed": len(todo) - len(failures),
            "skipped_existing": len(files) - len(todo),
            "elapsed_s": round(elapsed, 3),
            "clips_per_s": round((len(todo) - len(failures)) / elapsed, 3) if elapsed else None,
            "shard": {"num_shards": n_shards, "shard_index": index},
            "device": str(dev),
            "model": model.path,
            "rest_pelvis": [float(v) for v in rest[0]],
            "config": dict(cfg.__dict__),
        },
    )
    atomic_write_json(
        out / shard_summary_name(IK_SUMMARY, n_shards, index), summary, sort_keys=False
    )
    return summary


def run_272(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None = None,
    num_shards: int | None = None,
    shard_index: int | None = None,
    skip_existing: bool = False,
    ids_file: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """SMPL ``motion_135`` files -> MotionStreamer-272 ``.npy`` files.

    Inputs are the IK's ``<id>.npz`` (their ``fitted_joints`` are the body model's joints of
    ``motion_135``, so no model is needed) or ``<id>.npy`` (T, 135) arrays (then ``model_dir`` is
    needed for the forward kinematics; with it, ``.npz`` inputs are recomputed from the model too).

    Returns:
        The summary written to ``<out_dir>/_convert272_summary*.json`` (``count``, ``failed``,
        ``failures``, ...).
    """
    n_shards, index = resolve_shard(num_shards, shard_index)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = list_motion_files(in_dir, suffixes=(".npz", ".npy"), ids_file=ids_file, limit=limit)
    files = select_shard(files, n_shards, index)
    rest = None
    if model_dir is not None:
        rest = torch.from_numpy(smpl135.load_smpl_model(model_dir).rest_joints()[:22])
    todo = [f for f in files if not (skip_existing and (out / f"{f.stem}.npy").is_file())]
    failures: list[dict[str, str]] = []
    start = time.perf_counter()
    bar = _progress(len(todo), "272", progress)
    for path in todo:
        try:
            feats = _clip_272(path, rest)
            atomic_save_npy(out / f"{path.stem}.npy", feats)
        except MoGenTSError as err:
            failures.append({"sid": path.stem, "error": str(err)})
            logger.warning("[fail] %s: %s", path.stem, err)
        bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - start
    summary = {
        "count": sum((out / f"{f.stem}.npy").is_file() for f in files),
        "failed": len(failures),
        "processed": len(todo) - len(failures),
        "skipped_existing": len(files) - len(todo),
        "failures": failures,
        "elapsed_s": round(elapsed, 3),
        "shard": {"num_shards": n_shards, "shard_index": index},
        "joints_from": "model" if rest is not None else "npz fitted_joints",
    }
    atomic_write_json(
        out / shard_summary_name(CONVERT272_SUMMARY, n_shards, index), summary, sort_keys=False
    )
    return summary


def _clip_272(path: Path, rest: torch.Tensor | None) -> np.ndarray:
    joints = None
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                m135 = np.asarray(data["motion_135"], dtype=np.float64)
                if "fitted_joints" in data.files:
                    joints = np.asarray(data["fitted_joints"], dtype=np.float64)
        except (ValueError, OSError, KeyError, EOFError) as err:
            raise InvalidInputError(f"{path.name}: unreadable motion_135 npz ({err})") from err
    else:
        m135 = _load(path).astype(np.float64)
    if m135.ndim != 2 or m135.shape[1] != smpl135.DIM_SMPL135 or len(m135) < 2:
        raise InvalidInputError(f"{path.name}: expected (T >= 2, 135) motion_135, got {m135.shape}")
    if not np.isfinite(m135).all():
        raise InvalidInputError(f"{path.name}: contains NaN or inf values")
    m = torch.from_numpy(m135)
    if rest is not None:
        return ms272.motion135_to_272(m, rest).float().numpy()
    if joints is None:
        raise InvalidInputError(
            f"{path.name}: a bare motion_135 array needs the body model for its joints: pass "
            "--model-dir (SMPL neutral)"
        )
    rot = smpl135.motion135_to_smpl_params(m)[1]
    return ms272.encode_272(torch.from_numpy(joints), rot).float().numpy()


def run_bridge(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    to: Literal["smpl135", "ms272"],
    model_dir: str | os.PathLike[str],
    smpl135_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """``mogents bridge``: 263 clips to ``motion_135`` (``to="smpl135"``) or to 272 features.

    For ``to="ms272"`` the 272 files go to ``out_dir`` and the IK files (with the fit errors the
    summary reads) to ``smpl135_dir`` (default ``<out_dir>/smpl135``); the summary JSON is
    written in both.

    Args:
        in_dir: folder of (T, 263) ``.npy`` clips.
        out_dir: output folder.
        to: ``"smpl135"`` or ``"ms272"``.
        model_dir: SMPL neutral model folder or file.
        smpl135_dir: see above.
        **kwargs: passed to :func:`run_ik` (config, shards, skip_existing, device, ...).

    Returns:
        The IK summary.
    """
    if to == "smpl135":
        return run_ik(in_dir, out_dir, model_dir=model_dir, **kwargs)
    if to != "ms272":
        raise InvalidInputError(f"--to must be 'smpl135' or 'ms272', got {to!r}")
    ik_dir = Path(smpl135_dir) if smpl135_dir is not None else Path(out_dir) / "smpl135"
    summary = run_ik(in_dir, ik_dir, model_dir=model_dir, ms272_dir=out_dir, **kwargs)
    n_shards, index = summary["shard"]["num_shards"], summary["shard"]["shard_index"]
    atomic_write_json(
        Path(out_dir) / shard_summary_name(IK_SUMMARY, n_shards, index), summary, sort_keys=False
    )
    return summary
