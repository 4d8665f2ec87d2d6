"""motion.render: stick-figure GIF/MP4/PNG (small frames, low dpi, so the tests stay fast)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hftrainer_mogents.errors import InvalidInputError, MissingDependencyError
from hftrainer_mogents.motion import render
from hftrainer_mogents.motion.bvh import REST_DIRECTIONS
from hftrainer_mogents.motion.hml263 import PARENTS

Image = pytest.importorskip("PIL.Image")

# bone lengths (metres) of the bone ending at each joint, roughly a 1.7 m adult
_LENGTHS = [0, 0.1, 0.1, 0.12, 0.4, 0.4, 0.13, 0.4, 0.4, 0.06, 0.12, 0.12]
_LENGTHS += [0.2, 0.1, 0.1, 0.1, 0.12, 0.12, 0.26, 0.26, 0.25, 0.25]
SMALL = {"figsize": (2.0, 2.0), "dpi": 40}


def walker(num_frames: int) -> np.ndarray:
    """A figure standing on y = 0, sliding along +z and swinging its forearms: (T, 22, 3)."""
    pose = np.zeros((22, 3))
    for j in range(1, 22):
        pose[j] = pose[PARENTS[j]] + _LENGTHS[j] * np.asarray(REST_DIRECTIONS[j], dtype=float)
    pose[:, 1] -= pose[:, 1].min()
    clip = np.repeat(pose[None], num_frames, axis=0)
    t = np.arange(num_frames)
    clip[:, :, 2] += 0.05 * t[:, None]
    swing = 0.2 * np.sin(t / 2.0)
    clip[:, [20, 21], 2] += swing[:, None]  # wrists
    return clip


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[k : k + 2], 16) for k in (1, 3, 5)], dtype=float)


def _mask(image, hex_color: str, tol: float = 20.0) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    return np.abs(pixels - _rgb(hex_color)).max(-1) < tol


def test_gif_has_one_frame_per_pose(tmp_path: Path) -> None:
    path = render.render_animation(walker(7), tmp_path / "clip.gif", title="walks", **SMALL)
    assert path == tmp_path / "clip.gif"
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 7
        assert gif.size == (80, 80)
        assert gif.info["duration"] == 50  # 20 fps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif"]


def test_gif_from_a_torch_tensor_at_another_fps(tmp_path: Path) -> None:
    joints = torch.from_numpy(walker(4)).float()
    render.render_animation(joints, tmp_path / "a.gif", fps=10, **SMALL)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 4
        assert gif.info["duration"] == 100


def test_png_is_upright_and_coloured_by_limb(tmp_path: Path) -> None:
    path = render.render_frame(walker(5), 2, tmp_path / "f.png", figsize=(3.0, 3.0), dpi=60)
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size == (180, 180)
        masks = {name: _mask(png, color) for name, color in render.LIMB_COLORS.items()}
    for name, mask in masks.items():
        assert mask.sum() > 5, f"no {name} pixels"
    rows = {name: np.nonzero(mask)[0].mean() for name, mask in masks.items()}
    # image rows grow downwards: the spine and arms sit above the legs (y up, not upside down)
    assert rows["spine"] < rows["left_leg"] and rows["spine"] < rows["right_leg"]
    assert rows["left_arm"] < rows["left_leg"]
    # facing the camera (+z), the figure's left side is on the right of the picture
    cols = {name: np.nonzero(mask)[1].mean() for name, mask in masks.items()}
    assert cols["left_leg"] > cols["right_leg"]


def test_the_ground_stays_put_while_the_figure_travels(tmp_path: Path) -> None:
    """Fixed limits and a camera that follows the root: the ground disc has the same place in
    every frame, although the root moves 0.45 m."""
    render.render_animation(walker(10), tmp_path / "a.gif", figsize=(2.5, 2.5), dpi=40)
    boxes = []
    with Image.open(tmp_path / "a.gif") as gif:
        for k in (0, 9):
            gif.seek(k)
            ys, xs = np.nonzero(_mask(gif, render._GROUND_COLOR, tol=8))
            boxes.append((xs.min(), xs.max(), ys.min(), ys.max()))
    assert np.abs(np.subtract(boxes[0], boxes[1])).max() <= 1, boxes


def test_long_titles_are_wrapped() -> None:
    scene = render._Scene(
        walker(2),
        title="a person walks forward slowly, turns around to the left and then sits down " * 2,
        fps=20,
        radius=None,
        elev=20.0,
        azim=35.0,
        **SMALL,
    )
    assert scene.fig._suptitle.get_text().count("\n") >= 2


def test_mp4_without_ffmpeg_is_a_typed_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(render, "_ffmpeg_available", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"ffmpeg.*\.gif"):
        render.render_animation(walker(3), tmp_path / "a.mp4", **SMALL)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(render.ffmpeg_executable() is None, reason="no ffmpeg (system or wheel)")
def test_mp4_with_ffmpeg(tmp_path: Path) -> None:
    render.render_animation(walker(6), tmp_path / "a.mp4", figsize=(2.0, 2.0), dpi=50)
    assert (tmp_path / "a.mp4").read_bytes()[4:8] == b"ftyp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_mp4_without_a_system_ffmpeg_uses_the_wheels(tmp_path: Path, monkeypatch) -> None:
    """The render extra's imageio-ffmpeg makes MP4 work where no ffmpeg is installed."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    import matplotlib

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(matplotlib.rcParams, "animation.ffmpeg_path", "ffmpeg")
    assert render.ffmpeg_executable() == imageio_ffmpeg.get_ffmpeg_exe()
    render.render_animation(walker(6), tmp_path / "a.mp4", figsize=(2.0, 2.0), dpi=50)
    assert (tmp_path / "a.mp4").read_bytes()[4:8] == b"ftyp"


def test_missing_matplotlib_is_a_typed_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(MissingDependencyError, match=r'pip install "hftrainer-mogents\[render\]"'):
        render.render_animation(walker(3), tmp_path / "a.gif", **SMALL)
    with pytest.raises(MissingDependencyError, match="matplotlib"):
        render.render_frame(walker(3), 0, tmp_path / "a.png", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_animation_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "a.gif"
    target.write_bytes(b"old")
    real_show = render._Scene.show

    def show(self, t: int) -> None:
        if t == 3:
            raise RuntimeError("boom")
        real_show(self, t)

    monkeypatch.setattr(render._Scene, "show", show)
    with pytest.raises(RuntimeError, match="boom"):
        render.render_animation(walker(6), target, **SMALL)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]


@pytest.mark.parametrize(
    ("joints", "match"),
    [
        (np.zeros((10, 263)), "recover_from_ric"),
        (np.zeros((10, 21, 3)), r"\(T, 22, 3\)"),
        (np.zeros((0, 22, 3)), r"\(T, 22, 3\)"),
        (np.full((3, 22, 3), np.inf), "infinite"),
    ],
    ids=["features", "21-joints", "empty", "inf"],
)
def test_bad_joints(tmp_path: Path, joints: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        render.render_animation(joints, tmp_path / "a.gif", **SMALL)
    with pytest.raises(InvalidInputError, match=match):
        render.render_frame(joints, 0, tmp_path / "a.png", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_bad_names_and_settings(tmp_path: Path) -> None:
    clip = walker(3)
    with pytest.raises(InvalidInputError, match=r"\.gif or \.mp4"):
        render.render_animation(clip, tmp_path / "a.avi", **SMALL)
    with pytest.raises(InvalidInputError, match=r"\.png"):
        render.render_frame(clip, 0, tmp_path / "a.jpg", **SMALL)
    with pytest.raises(InvalidInputError, match=r"\[0, 3\)"):
        render.render_frame(clip, 3, tmp_path / "a.png", **SMALL)
    with pytest.raises(InvalidInputError, match="fps"):
        render.render_animation(clip, tmp_path / "a.gif", fps=0, **SMALL)
    with pytest.raises(InvalidInputError, match="radius"):
        render.render_animation(clip, tmp_path / "a.gif", radius=-1.0, **SMALL)
    with pytest.raises(InvalidInputError, match="elev"):
        render.render_frame(clip, 0, tmp_path / "a.png", elev=90.0, **SMALL)
    assert list(tmp_path.iterdir()) == []
