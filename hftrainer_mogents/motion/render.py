"""Stick-figure pictures of 22-joint HumanML3D motions: animated GIF/MP4 and still PNG.

Needs matplotlib (the ``render`` extra: ``pip install "hftrainer-mogents[render]"``), imported
only when a function here is called. Figures are drawn on matplotlib's Agg canvas directly
(no pyplot, no global backend switch), so this works headless and leaves the caller's
matplotlib state alone.

What a picture shows:

- the skeleton as its five kinematic chains, coloured by limb (:data:`LIMB_COLORS`: the spine
  dark grey, the left arm and leg blue, the right arm and leg red/orange), nearer limbs on top;
- a ground disc around the root at the clip's lowest point, with a 0.5 m grid fixed in the
  world, so the grid slides under the feet as the body travels;
- the root's path so far, drawn on the ground;
- the caption as the title (wrapped), and the time in the corner.

The camera follows the root over the ground (x and z) and looks down at it from a fixed angle
(``elev`` above the horizon, ``azim`` around +y from the +z axis, towards which a HumanML3D
clip faces at its first frame), with an orthographic projection. y is up on screen, and the
axis limits are fixed for the whole clip.

Frames are drawn by updating the artists' data, not by rebuilding the figure, and handed to a
matplotlib movie writer: for GIFs a Pillow writer that quantises every frame to one shared
palette (several times faster than matplotlib's ``PillowWriter``, which builds a palette per
frame), for MP4s matplotlib's ffmpeg writer (the system's ``ffmpeg``, else the one of
``imageio-ffmpeg``). Both write a
temporary file that is renamed into place.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.errors import InvalidInputError, MissingDependencyError
from hftrainer_mogents.motion.hml263 import FPS, KINEMATIC_CHAIN, NUM_JOINTS
from hftrainer_mogents.utils.io import atomic_path

__all__ = [
    "LIMB_COLORS",
    "LIMBS",
    "ffmpeg_available",
    "render_animation",
    "render_frame",
]

# HumanML3D's chains (KINEMATIC_CHAIN) by limb; the arms start at spine3
LIMBS: dict[str, list[int]] = {
    "right_leg": KINEMATIC_CHAIN[0],
    "left_leg": KINEMATIC_CHAIN[1],
    "spine": KINEMATIC_CHAIN[2],
    "right_arm": KINEMATIC_CHAIN[3],
    "left_arm": KINEMATIC_CHAIN[4],
}
LIMB_COLORS: dict[str, str] = {
    "spine": "#3a3a3a",
    "left_arm": "#1f5fbf",
    "left_leg": "#5aa9e6",
    "right_arm": "#c0392b",
    "right_leg": "#f0883e",
}
_LIMB_WIDTH = {"spine": 3.0}
_GRID_STEP = 0.5  # metres
_GROUND_COLOR = "#e9e9e4"
_GRID_COLOR = "#c9c9c2"
_TRAJECTORY_COLOR = "#6a3d9a"
_VIDEO_SUFFIXES = (".gif", ".mp4")
_INSTALL_HINT = 'pip install "hftrainer-mogents[render]"'


def _import_matplotlib() -> Any:
    """matplotlib's pieces we use, or :class:`MissingDependencyError` naming the extra."""
    try:
        import matplotlib
        import matplotlib.animation
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Polygon
    except ImportError as err:
        raise MissingDependencyError(
            f"rendering motions needs matplotlib, which is not installed: {_INSTALL_HINT}"
        ) from err
    return matplotlib, Figure, FigureCanvasAgg, Polygon


def _gif_writer(matplotlib: Any, fps: float) -> Any:
    """A matplotlib movie writer for GIFs through Pillow, with one palette for the whole clip.

    matplotlib's own ``PillowWriter`` lets Pillow build an adaptive palette for every frame,
    which takes longer than drawing the frames; the frames here share a handful of flat colours,
    so one palette, built from a montage of a few frames, serves them all (and the file is
    smaller). Frames are kept in memory until :meth:`finish`, as ``PillowWriter`` does.
    """
    from PIL import Image

    class _SharedPaletteGifWriter(matplotlib.animation.AbstractMovieWriter):
        def setup(self, fig: Any, outfile: Any, dpi: float | None = None) -> None:
            super().setup(fig, outfile, dpi=dpi)
            self.frames: list[Any] = []

        def grab_frame(self, **savefig_kwargs: Any) -> None:
            buf = io.BytesIO()
            self.fig.savefig(buf, **{**savefig_kwargs, "format": "rgba", "dpi": self.dpi})
            size = tuple(int(v) for v in self.frame_size)
            rgba = Image.frombuffer("RGBA", size, buf.getbuffer(), "raw", "RGBA", 0, 1)
            self.frames.append(rgba.convert("RGB"))

        def finish(self) -> None:
            if not self.frames:
                return
            width, height = self.frames[0].size
            picks = sorted({round(k) for k in np.linspace(0, len(self.frames) - 1, 8)})
            montage = Image.new("RGB", (width * len(picks), height))
            for slot, k in enumerate(picks):
                montage.paste(self.frames[k], (slot * width, 0))
            palette = montage.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
            frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in self.frames]
            self.frames = []
            frames[0].save(
                self.outfile,
                format="GIF",
                save_all=True,
                append_images=frames[1:],
                duration=round(1000 / self.fps),
                loop=0,
            )

    return _SharedPaletteGifWriter(fps=fps)


MP4_HOWTO = (
    "writing .mp4 needs an ffmpeg executable and none was found (on PATH, in matplotlib's "
    "rcParams['animation.ffmpeg_path'], or from the imageio-ffmpeg package): "
    'pip install "hftrainer-mogents[render]" (it ships one), or install ffmpeg, or write a .gif '
    "instead"
)


def ffmpeg_executable() -> str | None:
    """The ``ffmpeg`` that MP4s are written with: the system's (on PATH, or matplotlib's
    ``rcParams['animation.ffmpeg_path']``), else the one the ``imageio-ffmpeg`` wheel ships (the
    ``render`` extra installs it); ``None`` when there is neither."""
    import shutil

    import matplotlib

    configured = shutil.which(str(matplotlib.rcParams["animation.ffmpeg_path"]))
    if configured is not None:
        return configured
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # a wheel without a binary for this platform
        return None


def ffmpeg_available() -> bool:
    """Whether an ``ffmpeg`` exists (MP4 can be written); points matplotlib's writer at it."""
    import matplotlib

    exe = ffmpeg_executable()
    if exe is None:
        return False
    matplotlib.rcParams["animation.ffmpeg_path"] = exe
    return True


_ffmpeg_available = ffmpeg_available  # the old private name, kept for callers of 0.1


def _check_joints(joints: Any) -> np.ndarray:
    """(T, 22, 3) numpy/torch -> float64 numpy, or :class:`InvalidInputError`."""
    if hasattr(joints, "detach"):  # a torch tensor, without importing torch here
        joints = joints.detach().cpu().numpy()
    if not isinstance(joints, np.ndarray):
        raise InvalidInputError(
            f"expected joint positions as a numpy array or torch tensor of shape "
            f"(T, {NUM_JOINTS}, 3), got {type(joints).__name__}"
        )
    shape = tuple(joints.shape)
    if len(shape) != 3 or shape[1:] != (NUM_JOINTS, 3) or shape[0] < 1:
        hint = ""
        if len(shape) == 2 and shape[-1] == 263:
            hint = " (these look like HumanML3D features: convert them with recover_from_ric)"
        raise InvalidInputError(
            f"expected joint positions of shape (T, {NUM_JOINTS}, 3) with T >= 1, got {shape}{hint}"
        )
    joints = joints.astype(np.float64)
    if not np.isfinite(joints).all():
        raise InvalidInputError("the joint positions contain NaN or infinite values")
    return joints


def _check_render_settings(
    fps: float, figsize: tuple[float, float], dpi: float, radius: float | None, elev: float
) -> None:
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise InvalidInputError(f"fps must be a positive number, got {fps!r}")
    if len(figsize) != 2 or not all(float(v) > 0 for v in figsize):
        raise InvalidInputError(f"figsize must be (width, height) in inches > 0, got {figsize!r}")
    if not dpi > 0:
        raise InvalidInputError(f"dpi must be positive, got {dpi!r}")
    if radius is not None and not radius > 0:
        raise InvalidInputError(f"radius must be positive (metres) or None, got {radius!r}")
    if not -90 < elev < 90:
        raise InvalidInputError(
            f"elev must be between -90 and 90 degrees (exclusive), got {elev!r}"
        )


class _Scene:
    """One figure and its artists; :meth:`show` moves them to frame ``t``."""

    def __init__(
        self,
        joints: np.ndarray,
        *,
        title: str | None,
        fps: float,
        radius: float | None,
        figsize: tuple[float, float],
        dpi: float,
        elev: float,
        azim: float,
    ) -> None:
        _, figure_cls, canvas_cls, polygon_cls = _import_matplotlib()
        self.joints = joints
        self.fps = fps
        self.floor = float(joints[..., 1].min())
        self.root = joints[:, 0].copy()  # (T, 3)

        # 1. camera: unit vectors of the screen's right and up, and towards the viewer
        el, az = math.radians(elev), math.radians(azim)
        toward = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
        right = np.cross(-toward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, -toward)
        self.basis = np.stack((right, up, toward), axis=1)  # (3, 3): world -> (u, v, depth)

        # 2. fixed limits for the whole clip: every pose relative to the root and the ground disc
        # of `radius` around the root, then widened to the axes' shape
        rel = self._project(joints - self._anchor(np.arange(len(joints)))[:, None])  # (T, 22, 3)
        if radius is None:
            radius = max(1.0, float(np.abs(rel[..., 0]).max()) + 0.2)
        self.radius = radius
        half_u = max(radius, float(np.abs(rel[..., 0]).max())) + 0.05
        v_lo = min(float(rel[..., 1].min()), -radius * math.sin(el)) - 0.05
        v_hi = max(float(rel[..., 1].max()), radius * math.sin(el)) + 0.1

        # 3. figure
        self.fig = figure_cls(figsize=figsize, dpi=dpi)
        canvas_cls(self.fig)
        top = 1.0
        if title:
            # a 9 pt character is about 5.6 pt wide on average and a line 11 pt (0.15 in) high
            width_chars = max(16, int(figsize[0] * 72 / 5.6))
            wrapped = textwrap.fill(" ".join(str(title).split()), width=width_chars)
            self.fig.suptitle(wrapped, fontsize=9, y=0.99, va="top")
            top = 1.0 - (0.1 + 0.15 * (wrapped.count("\n") + 1)) / figsize[1]
        top = max(top, 0.3)
        ax = self.fig.add_axes((0.0, 0.0, 1.0, top))
        ax.set_axis_off()
        aspect = figsize[1] * top / figsize[0]  # axes height / width
        width, height = 2 * half_u, v_hi - v_lo
        if height < width * aspect:
            v_lo -= (width * aspect - height) / 2
            v_hi = v_lo + width * aspect
        else:
            half_u = height / aspect / 2
        ax.set_xlim(-half_u, half_u)
        ax.set_ylim(v_lo, v_hi)
        ax.set_aspect("equal", adjustable="box")
        self.ax = ax

        # 4. artists: ground (static in the camera's frame), grid, path, limbs, clock
        angles = np.linspace(0, 2 * np.pi, 97)
        disc = radius * np.stack((np.cos(angles), np.zeros_like(angles), np.sin(angles)), -1)
        disc = self._project(disc)[:, :2]
        self.ground = polygon_cls(disc, closed=True, facecolor=_GROUND_COLOR, lw=0, zorder=0)
        ax.add_patch(self.ground)
        (self.grid,) = ax.plot([], [], color=_GRID_COLOR, lw=0.8, zorder=0.5)
        (self.path,) = ax.plot([], [], color=_TRAJECTORY_COLOR, lw=1.5, zorder=1)
        for artist in (self.grid, self.path):
            artist.set_clip_path(self.ground)
        self.limbs = {}
        for name, chain in LIMBS.items():
            (line,) = ax.plot(
                [],
                [],
                color=LIMB_COLORS[name],
                lw=_LIMB_WIDTH.get(name, 2.2),
                marker="o",
                ms=2.5,
                solid_capstyle="round",
                zorder=2,
            )
            self.limbs[name] = (line, chain)
        self.clock = ax.text(0.02, 0.02, "", transform=ax.transAxes, fontsize=7, color="#555555")

    def _anchor(self, t: np.ndarray) -> np.ndarray:
        """(n,) frames -> (n, 3) the point the camera follows: the root over the floor."""
        return np.stack((self.root[t, 0], np.full(len(t), self.floor), self.root[t, 2]), axis=-1)

    def _project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) camera-relative points -> (..., 3) screen u, v and depth."""
        return points @ self.basis

    def show(self, t: int) -> None:
        anchor = self._anchor(np.array([t]))[0]
        # grid: world-fixed lines along x and z, inside the ground square around the root
        r = self.radius
        segments = []
        for axis in (0, 2):
            other = 2 - axis
            first = math.floor((anchor[axis] - r) / _GRID_STEP)
            last = math.ceil((anchor[axis] + r) / _GRID_STEP)
            for k in range(first, last + 1):
                a = np.zeros((2, 3))
                a[:, axis] = k * _GRID_STEP - anchor[axis]
                a[:, other] = (-r, r)
                segments.append(a)
                segments.append(np.full((1, 3), np.nan))
        grid = self._project(np.concatenate(segments))
        self.grid.set_data(grid[:, 0], grid[:, 1])

        # the root's path so far, on the floor
        past = self.root[: t + 1] - anchor
        past[:, 1] = 0.0
        path = self._project(past)
        self.path.set_data(path[:, 0], path[:, 1])

        # limbs, nearer ones drawn on top
        pose = self._project(self.joints[t] - anchor)  # (22, 3)
        depths = {name: pose[chain, 2].mean() for name, (_, chain) in self.limbs.items()}
        for rank, name in enumerate(sorted(depths, key=depths.__getitem__)):
            line, chain = self.limbs[name]
            line.set_data(pose[chain, 0], pose[chain, 1])
            line.set_zorder(2 + rank)
        self.clock.set_text(f"{t / self.fps:5.2f} s  ({t + 1}/{len(self.joints)})")


def render_animation(
    joints: Any,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    fps: float = FPS,
    radius: float | None = None,
    figsize: tuple[float, float] = (4.0, 4.0),
    dpi: float = 100,
    elev: float = 20.0,
    azim: float = 35.0,
) -> Path:
    """Write a stick-figure animation of a motion, one frame per pose.

    The format follows the suffix: ``.gif`` (Pillow, which matplotlib depends on) or ``.mp4``
    (needs an ``ffmpeg`` executable). The file is written through a temporary name in the same
    folder. GIF frames are held in memory until the end (``3 * width * height`` bytes each: about
    0.5 MB at the default size).

    Args:
        joints: (T, 22, 3) joint positions in metres, y up (e.g. ``recover_from_ric(features)``);
            numpy array or torch tensor.
        path: the ``.gif`` or ``.mp4`` file to write; its folder is created.
        title: the caption, shown wrapped above the figure.
        fps: frames per second of the file (HumanML3D: 20).
        radius: radius in metres of the ground disc around the root (the view follows the root
            and shows at least this much to either side); default: the clip's farthest joint
            from the root, plus 0.2 m, at least 1 m.
        figsize: (width, height) in inches.
        dpi: pixels per inch (the frame is ``figsize * dpi`` pixels).
        elev: camera elevation above the horizon, degrees.
        azim: camera angle around +y from the +z axis, degrees.

    Returns:
        ``Path(path)``.

    Raises:
        InvalidInputError: a bad shape, suffix or knob.
        MissingDependencyError: matplotlib is missing, or ``.mp4`` without ffmpeg.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _VIDEO_SUFFIXES:
        raise InvalidInputError(
            f"cannot infer the animation format from {path.name!r}: use a {' or '.join(_VIDEO_SUFFIXES)} "
            "file name (render_frame writes a still .png)"
        )
    matplotlib, *_ = _import_matplotlib()
    _check_render_settings(fps, figsize, dpi, radius, elev)
    joints = _check_joints(joints)
    if suffix == ".mp4" and not _ffmpeg_available():
        raise MissingDependencyError(MP4_HOWTO)
    scene = _Scene(
        joints, title=title, fps=fps, radius=radius, figsize=figsize, dpi=dpi, elev=elev, azim=azim
    )
    if suffix == ".gif":
        writer = _gif_writer(matplotlib, fps)
    else:
        writer = matplotlib.animation.FFMpegWriter(fps=fps, codec="h264")
    with atomic_path(path) as tmp, matplotlib.rc_context({"savefig.bbox": None}):
        writer.setup(scene.fig, str(tmp), dpi=dpi)
        try:
            for t in range(len(joints)):
                scene.show(t)
                writer.grab_frame()
        except BaseException:
            # stop the ffmpeg process / drop the frames; the temporary file is removed
            with contextlib.suppress(Exception):
                writer.finish()
            raise
        writer.finish()
    return path


def render_frame(
    joints: Any,
    t: int,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    fps: float = FPS,
    radius: float | None = None,
    figsize: tuple[float, float] = (4.0, 4.0),
    dpi: float = 100,
    elev: float = 20.0,
    azim: float = 35.0,
) -> Path:
    """Write one frame of the stick-figure animation as a PNG (same look and limits).

    Args:
        joints: (T, 22, 3) joint positions in metres, y up; numpy array or torch tensor.
        t: the frame to draw, ``0 <= t < T``.
        path: the ``.png`` file to write; its folder is created.
        title, fps, radius, figsize, dpi, elev, azim: as in :func:`render_animation` (``fps``
            only sets the time shown in the corner).

    Returns:
        ``Path(path)``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InvalidInputError(
            f"render_frame writes PNG images: use a .png file name, got {path.name!r}"
        )
    _import_matplotlib()
    _check_render_settings(fps, figsize, dpi, radius, elev)
    joints = _check_joints(joints)
    if not (isinstance(t, int | np.integer) and 0 <= t < len(joints)):
        raise InvalidInputError(f"frame t must be an integer in [0, {len(joints)}), got {t!r}")
    scene = _Scene(
        joints, title=title, fps=fps, radius=radius, figsize=figsize, dpi=dpi, elev=elev, azim=azim
    )
    scene.show(int(t))
    with atomic_path(path) as tmp:
        scene.fig.savefig(tmp, format="png", dpi=dpi)
    return path
