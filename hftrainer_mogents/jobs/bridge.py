"""Batch jobs of the HumanML3D-263 -> SMPL ``motion_135`` -> MotionStreamer-272 bridge, on the
job runner (:func:`~hftrainer_mogents.utils.runner.run_job`); the computations are the pure
functions of :mod:`hftrainer_mogents.motion.bridge` and :mod:`~hftrainer_mogents.motion.smpl135`.

One file per clip in, one file per clip out. Every file is written atomically, finished clips
are skipped on a rerun (``skip_existing``, checked by
:func:`~hftrainer_mogents.utils.runner.output_problem`), a bad clip (NaN, too short, wrong shape)
is recorded as failed and the others go on, and work is split by ``num_shards``/``shard_index``
(item ``i`` goes to shard ``i % num_shards``; torchrun's ``WORLD_SIZE``/``RANK`` are used when
not given).

Layouts (the zoo's):

- IK: ``<out>/<id>.npz`` with ``motion_135``, ``transl``, ``global_orient``, ``body_pose``,
  ``target_joints``, ``fitted_joints``, ``fit_mpjpe_mm``, ... and ``<out>/_retarget_summary.json``
  (``_retarget_summary_s{ii}_of_{nn}.json`` when sharded): ``count``, ``failed``,
  ``mean_mpjpe_mm``, ``median_mpjpe_mm``, ``p95_frame_mpjpe_mm_mean``, ``items``, ``failures``.
- 272: ``<out>/<id>.npy`` (T, 272) float32 and ``<out>/_convert272_summary.json``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError, MoGenTSError
from hftrainer_mogents.motion import smpl135
from hftrainer_mogents.motion.bridge import (
    RESTORE_ROOT_MODES,
    fitted_clip_272,
    ik_summary,
    motion135_file_272,
    restore_root,
)
from hftrainer_mogents.motion.skeletons import MS272_SKELETONS
from hftrainer_mogents.utils.device import resolve_device
from hftrainer_mogents.utils.io import (
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_json,
    is_temporary,
)
from hftrainer_mogents.utils.runner import output_problem, run_job, write_summary

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
CONVERT272_SUMMARY = "_convert272_summary"


def _finished(path: Path, key: str | None, width: int) -> bool:
    """Whether a resumed job may keep ``path`` (a whole ``(T, width)`` output); anything else is
    done again, with a warning if it exists."""
    problem = output_problem(path, key=key, shape=(None, width))
    if problem not in (None, "missing"):
        logger.warning("%s is not a whole output: redoing it (%s)", path, problem)
    return problem is None


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


def load_target_lengths(path: str | os.PathLike[str]) -> dict[str, int]:
    """Clip lengths from an annotation JSON (the zoo's ``--target-length-anno``).

    The entries are the top level or its ``data_list``: a dict id -> entry, or a list of
    entries keyed by their ``motion_id`` (else ``id``, else their index). Entries with a
    ``num_frames`` give that clip's length; others are left out.

    Raises:
        ArtifactNotFoundError: no such file.
        InvalidInputError: not JSON, or not of that shape.
    """
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
    cfg.validate()  # a setting changed after construction is checked before anything is written
    out272 = Path(ms272_dir) if ms272_dir is not None else None
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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = list_motion_files(in_dir, ids_file=ids_file, limit=limit)
    model = smpl135.load_smpl_model(model_dir)
    dev = resolve_device(device)
    rest = torch.from_numpy(model.rest_joints()[: smpl135.NUM_JOINTS])

    def done(path: Path) -> bool:
        finished = _finished(out / f"{path.stem}.npz", "motion_135", 135)
        return finished and (out272 is None or _finished(out272 / f"{path.stem}.npy", None, 272))

    def work(chunk: list[Path]) -> list[dict[str, str]]:
        clips = [(p, mean, std, (target_lengths or {}).get(p.stem)) for p in chunk]
        return _fit_and_save(
            clips,
            out,
            out272,
            model,
            cfg,
            dev,
            rest,
            meta_dir,
            restore_root_translation,
            ms272_skeleton,
        )

    job = run_job(
        files,
        work,
        done=done,
        skip_existing=skip_existing,
        chunk_size=max(1, chunk_clips),
        num_shards=num_shards,
        shard_index=shard_index,
        progress=progress,
        desc="IK",
        unit="clip",
    )
    for failure in job.failures:
        logger.warning("[fail] %s: %s", failure["sid"], failure["error"])
    processed = len(job.todo) - len(job.failures)
    summary = ik_summary(
        _ik_items(out, [f.stem for f in job.items]),
        job.failures,
        {
            "processed": processed,
            "skipped_existing": job.skipped,
            "elapsed_s": round(job.seconds, 3),
            "clips_per_s": round(processed / job.seconds, 3) if job.seconds else None,
            "shard": job.shard,
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
    write_summary(out, IK_SUMMARY, summary, **job.shard, sort_keys=False)
    return summary


def _fit_and_save(
    clips: list[tuple[Path, np.ndarray | None, np.ndarray | None, int | None]],
    out: Path,
    out272: Path | None,
    model: smpl135.SMPLModel,
    cfg: smpl135.IKConfig,
    dev: torch.device,
    rest: torch.Tensor,
    meta_dir: Path | None,
    restore: str,
    skeleton: str,
) -> list[dict[str, str]]:
    """One chunk of :func:`run_ik`: the clips (path, mean, std, target length) loaded, fitted
    together and saved; the clips that fail are returned."""
    failures, prepared = [], []
    for path, mean, std, length in clips:
        try:
            motion = _load(path)
            if mean is not None and std is not None and motion.ndim == 2:
                motion = motion * std + mean
            prepared.append(smpl135.prepare_clip(motion, cfg, path.stem, target_length=length))
        except MoGenTSError as err:
            failures.append({"sid": path.stem, "error": str(err)})
    for res in smpl135.fit_clips(prepared, model, cfg, device=dev) if prepared else []:
        if not np.isfinite(res.motion_135).all():
            failures.append({"sid": res.name, "error": "the fit diverged (non-finite values)"})
            continue
        arrays = res.to_npz_dict()
        if meta_dir is not None:
            sidecar = meta_dir / f"{res.name}.npz"
            source = None if restore == "none" else _source_transl(sidecar)
            arrays = restore_root(arrays, source, restore, rest)
        atomic_save_npz(out / f"{res.name}.npz", **arrays)
        if out272 is not None:
            feats = fitted_clip_272(arrays["motion_135"], arrays["fitted_joints"], skeleton)
            atomic_save_npy(out272 / f"{res.name}.npy", feats)
    return failures


def _source_transl(sidecar: Path) -> np.ndarray | None:
    """A clip's ``source_motion135_transl`` from its sidecar (None: no sidecar or no array)."""
    if not sidecar.is_file():
        return None
    try:
        with np.load(sidecar, allow_pickle=False) as meta:
            if "source_motion135_transl" not in meta.files:
                return None
            source = np.asarray(meta["source_motion135_transl"], dtype=np.float32)
    except (ValueError, OSError, EOFError) as err:
        raise InvalidInputError(f"{sidecar.name}: unreadable sidecar ({err})") from err
    if source.ndim != 2 or source.shape[1] != 3 or len(source) < 1:
        raise InvalidInputError(
            f"{sidecar.name}: source_motion135_transl must be (T, 3), got {source.shape}"
        )
    return source


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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = list_motion_files(in_dir, suffixes=(".npz", ".npy"), ids_file=ids_file, limit=limit)
    rest = None
    if skeleton == "smpl" and model_dir is not None:
        rest = torch.from_numpy(smpl135.load_smpl_model(model_dir).rest_joints()[:22])

    def work(chunk: list[Path]) -> list[dict[str, str]]:
        path = chunk[0]
        try:
            m135, joints = _read_motion135(path)
            feats = motion135_file_272(path.name, m135, joints, skeleton, rest)
            atomic_save_npy(out / f"{path.stem}.npy", feats)
        except MoGenTSError as err:
            logger.warning("[fail] %s: %s", path.stem, err)
            return [{"sid": path.stem, "error": str(err)}]
        return []

    job = run_job(
        files,
        work,
        done=lambda f: _finished(out / f"{f.stem}.npy", None, 272),
        skip_existing=skip_existing,
        num_shards=num_shards,
        shard_index=shard_index,
        progress=progress,
        desc="272",
        unit="clip",
    )
    if skeleton == "canon272":
        joints_from = "canon272 forward kinematics"
    else:
        joints_from = "model" if rest is not None else "npz fitted_joints"
    summary = {
        "count": sum((out / f"{f.stem}.npy").is_file() for f in job.items),
        "failed": len(job.failures),
        "processed": len(job.todo) - len(job.failures),
        "skipped_existing": job.skipped,
        "failures": job.failures,
        "elapsed_s": round(job.seconds, 3),
        "shard": job.shard,
        "skeleton": skeleton,
        "joints_from": joints_from,
    }
    write_summary(out, CONVERT272_SUMMARY, summary, **job.shard, sort_keys=False)
    return summary


def _read_motion135(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``motion_135`` (float64) of an IK ``.npz`` or a bare ``.npy``, and the ``.npz``'s
    ``fitted_joints`` when it has them."""
    if path.suffix != ".npz":
        return _load(path).astype(np.float64), None
    try:
        with np.load(path, allow_pickle=False) as data:
            m135 = np.asarray(data["motion_135"], dtype=np.float64)
            joints = None
            if "fitted_joints" in data.files:
                joints = np.asarray(data["fitted_joints"], dtype=np.float64)
    except (ValueError, OSError, KeyError, EOFError) as err:
        raise InvalidInputError(f"{path.name}: unreadable motion_135 npz ({err})") from err
    return m135, joints


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
    write_summary(out_dir, IK_SUMMARY, summary, **summary["shard"], sort_keys=False)
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
    for path in sorted(folder.glob(f"{CONVERT272_SUMMARY}*.json")):
        try:
            loaded = json.loads(path.read_text())
        except (ValueError, OSError):
            continue
        return {k: loaded.get(k) for k in ("count", "failed", "skeleton", "joints_from")}
    return None
