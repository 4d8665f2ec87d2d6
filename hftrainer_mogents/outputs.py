"""Writing generated motions to disk: 263 features, joints, animation, BVH, and ``run.json``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.errors import InvalidInputError, MissingDependencyError
from hftrainer_mogents.utils.io import atomic_save_npy

__all__ = ["FORMATS", "parse_formats", "slugify", "save_motion", "read_prompt_file"]

logger = logging.getLogger(__name__)

FORMATS = ("npy", "joints", "gif", "mp4", "bvh")


def parse_formats(spec: str | Iterable[str]) -> list[str]:
    """``"npy,joints,gif"`` -> ``["npy", "joints", "gif"]`` (order kept, duplicates dropped).

    GIF/MP4 need matplotlib and MP4 an ``ffmpeg`` (the ``render`` extra has both): a format that
    cannot be written is refused here, before anything is generated.

    Raises:
        InvalidInputError: an unknown format.
        MissingDependencyError: an animation format without matplotlib, MP4 without ffmpeg.
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
    return out


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
) -> dict[str, Any]:
    """Write one motion in every requested format.

    Args:
        out_dir: the output folder.
        stem: file name without suffix.
        motion: (T, 263) float32 physical units.
        formats: from :func:`parse_formats`.
        title: caption for the animation.

    Returns:
        Format -> file name (and ``bvh_fk_error_cm`` when a BVH was written).
    """
    from hftrainer_mogents.motion.hml263 import recover_from_ric

    files: dict[str, Any] = {}
    joints = None
    if {"joints", "gif", "mp4", "bvh"} & set(formats):
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
    return files
