"""Writing generated motions to disk: 263 features, joints, animation, BVH, SMPL parameters, glTF
and ``run.json``."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hftrainer_mogents.errors import InvalidInputError, MissingDependencyError
from hftrainer_mogents.utils.io import atomic_save_npy

if TYPE_CHECKING:
    from hftrainer_mogents.motion.smpl135 import ClipResult, SMPLModel

__all__ = [
    "FORMATS",
    "RUN_FILE",
    "SMPL_FORMATS",
    "parse_formats",
    "load_export_model",
    "slugify",
    "save_motion",
    "read_prompt_file",
    "prepare_output_dir",
    "finished_items",
    "file_names",
    "run_header",
]

logger = logging.getLogger(__name__)

FORMATS = ("npy", "joints", "gif", "mp4", "bvh", "smpl", "glb")
# the formats that use the SMPL model (``smpl`` cannot do without it)
SMPL_FORMATS = ("smpl", "glb")
RUN_FILE = "run.json"
# a BVH holds one skeleton: on real motions its forward kinematics meets the joints to ~1e-3 cm,
# so centimetres of error mean the joints do not keep their bone lengths
BVH_FK_WARN_CM = 2.0
# the IK meets motions with SMPL's bones to 0.6-1.8 mm (mean); tens of mm mean other bones
SMPL_FIT_WARN_MM = 20.0


def parse_formats(
    spec: str | Iterable[str], *, model_dir: str | os.PathLike[str] | None = None
) -> list[str]:
    """``"npy,joints,gif"`` -> ``["npy", "joints", "gif"]`` (order kept, duplicates dropped).

    GIF/MP4 need matplotlib and MP4 an ``ffmpeg``, GLB pygltflib (the ``render`` extra has them
    all), SMPL a SMPL model (``model_dir``, the ``--model-dir`` flag): a format that cannot be
    written is refused here, before anything is generated.

    Args:
        spec: comma-separated names or a list of them.
        model_dir: the SMPL model folder (or file) for ``smpl`` (required) and ``glb`` (optional:
            without it the GLB holds the skeleton only).

    Raises:
        InvalidInputError: an unknown format, or ``smpl`` without ``model_dir``.
        MissingDependencyError: an animation format without matplotlib, MP4 without ffmpeg, GLB
            without pygltflib.
        ArtifactNotFoundError: no SMPL model under ``model_dir``.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in FORMATS:
            raise InvalidInputError(
                f"unknown output format {name!r}; choose from {', '.join(FORMATS)}"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise InvalidInputError(f"no output format given; choose from {', '.join(FORMATS)}")
    if {"gif", "mp4"} & set(out):
        try:
            import matplotlib  # noqa: F401
        except ImportError as err:
            raise MissingDependencyError(
                'GIF/MP4 animations need matplotlib: pip install "hftrainer-mogents[render]" '
                "(or drop gif/mp4 from --format)"
            ) from err
    if "mp4" in out:
        from hftrainer_mogents.motion import render

        if not render._ffmpeg_available():  # refused before any compute, not skipped after
            raise MissingDependencyError(f"--format mp4: {render.MP4_HOWTO}")
    if "smpl" in out and model_dir is None:
        raise InvalidInputError(
            "--format smpl needs the SMPL neutral model: pass --model-dir (a folder holding "
            "SMPL_NEUTRAL.npz or a chumpy-free SMPL_NEUTRAL.pkl, from https://smpl.is.tue.mpg.de), "
            "or drop smpl from --format"
        )
    if "glb" in out:
        from hftrainer_mogents.motion.gltf import require_pygltflib

        require_pygltflib()
    if model_dir is not None and set(SMPL_FORMATS) & set(out):
        from hftrainer_mogents.motion.smpl135 import find_smpl_model

        find_smpl_model(model_dir)
    return out


def load_export_model(
    formats: Sequence[str], model_dir: str | os.PathLike[str] | None
) -> SMPLModel | None:
    """The SMPL model the formats use (None when none uses it or no ``model_dir``), checked before
    anything is generated: a GLB body needs the model's skin weights and faces.

    Raises:
        ArtifactNotFoundError, ArtifactFormatError: no readable SMPL model under ``model_dir``.
        InvalidInputError: ``glb`` with a model that has no skin weights (``weights``) or faces
            (``f``).
    """
    if model_dir is None or not set(SMPL_FORMATS) & set(formats):
        return None
    from hftrainer_mogents.motion.smpl135 import resolve_model

    model = resolve_model(model_dir=model_dir)
    missing = [k for k in ("weights", "f") if k not in model.arrays]
    if "glb" in formats and missing:
        raise InvalidInputError(
            f"--format glb: the SMPL model {model.path} has no {', '.join(missing)} (a skinned mesh "
            "needs skin weights and faces); use the official model file, or drop --model-dir for a "
            "skeleton-only GLB"
        )
    return model


def slugify(text: str, max_len: int = 40) -> str:
    """A file-name-safe short form of a caption."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:max_len].rstrip("_") or "motion"


def read_prompt_file(path: str | Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with ``#`` are skipped.

    Raises:
        InvalidInputError: the file is missing or holds no prompt.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"prompt file {path} not found")
    prompts = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not prompts:
        raise InvalidInputError(f"prompt file {path} holds no prompt (one per line)")
    return prompts


def save_motion(
    out_dir: Path,
    stem: str,
    motion: np.ndarray,
    formats: Sequence[str],
    *,
    title: str = "",
    fps: int = 20,
    smpl_model: SMPLModel | None = None,
    smpl_fit: ClipResult | None = None,
) -> dict[str, Any]:
    """Write one motion in every requested format.

    Args:
        out_dir: the output folder.
        stem: file name without suffix.
        motion: (T, 263) float32 physical units.
        formats: from :func:`parse_formats`.
        title: caption for the animation.
        fps: the motion's frame rate.
        smpl_model: the SMPL model (:func:`load_export_model`), needed by ``smpl``; with it a
            ``glb`` holds the SMPL body, without it the 22-joint skeleton.
        smpl_fit: the motion's SMPL fit when already made (a batched
            :func:`~hftrainer_mogents.motion.export.fit_smpl_params` over a run); else it is
            fitted here when ``smpl``/``glb`` use the model.

    Returns:
        Format -> file name (and ``bvh_fk_error_cm`` when a BVH was written, with a
        ``bvh_fk_warning`` above :data:`BVH_FK_WARN_CM`; ``smpl_fit_error_mm`` when SMPL was
        fitted; ``glb_skinned``, whether the GLB holds the SMPL body).

    Raises:
        InvalidInputError: ``smpl`` without ``smpl_model``.
    """
    from hftrainer_mogents.motion.hml263 import recover_from_ric

    files: dict[str, Any] = {}
    joints = None
    if "smpl" in formats and smpl_model is None:
        raise InvalidInputError("--format smpl needs the SMPL model: pass --model-dir")
    if smpl_model is not None and smpl_fit is None and set(SMPL_FORMATS) & set(formats):
        from hftrainer_mogents.motion.export import fit_smpl_params

        smpl_fit = fit_smpl_params([motion], model=smpl_model, fps=fps)[0]
    if {"joints", "gif", "mp4", "bvh", "glb"} & set(formats):
        joints = recover_from_ric(np.asarray(motion, dtype=np.float32))  # (T, 22, 3)
    if "npy" in formats:
        files["npy"] = atomic_save_npy(out_dir / f"{stem}.npy", motion).name
    if "joints" in formats:
        files["joints"] = atomic_save_npy(out_dir / f"{stem}_joints.npy", joints).name
    for kind in ("gif", "mp4"):
        if kind in formats:
            from hftrainer_mogents.motion.render import render_animation

            path = out_dir / f"{stem}.{kind}"
            render_animation(joints, path, title=title, fps=fps)
            files[kind] = path.name
    if "bvh" in formats:
        from hftrainer_mogents.motion.bvh import (
            JOINT_NAMES,
            bvh_forward_kinematics,
            read_bvh,
            write_bvh,
        )

        path = out_dir / f"{stem}.bvh"
        write_bvh(path, joints, fps=fps)
        files["bvh"] = path.name
        # what Blender will show: forward kinematics of the file as written (metres -> cm)
        fk = bvh_forward_kinematics(read_bvh(path), names=JOINT_NAMES)
        error = np.linalg.norm(fk - joints, axis=-1) * 100.0
        files["bvh_fk_error_cm"] = {
            "mean": round(float(error.mean()), 4),
            "max": round(float(error.max()), 4),
        }
        if error.max() > BVH_FK_WARN_CM:
            warning = (
                f"{path.name}: the BVH skeleton misses the joints by up to {error.max():.1f} cm "
                f"(mean {error.mean():.1f} cm): the motion's bone lengths change over time, as "
                "an untrained or damaged model's do; check it before use"
            )
            logger.warning(warning)
            files["bvh_fk_warning"] = warning
    if "smpl" in formats and smpl_fit is not None:
        from hftrainer_mogents.motion.export import save_smpl_npz

        path = out_dir / f"{stem}_smpl.npz"
        files["smpl_fit_error_mm"] = error_mm = save_smpl_npz(path, smpl_fit)
        files["smpl"] = path.name
        if error_mm["mean"] > SMPL_FIT_WARN_MM:
            logger.warning(
                "%s: SMPL's bones miss the motion's joints by %.0f mm on average (max %.0f mm): "
                "the motion does not keep a human skeleton, as an untrained or damaged model's "
                "motions do; check it before use",
                path.name,
                error_mm["mean"],
                error_mm["max"],
            )
    if "glb" in formats:
        from hftrainer_mogents.motion import gltf

        extras = {"title": title, "source": "hftrainer-mogents generate"}
        if smpl_model is not None and smpl_fit is not None:
            extras["fit_mpjpe_mm_mean"] = round(float(smpl_fit.fit_mpjpe_mm.mean()), 4)
            doc = gltf.smpl_gltf(
                smpl_model,
                smpl_fit.global_orient,
                smpl_fit.body_pose,
                smpl_fit.transl,
                fps=fps,
                extras=extras,
            )
        else:
            doc = gltf.skeleton_gltf(joints, fps=fps, extras=extras)
        path = out_dir / f"{stem}.glb"
        gltf.save_glb(path, doc)
        files["glb"] = path.name
        files["glb_skinned"] = smpl_model is not None
    return files


def prepare_output_dir(
    out_dir: str | Path, *, overwrite: bool = False, skip_existing: bool = False
) -> dict[str, Any] | None:
    """Make ``out_dir`` ready before anything is computed: created, writable, and not holding an
    earlier run unless asked.

    A folder that holds files is refused, unless ``overwrite`` (the files the earlier
    ``run.json`` lists are removed first) or ``skip_existing`` (the earlier run is resumed: its
    ``run.json`` is returned).

    Returns:
        The earlier ``run.json`` with ``skip_existing``, else None.

    Raises:
        InvalidInputError: not a folder, not writable, an earlier run without a flag saying what
            to do with it, both flags, or nothing to resume.
    """
    out = Path(out_dir)
    if overwrite and skip_existing:
        raise InvalidInputError("give --overwrite or --skip-existing, not both")
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a folder")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    previous = _read_run(out / RUN_FILE) if (out / RUN_FILE).is_file() else None
    if held and not (overwrite or skip_existing):
        raise InvalidInputError(
            f"--out {out} already holds {len(held)} file(s)"
            + (" of an earlier run" if previous is not None else "")
            + ": pass --overwrite to replace the files its run.json lists, --skip-existing to keep "
            "the prompts already done, or choose another --out"
        )
    if skip_existing and held and previous is None:
        raise InvalidInputError(
            f"--skip-existing: {out} holds files but no {RUN_FILE} to resume from; use --overwrite "
            "or another --out"
        )
    if overwrite and previous is not None:
        for name in _listed_files(previous) + [RUN_FILE]:
            (out / name).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as err:
        raise InvalidInputError(
            f"cannot write to --out {out}: {err.strerror or err}; choose a writable folder"
        ) from err
    return previous if skip_existing else None


def finished_items(
    previous: dict[str, Any] | None, prompts: Sequence[str], out_dir: str | Path
) -> dict[int, dict[str, Any]]:
    """The items of an earlier run that need no new generation: same index, same prompt, and
    every file it lists still there. Index -> its ``run.json`` item."""
    if previous is None:
        return {}
    out = Path(out_dir)
    done = {}
    for item in previous.get("items", []):
        i = item.get("index")
        if not isinstance(i, int) or not 0 <= i < len(prompts) or item.get("text") != prompts[i]:
            continue
        names = _item_files(item)
        if names and all((out / name).is_file() for name in names):
            done[i] = item
    return done


def _listed_files(run: dict[str, Any]) -> list[str]:
    names = []
    for item in run.get("items", []):
        # only plain names inside the folder: a run.json cannot point the removal elsewhere
        names += [name for name in _item_files(item) if Path(name).name == name]
    return names


def run_header(
    model: str, revision: str | None, device: str | None, dtype: str, formats: Sequence[str]
) -> dict[str, Any]:
    """The first keys of every ``run.json``: when, which package, which model and how it ran."""
    from datetime import datetime, timezone

    from hftrainer_mogents._version import __version__

    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hftrainer_mogents": __version__,
        "model": model,
        "revision": revision,
        "device": device,
        "dtype": dtype,
        "formats": list(formats),
    }


def file_names(files: dict[str, Any]) -> list[str]:
    """The file names in a :func:`save_motion` record: the values of its format keys only (other
    entries, such as ``bvh_fk_warning``, are notes, not files)."""
    return [files[k] for k in FORMATS if isinstance(files.get(k), str)]


def _item_files(item: dict[str, Any]) -> list[str]:
    return file_names(item.get("files", {}))


def _read_run(path: Path) -> dict[str, Any]:
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInputError(f"{path} is not a readable run.json ({err})") from err
    if not isinstance(run, dict):
        raise InvalidInputError(f"{path} is not a run.json (not a JSON object)")
    return run
