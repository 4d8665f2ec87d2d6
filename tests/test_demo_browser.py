"""The web demo in a real browser: ``mogents demo`` on the tiny release, driven by Playwright in
headless Chromium (the system's ``chromium``: Playwright's own browser download needs the
internet). Generate, edit and sequence as a user would, checking what the page shows (the 3D
viewer draws and animates, the video plays, every download loads with the right shape), then
bad inputs: a readable message, no traceback, and the page keeps working.

Skipped, with the reason, without gradio, playwright or a Chromium executable
(``$MOGENTS_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on the PATH). With
``MOGENTS_DEMO_SCREENSHOTS=docs/assets`` the screenshots of the three tabs are saved there (the
docs show them). ``MOGENTS_DEMO_MODEL=path/to/artifact`` runs the same tests on another model
(the timings they print are how docs/demo.md's table was measured).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'hftrainer-mogents[demo]'")
pytest.importorskip(
    "playwright", reason="the browser tests need playwright: pip install playwright"
)

GENERATE_SECONDS = 120  # a generation on 2 slow cores with the tiny release takes a few seconds


def _chromium() -> str:
    found = os.environ.get("MOGENTS_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None
    )
    if not found or not Path(found).exists():
        pytest.skip(
            "no Chromium executable: apt-get install chromium (or set MOGENTS_CHROMIUM); "
            "Playwright's own browser download does not work offline"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mogents demo`` on the tiny release, in a subprocess on a free port; its URL."""
    port = _free_port()
    model = os.environ.get("MOGENTS_DEMO_MODEL") or tiny_artifact
    out = tmp_path_factory.mktemp("demo")
    log = (out / "server.log").open("w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hftrainer_mogents", "demo", "--model", str(model)]
        + ["--device", "cpu", "--port", str(port), "--output-dir", str(out / "runs")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mogents demo exited:\n{(out / 'server.log').read_text()}")
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mogents demo did not serve:\n{(out / 'server.log').read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        # the page never shows a traceback; the server's log may not hold one either
        assert "Traceback" not in (out / "server.log").read_text()


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            # software WebGL (no GPU on CI), which the 3D viewer draws with
            args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"],
        )
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        tab.goto(server)
        tab.wait_for_selector("#gen-prompt textarea", timeout=60_000)
        yield tab
        browser.close()


def _screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("MOGENTS_DEMO_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"demo_{name}.png"), full_page=True)


def _fill(page: Any, selector: str, text: str) -> None:
    """Type ``text`` into a field, again until the page holds it (a tab's fields are mounted
    when the tab first shows, and a busy machine may mount them after the first try)."""
    field = page.locator(selector)
    field.wait_for(state="visible", timeout=30_000)
    for _ in range(20):
        field.fill(text)
        time.sleep(0.3)
        if field.input_value() == text:
            return
    raise AssertionError(f"{selector} does not keep {text!r}")


def _summary(page: Any, prefix: str) -> str:
    return page.inner_text(f"#{prefix}-summary [data-testid=markdown]")


def _wait_result(page: Any, prefix: str, previous: str = "") -> tuple[str, float]:
    """Wait until the tab's summary shows a new result; its text and the seconds it took."""
    start = time.monotonic()
    page.wait_for_function(
        "([id, old]) => { const e = document.querySelector(id);"
        " return e && e.innerText.includes('frames') && e.innerText !== old; }",
        arg=[f"#{prefix}-summary [data-testid=markdown]", previous],
        timeout=GENERATE_SECONDS * 1000,
    )
    return _summary(page, prefix), time.monotonic() - start


def _canvas(page: Any, prefix: str) -> np.ndarray:
    from PIL import Image

    shot = page.locator(f"#{prefix}-model3d canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(np.int16)[40:]


def _check_viewer_and_video(page: Any, prefix: str) -> None:
    """The 3D viewer draws something and the animation plays; the video has a duration."""
    page.wait_for_selector(f"#{prefix}-model3d canvas", timeout=30_000)
    deadline = time.monotonic() + 30
    while True:  # the viewer loads the file, then draws
        first = _canvas(page, prefix)
        background = np.median(first.reshape(-1, 3), axis=0)
        drawn = (np.abs(first - background).sum(-1) > 30).mean()
        if drawn > 1e-4 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert drawn > 1e-4, "the 3D viewer's canvas is blank"
    for _ in range(20):  # a busy machine draws few frames a second
        time.sleep(0.5)
        changed = (np.abs(first - _canvas(page, prefix)).sum(-1) > 30).mean()
        if changed > 1e-4:
            break
    assert changed > 1e-4, "the 3D animation does not play"
    duration = page.wait_for_function(
        "id => { const v = document.querySelector(id); return v && v.duration > 0 && v.duration; }",
        arg=f"#{prefix}-video video",
        timeout=30_000,
    ).json_value()
    frames = _frames(_summary(page, prefix))
    assert duration == pytest.approx(frames / 20, abs=0.2)


def _downloads(page: Any, prefix: str, tmp_path: Path) -> dict[str, Path]:
    """Fetch every download link of the tab; suffix (or name) -> the file."""
    links = page.eval_on_selector_all(f"#{prefix}-files a[href]", "els => els.map(a => a.href)")
    got = {}
    for href in links:
        response = page.request.get(href)
        assert response.ok, href
        name = href.rsplit("/", 1)[-1]
        path = tmp_path / prefix / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(response.body())
        key = "joints" if name.endswith("_joints.npy") else name.rsplit(".", 1)[-1]
        got["run" if name == "run.json" else key] = path
    return got


def _check_files(files: dict[str, Path], frames: int) -> None:
    import pygltflib

    from hftrainer_mogents.motion.bvh import read_bvh

    assert {"npy", "joints", "bvh", "glb", "mp4", "run"} <= set(files), sorted(files)
    assert np.load(files["npy"]).shape == (frames, 263)
    assert np.load(files["joints"]).shape == (frames, 22, 3)
    assert read_bvh(files["bvh"]).num_frames == frames
    glb = pygltflib.GLTF2.load(str(files["glb"]))
    times = glb.accessors[glb.animations[0].samplers[0].input]
    assert times.count == frames
    run = json.loads(files["run"].read_text())
    assert run["complete"] and run["items"][0]["frames"] == frames
    assert files["mp4"].stat().st_size > 1000


def _frames(summary: str) -> int:
    return int(summary.split(" frames")[0].split()[-1])


def test_generate_then_edit_in_the_browser(page: Any, tmp_path: Path) -> None:
    _fill(page, "#gen-prompt textarea", "a person walks forward and waves")
    _fill(page, "#gen-length input", "4")
    page.click("#gen-random")
    page.wait_for_function("() => document.querySelector('#gen-seed textarea').value !== ''")
    seed = int(page.input_value("#gen-seed textarea"))
    page.click("#gen-run")
    summary, seconds = _wait_result(page, "gen")
    print(f"\ngenerate in the page: {seconds:.1f} s")
    assert f"seed {seed}" in summary and _frames(summary) == 80
    _check_viewer_and_video(page, "gen")
    _check_files(_downloads(page, "gen", tmp_path), 80)
    _screenshot(page, "generate")

    page.get_by_role("tab", name="Edit").click()
    _fill(page, "#edit-prompt textarea", "a person jumps")
    _fill(page, "#edit-spans textarea", "1-2.5")
    page.click("#edit-run")
    summary, seconds = _wait_result(page, "edit")
    print(f"edit in the page: {seconds:.1f} s")
    assert "regenerated 1-2.6 s" in summary and _frames(summary) == 80
    _check_viewer_and_video(page, "edit")
    files = _downloads(page, "edit", tmp_path)
    _check_files(files, 80)
    edit = json.loads(files["run"].read_text())["edit"]
    assert edit["keep"] == [[0, 20], [52, 80]]  # 1-2.5 s regenerated, snapped to token steps
    _screenshot(page, "edit")


def test_sequence_in_the_browser(page: Any, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Sequence").click()
    _fill(page, "#seq-rows textarea", "a person walks forward : 3\na person sits down : 2.6")
    _fill(page, "#seq-seed textarea", "11")
    page.click("#seq-run")
    summary, seconds = _wait_result(page, "seq")
    print(f"sequence in the page: {seconds:.1f} s")
    assert "seed 11" in summary and _frames(summary) == 60 + 52
    _check_viewer_and_video(page, "seq")
    _check_files(_downloads(page, "seq", tmp_path), 112)
    _screenshot(page, "sequence")


def _message(page: Any, words: str) -> str:
    toast = page.locator(".toast-body").filter(has_text=words).first
    toast.wait_for(timeout=60_000)
    text = toast.inner_text()
    assert "Traceback" not in text and 'File "' not in text
    # close it, so that the next check sees only its own message
    page.locator(".toast-body").filter(has_text=words).locator(".toast-close").first.click()
    page.locator(".toast-body").filter(has_text=words).first.wait_for(state="detached")
    return text


def _upload(page: Any, path: Path) -> None:
    clear = page.locator("#edit-upload button[aria-label=Clear]")
    if clear.count():  # an earlier upload: remove it first
        clear.first.click()
    page.set_input_files("#edit-upload input[type=file]", str(path))
    page.wait_for_selector(f"#edit-upload :text('{path.name}')", timeout=30_000)


def _upload(page: Any, path: Path) -> None:
    clear = page.locator("#edit-upload button[aria-label=Clear]")
    if clear.count():  # an earlier upload: remove it first
        clear.first.click()
    page.set_input_files("#edit-upload input[type=file]", str(path))
    page.wait_for_selector(f"#edit-upload :text('{path.name}')", timeout=30_000)


def test_bad_inputs_show_a_message_and_the_page_keeps_working(page: Any, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Generate").click()
    before = _summary(page, "gen")
    _fill(page, "#gen-prompt textarea", "")
    page.click("#gen-run")
    assert "Prompt: it is empty" in _message(page, "Prompt:")
    _fill(page, "#gen-prompt textarea", "a person walks")
    _fill(page, "#gen-length input", "0")
    page.click("#gen-run")
    assert "Length: 0 s is too short" in _message(page, "Length:")
    assert _summary(page, "gen") == before  # no silent empty result either

    page.get_by_role("tab", name="Edit").click()
    _fill(page, "#edit-spans textarea", "3-99")
    page.click("#edit-run")
    assert "needs START < END" in _message(page, "Spans: '3-99'")
    # no upload, an upload that is not a motion, then one that is
    page.locator("#edit-source").get_by_text("uploaded .npy").click()
    page.click("#edit-run")
    assert "upload a .npy first" in _message(page, "Motion: upload")
    np.save(tmp_path / "flat.npy", np.zeros((80, 5), dtype=np.float32))
    _upload(page, tmp_path / "flat.npy")
    _fill(page, "#edit-spans textarea", "1-2")
    page.click("#edit-run")
    assert "holds a (80, 5) float32 array" in _message(page, "Motion: the file holds")
    generated = _downloads(page, "gen", tmp_path)["npy"]  # the Generate tab's result
    _upload(page, generated)
    previous = _summary(page, "edit")
    _fill(page, "#edit-prompt textarea", "a person kicks")
    _fill(page, "#edit-spans textarea", "0-1, 3-4")
    page.locator("#edit-which").get_by_text("keep these spans").click()
    page.click("#edit-run")
    summary, _ = _wait_result(page, "edit", previous=previous)
    assert "regenerated 1-3 s" in summary
    page.locator("#edit-source").get_by_text("last result").click()

    page.get_by_role("tab", name="Sequence").click()
    _fill(page, "#seq-rows textarea", "a person walks forward")
    page.click("#seq-run")
    assert "is not 'prompt : seconds'" in _message(page, "Sequence row 1")

    # and it still generates
    page.get_by_role("tab", name="Generate").click()
    _fill(page, "#gen-length input", "2.4")
    _fill(page, "#gen-seed textarea", "3")
    page.click("#gen-run")
    summary, _ = _wait_result(page, "gen", previous=before)
    assert summary.startswith("48 frames") and "seed 3" in summary
