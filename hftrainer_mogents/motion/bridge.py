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
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError, MoGenTSError
from hftrainer_mogents.motion import ms272, smpl135
from hftrainer_mogents.motion.skeletons import MS272_SKELETONS
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
    "RESTORE_ROOT_MODES",
    "list_motion_files",
    "load_target_lengths",
    "run_ik",
    "run_272",
    "run_bridge",
    "make_bridged_reference",
]

logger = logging.getLogger(__name__)

IK_SUMMARY = "_retarget_summary"
RESTORE_ROOT_MODES = ("auto", "source_transl", "none")
CONVERT272_SUMMARY = "_convert272_summary"


def finished_output(path: Path, key: str | None, width: int) -> bool:
    """Whether ``path`` is a whole output a resumed job may keep: it loads, holds a
    ``(T, width)`` array (``key`` of an ``.npz``, or the ``.npy`` itself) of finite floats.
    Anything else (missing, truncated, empty, NaN) is done again, with a warning if it exists."""
    if not path.is_file():
        return False
    try:
        loaded = np.load(path, allow_pickle=False)
        if key is None:
            array = loaded
        else:
            with loaded:  # an .npz archive
                array = np.asarray(loaded[key])
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile):
        array = None
    ok = (
        array is not None
        and array.ndim == 2
        and array.shape[1] == width
        and len(array) > 0
        and np.issubdtype(array.dtype, np.floating)
        and bool(np.isfinite(array).all())
    )
    if not ok:
        logger.warning("%s is not a whole output: redoing it", path)
    return ok


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


def load_target_lengths(path: str | os.PathLike[str]) -> dict[str, int]:
    """Clip lengths from an annotation JSON (the zoo's ``--target-length-anno``).

    The entries are the top level or its ``data_list``: a dict id -> entry, or a list of
    entries keyed by their ``motion_id`` (else ``id``, else their index). Entries with a
    ``num_frames`` give that clip's length; others are left out.

    Raises:
        ArtifactNotFoundError: no such file.
        InvalidInputError: not JSON, or not of that shape.
    """
    import json

    file = Path(path)
    if not file.is_file():
        raise ArtifactNotFoundError(f"target-length annotation not found: {file}")
    try:
        raw = json.loads(file.read_text())
    except (ValueError, OSError) as err:
        raise InvalidInputError(f"{file}: not a readable JSON file ({err})") from err
    data = raw.get("data_list", raw) if isinstance(raw, dict) else raw
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):
        pairs = [
            (
                (item.get("motion_id") or item.get("id") or idx) if isinstance(item, dict) else idx,
                item,
            )
            for idx, item in enumerate(data)
        ]
    else:
        raise InvalidInputError(
            f"{file}: expected a dict or list of entries (optionally under 'data_list')"
        )
    lengths = {}
    for key, entry in pairs:
        if isinstance(entry, dict) and entry.get("num_frames") is not None:
            try:
                lengths[str(key)] = int(entry["num_frames"])
            except (TypeError, ValueError) as err:
                raise InvalidInputError(f"{file}: entry {key!r} has a bad num_frames") from err
    return lengths


def _restore_root(
    arrays: dict[str, np.ndarray], name: str, meta_dir: Path, mode: str, rest: torch.Tensor
) -> dict[str, np.ndarray]:
    """The zoo's root restore: ``transl`` from the clip's sidecar, refit to the output length."""
    from hftrainer_mogents.motion.resample import resample_linear

    out = dict(arrays)
    transl = arrays["transl"]
    out["canonical_transl"] = transl
    out["canonical_fitted_joints"] = arrays["fitted_joints"]
    out["root_translation_restore_mode"] = np.array(mode)
    out["root_translation_restored"] = np.array(False)
    sidecar = meta_dir / f"{name}.npz"
    if mode == "none" or not sidecar.is_file():
        return out
    try:
        with np.load(sidecar, allow_pickle=False) as meta:
            if "source_motion135_transl" not in meta.files:
                return out
            source = np.asarray(meta["source_motion135_transl"], dtype=np.float32)
    except (ValueError, OSError, EOFError) as err:
        raise InvalidInputError(f"{sidecar.name}: unreadable sidecar ({err})") from err
    if source.ndim != 2 or source.shape[1] != 3 or len(source) < 1:
        raise InvalidInputError(
            f"{sidecar.name}: source_motion135_transl must be (T, 3), got {source.shape}"
        )
    frames = len(transl)
    if len(source) == 1:
        restored = np.repeat(source, frames, axis=0)
    else:
        restored = resample_linear(source, len(source), frames, mode="zoo")
    restored = restored.astype(np.float32)
    m135 = torch.from_numpy(arrays["motion_135"]).double()
    rot = smpl135.motion135_to_smpl_params(m135)[1]
    joints = smpl135.forward_kinematics(
        rot, rest.double(), transl=torch.from_numpy(restored).double()
    )
    out["transl"] = restored
    out["motion_135"] = np.concatenate((restored, arrays["motion_135"][:, 3:]), axis=1)
    out["fitted_joints"] = joints.joints.float().numpy()
    out["root_translation_restored"] = np.array(True)
    return out


def _motion135_272(m135: np.ndarray, fitted_joints: np.ndarray | None, skeleton: str) -> np.ndarray:
    """272 features of one fitted clip: canon272 FK of ``motion_135``, or the SMPL joints."""
    m = torch.from_numpy(np.asarray(m135, dtype=np.float64))
    if skeleton == "canon272":
        return ms272.motion135_to_272(m).float().numpy()
    if fitted_joints is None:
        raise InvalidInputError("skeleton='smpl' needs the fitted SMPL joints or the body model")
    rot = smpl135.motion135_to_smpl_params(m)[1]
    joints = torch.from_numpy(np.asarray(fitted_joints, dtype=np.float64))
    return ms272.encode_272(joints, rot).float().numpy()


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
    ms272_skeleton: str = "canon272",
    target_lengths: dict[str, int] | None = None,
    canonical_meta_dir: str | os.PathLike[str] | None = None,
    restore_root_translation: str = "auto",
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
        ms272_skeleton: the skeleton of those 272 positions: ``"canon272"`` (the zoo's, default)
            or ``"smpl"`` (the fitted SMPL joints); see :func:`run_272`.
        target_lengths: id -> frames: after the frame-rate change, the clip's joints (and
            HumanML3D rotations) are refit to that length (the zoo's ``--target-length-anno``;
            see :func:`load_target_lengths`); ids not in it keep their length.
        canonical_meta_dir: folder of ``<id>.npz`` sidecars with ``source_motion135_transl``
            (the zoo's ``--canonical-meta-dir``): see ``restore_root_translation``.
        restore_root_translation: ``"auto"`` (default) or ``"source_transl"``: where a clip's
            sidecar has ``source_motion135_transl``, the output ``transl`` becomes it, linearly
            refit to the output length, and ``fitted_joints`` are recomputed (the fit's own
            translation stays in ``canonical_transl`` and its error in ``fit_mpjpe_mm``);
            ``"none"`` never restores.
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
        finished = finished_output(out / f"{path.stem}.npz", "motion_135", 135)
        if out272 is not None:
            finished = finished and finished_output(out272 / f"{path.stem}.npy", None, 272)
        return finished

    todo = [f for f in files if not (skip_existing and done(f))]
    if restore_root_translation not in RESTORE_ROOT_MODES:
        raise InvalidInputError(
            f"unknown restore_root_translation {restore_root_translation!r}; use one of "
            f"{list(RESTORE_ROOT_MODES)}"
        )
    if ms272_skeleton not in MS272_SKELETONS:
        raise InvalidInputError(
            f"unknown 272 skeleton {ms272_skeleton!r}; use one of {list(MS272_SKELETONS)}"
        )
    meta_dir = Path(canonical_meta_dir) if canonical_meta_dir is not None else None
    if meta_dir is not None and not meta_dir.is_dir():
        raise ArtifactNotFoundError(f"canonical meta folder not found: {meta_dir}")
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
                length = (target_lengths or {}).get(path.stem)
                prepared.append(smpl135.prepare_clip(motion, cfg, path.stem, target_length=length))
            except MoGenTSError as err:
                failures.append({"sid": path.stem, "error": str(err)})
                bar.update(1)
        results = smpl135.fit_clips(prepared, model, cfg, device=dev) if prepared else []
        for res in results:
            if not np.isfinite(res.motion_135).all():
                failures.append({"sid": res.name, "error": "the fit diverged (non-finite values)"})
                bar.update(1)
                continue
            arrays = res.to_npz_dict()
            if meta_dir is not None:
                arrays = _restore_root(arrays, res.name, meta_dir, restore_root_translation, rest)
            atomic_save_npz(out / f"{res.name}.npz", **arrays)
            if out272 is not None:
                feats = _motion135_272(
                    arrays["motion_135"], arrays["fitted_joints"], ms272_skeleton
                )
                atomic_save_npy(out272 / f"{res.name}.npy", feats)
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
            "target_lengths": len(target_lengths) if target_lengths else 0,
            "canonical_meta_dir": str(meta_dir) if meta_dir is not None else None,
            "restore_root_translation": restore_root_translation,
            **({"ms272_skeleton": ms272_skeleton} if out272 is not None else {}),
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
    skeleton: str = "canon272",
    model_dir: str | os.PathLike[str] | None = None,
    num_shards: int | None = None,
    shard_index: int | None = None,
    skip_existing: bool = False,
    ids_file: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """SMPL ``motion_135`` files -> MotionStreamer-272 ``.npy`` files.

    Inputs are the IK's ``<id>.npz`` or ``<id>.npy`` (T, 135) arrays. The 272 position blocks
    need joint positions, and ``skeleton`` says where they come from:

    - ``"canon272"`` (default): forward kinematics of ``motion_135`` on the zoo's fixed skeleton,
      as the zoo's converter behind its MotionStreamer-272 numbers does; no body model.
    - ``"smpl"``: the SMPL joints, from ``model_dir`` (SMPL neutral, betas 0) or, without it, from
      the IK ``.npz``'s ``fitted_joints``.

    Returns:
        The summary written to ``<out_dir>/_convert272_summary*.json`` (``count``, ``failed``,
        ``failures``, ``skeleton``, ...).
    """
    if skeleton not in MS272_SKELETONS:
        raise InvalidInputError(
            f"unknown 272 skeleton {skeleton!r}; use one of {list(MS272_SKELETONS)}"
        )
    n_shards, index = resolve_shard(num_shards, shard_index)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = list_motion_files(in_dir, suffixes=(".npz", ".npy"), ids_file=ids_file, limit=limit)
    files = select_shard(files, n_shards, index)
    rest = None
    if skeleton == "smpl" and model_dir is not None:
        rest = torch.from_numpy(smpl135.load_smpl_model(model_dir).rest_joints()[:22])
    todo = [
        f
        for f in files
        if not (skip_existing and finished_output(out / f"{f.stem}.npy", None, 272))
    ]
    failures: list[dict[str, str]] = []
    start = time.perf_counter()
    bar = _progress(len(todo), "272", progress)
    for path in todo:
        try:
            feats = _clip_272(path, skeleton, rest)
            atomic_save_npy(out / f"{path.stem}.npy", feats)
        except MoGenTSError as err:
            failures.append({"sid": path.stem, "error": str(err)})
            logger.warning("[fail] %s: %s", path.stem, err)
        bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - start
    if skeleton == "canon272":
        joints_from = "canon272 forward kinematics"
    else:
        joints_from = "model" if rest is not None else "npz fitted_joints"
    summary = {
        "count": sum((out / f"{f.stem}.npy").is_file() for f in files),
        "failed": len(failures),
        "processed": len(todo) - len(failures),
        "skipped_existing": len(files) - len(todo),
        "failures": failures,
        "elapsed_s": round(elapsed, 3),
        "shard": {"num_shards": n_shards, "shard_index": index},
        "skeleton": skeleton,
        "joints_from": joints_from,
    }
    atomic_write_json(
        out / shard_summary_name(CONVERT272_SUMMARY, n_shards, index), summary, sort_keys=False
    )
    return summary


def _clip_272(path: Path, skeleton: str, rest: torch.Tensor | None) -> np.ndarray:
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
    if skeleton == "canon272":
        return ms272.motion135_to_272(m).float().numpy()
    if rest is not None:
        return ms272.motion135_to_272(m, rest, skeleton="smpl").float().numpy()
    if joints is None:
        raise InvalidInputError(
            f"{path.name}: skeleton 'smpl' on a bare motion_135 array needs the body model for "
            "its joints: pass --model-dir (SMPL neutral), or use the default skeleton canon272"
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


def make_bridged_reference(
    gt272_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str],
    out_root: str | os.PathLike[str],
) -> Path:
    """A ``humanml3d_272`` folder whose real motions are the ground truth sent through the bridge.

    The fair MotionStreamer-272 protocol of the zoo's later MoGenTS table: the ground-truth 263
    test clips go through the same 263 -> SMPL -> 272 bridge as the predictions, and the
    evaluator compares the predictions with those, so the bridge's own loss (IK fit, skeleton)
    is on both sides. ``out_root`` gets ``motion_data`` linked to ``gt272_dir`` and ``texts``,
    ``split`` and ``mean_std`` linked to ``data_root``'s (the evaluator keeps the dataset's
    statistics and captions), plus ``reference.json`` saying so. Pass it as the evaluation's
    data root.

    Args:
        gt272_dir: the bridged ground truth, ``<id>.npy`` (T, 272).
        data_root: the dataset's ``humanml3d_272`` folder (``texts/``, ``split/``, ``mean_std/``).
        out_root: the folder to make (links already there are replaced).

    Returns:
        ``out_root``.

    Raises:
        ArtifactNotFoundError: a folder is missing.
    """
    gt = Path(gt272_dir).resolve()
    data = Path(data_root).resolve()
    if not gt.is_dir():
        raise ArtifactNotFoundError(f"bridged ground-truth folder not found: {gt}")
    for sub in ("texts", "split"):
        if not (data / sub).is_dir():
            raise ArtifactNotFoundError(
                f"{data} has no {sub}/: expected the dataset's humanml3d_272 folder"
            )
    out = Path(out_root)
    out.mkdir(parents=True, exist_ok=True)
    links = {"motion_data": gt, "texts": data / "texts", "split": data / "split"}
    if (data / "mean_std").is_dir():
        links["mean_std"] = data / "mean_std"
    for name, target in links.items():
        link = out / name
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            raise InvalidInputError(f"{link} exists and is not a link; remove it or pick another")
        link.symlink_to(target, target_is_directory=True)
    atomic_write_json(
        out / "reference.json",
        {
            "reference": "bridged ground truth",
            "motion_data": str(gt),
            "data_root": str(data),
            "bridge_summary": _first_summary(gt),
        },
        sort_keys=False,
    )
    return out


def _first_summary(folder: Path) -> dict[str, Any] | None:
    import json

    for path in sorted(folder.glob(f"{CONVERT272_SUMMARY}*.json")):
        try:
            loaded = json.loads(path.read_text())
        except (ValueError, OSError):
            continue
        return {k: loaded.get(k) for k in ("count", "failed", "skeleton", "joints_from")}
    return None
