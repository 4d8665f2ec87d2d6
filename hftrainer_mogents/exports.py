"""Writing one generated motion to disk: one writer per format in :data:`WRITERS` (``npy``,
``joints``, ``gif``, ``mp4``, ``bvh``, ``smpl``, ``glb``), and :func:`save_motion`, which runs
the requested ones. The run around them (folder, ``run.json``, resume) is
:mod:`hftrainer_mogents.jobs.generate`."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hftrainer_mogents.errors import InvalidInputError, MissingDependencyError
from hftrainer_mogents.utils.io import atomic_save_npy

if TYPE_CHECKING:
    from hftrainer_mogents.motion.smpl135 import ClipResult, SMPLModel

__all__ = [
    "FORMATS",
    "SMPL_FORMATS",
    "WRITERS",
    "MotionToWrite",
    "Writer",
    "parse_formats",
    "load_export_model",
    "save_motion",
    "file_names",
    "export_npy",
    "export_joints",
    "export_animation",
    "export_bvh",
    "export_smpl",
    "export_glb",
]

logger = logging.getLogger(__name__)

FORMATS = ("npy", "joints", "gif", "mp4", "bvh", "smpl", "glb")
# the formats that use the SMPL model (``smpl`` cannot do without it)
SMPL_FORMATS = ("smpl", "glb")
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

        if not render.ffmpeg_available():  # refused before any compute, not skipped after
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


@dataclass
class MotionToWrite:
    """One motion and what its writers share.

    Attributes:
        motion: (T, 263) float32 physical units.
        title: caption for the animation and the GLB.
        fps: the motion's frame rate.
        smpl_model: the SMPL model (``smpl``; the body of a ``glb``), or None.
        smpl_fit: the motion's SMPL fit, or None.
    """

    motion: np.ndarray
    title: str = ""
    fps: int = 20
    smpl_model: SMPLModel | None = None
    smpl_fit: ClipResult | None = None

    @functools.cached_property
    def joints(self) -> np.ndarray:
        """(T, 22, 3) joint positions, recovered once for every writer."""
        from hftrainer_mogents.motion.hml263 import recover_from_ric

        return recover_from_ric(np.asarray(self.motion, dtype=np.float32))


def export_npy(path: Path, item: MotionToWrite) -> dict[str, Any]:
    """The (T, 263) features as ``.npy``."""
    atomic_save_npy(path, item.motion)
    return {}


def export_joints(path: Path, item: MotionToWrite) -> dict[str, Any]:
    """The (T, 22, 3) joints as ``.npy``."""
    atomic_save_npy(path, item.joints)
    return {}


def export_animation(path: Path, item: MotionToWrite) -> dict[str, Any]:
    """A stick-figure animation, GIF or MP4 by the suffix (matplotlib; MP4 with ffmpeg)."""
    from hftrainer_mogents.motion.render import render_animation

    render_animation(item.joints, path, title=item.title, fps=item.fps)
    return {}


def export_bvh(path: Path, item: MotionToWrite) -> dict[str, Any]:
    """A BVH file, checked: the forward kinematics of the text as written (what Blender will
    show) is compared with the joints, and the error recorded (``bvh_fk_error_cm``; a
    ``bvh_fk_warning`` above :data:`BVH_FK_WARN_CM`)."""
    from hftrainer_mogents.motion.bvh import (
        JOINT_NAMES,
        bvh_forward_kinematics,
        format_bvh,
        joints_to_bvh,
        parse_bvh,
    )
    from hftrainer_mogents.utils.io import atomic_write_text

    text = format_bvh(joints_to_bvh(item.joints, fps=item.fps))
    fk = bvh_forward_kinematics(parse_bvh(text, source=str(path)), names=JOINT_NAMES)
    atomic_write_text(path, text)
    error = np.linalg.norm(fk - item.joints, axis=-1) * 100.0  # metres -> cm
    notes: dict[str, Any] = {
        "bvh_fk_error_cm": {
            "mean": round(float(error.mean()), 4),
            "max": round(float(error.max()), 4),
        }
    }
    if error.max() > BVH_FK_WARN_CM:
        warning = (
            f"{path.name}: the BVH skeleton misses the joints by up to {error.max():.1f} cm "
            f"(mean {error.mean():.1f} cm): the motion's bone lengths change over time, as "
            "an untrained or damaged model's do; check it before use"
        )
        logger.warning(warning)
        notes["bvh_fk_warning"] = warning
    return notes


def export_smpl(path: Path, item: MotionToWrite) -> dict[str, Any]:
    """The SMPL fit as ``.npz`` (``save_smpl_npz``) and its error (``smpl_fit_error_mm``)."""
    from hftrainer_mogents.motion.export import save_smpl_npz

    error_mm = save_smpl_npz(path, item.smpl_fit)
    if error_mm["mean"] > SMPL_FIT_WARN_MM:
        logger.warning(
            "%s: SMPL's bones miss the motion's joints by %.0f mm on average (max %.0f mm): "
            "the motion does not keep a human skeleton, as an untrained or damaged model's "
            "motions do; check it before use",
            path.name,
            error_mm["mean"],
            error_mm["max"],
        )
    return {"smpl_fit_error_mm": error_mm}


def export_glb(path: Path, item: MotionToWrite) -> dict[str, Any]:
    """A glTF binary: the skinned SMPL body with a model and a fit, else the 22-joint skeleton
    (``glb_skinned`` says which)."""
    from hftrainer_mogents.motion import gltf

    extras = {"title": item.title, "source": "hftrainer-mogents generate"}
    fit = item.smpl_fit
    if item.smpl_model is not None and fit is not None:
        extras["fit_mpjpe_mm_mean"] = round(float(fit.fit_mpjpe_mm.mean()), 4)
        doc = gltf.smpl_gltf(
            item.smpl_model,
            fit.global_orient,
            fit.body_pose,
            fit.transl,
            fps=item.fps,
            extras=extras,
        )
    else:
        doc = gltf.skeleton_gltf(item.joints, fps=item.fps, extras=extras)
    gltf.save_glb(path, doc)
    return {"glb_skinned": item.smpl_model is not None}


@dataclass(frozen=True)
class Writer:
    """One format: the file name's ending after the stem, and the function writing it (it
    returns the notes the files record keeps beside the name)."""

    suffix: str
    write: Callable[[Path, MotionToWrite], dict[str, Any]]


# in FORMATS order, the order the files are written in
WRITERS: dict[str, Writer] = {
    "npy": Writer(".npy", export_npy),
    "joints": Writer("_joints.npy", export_joints),
    "gif": Writer(".gif", export_animation),
    "mp4": Writer(".mp4", export_animation),
    "bvh": Writer(".bvh", export_bvh),
    "smpl": Writer("_smpl.npz", export_smpl),
    "glb": Writer(".glb", export_glb),
}


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
    """Write one motion in every requested format (the :data:`WRITERS` of ``formats``).

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
    if "smpl" in formats and smpl_model is None:
        raise InvalidInputError("--format smpl needs the SMPL model: pass --model-dir")
    if smpl_model is not None and smpl_fit is None and set(SMPL_FORMATS) & set(formats):
        from hftrainer_mogents.motion.export import fit_smpl_params

        smpl_fit = fit_smpl_params([motion], model=smpl_model, fps=fps)[0]
    item = MotionToWrite(motion, title, fps, smpl_model, smpl_fit)
    files: dict[str, Any] = {}
    for name, writer in WRITERS.items():
        if name in formats:
            path = Path(out_dir) / f"{stem}{writer.suffix}"
            files |= {name: path.name, **writer.write(path, item)}
    return files


def file_names(files: dict[str, Any]) -> list[str]:
    """The file names in a :func:`save_motion` record: the values of its format keys only (other
    entries, such as ``bvh_fk_warning``, are notes, not files)."""
    return [files[k] for k in FORMATS if isinstance(files.get(k), str)]
