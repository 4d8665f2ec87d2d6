"""The web demo without a browser: ``mogents demo`` without gradio, the request handlers of
:class:`~hftrainer_mogents.demo.DemoBackend` as plain functions (the files each request writes
against the pipeline called directly, the page's validation messages), and the Gradio layer's
error mapping. The page in a real browser is ``tests/test_demo_browser.py``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from hftrainer_mogents.cli import cli
from hftrainer_mogents.demo.backend import DemoBackend, parse_sequence_rows, parse_spans
from hftrainer_mogents.errors import InvalidInputError, MissingDependencyError


@pytest.fixture()
def backend(tiny_pipeline: Any, tmp_path: Path) -> DemoBackend:
    # no video (the slowest writer) but in the test that checks every file
    return DemoBackend(tiny_pipeline, model="tiny", out_root=tmp_path, formats=("glb",))


def test_the_command_without_gradio_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    result = CliRunner().invoke(cli, ["demo", "--model", str(tmp_path / "no-such-model")])
    assert result.exit_code == 1
    assert "MissingDependencyError" in result.output
    assert 'pip install "hftrainer-mogents[demo]"' in result.output
    assert "Traceback" not in result.output and "no-such-model" not in result.output  # not loaded


def test_generate_writes_what_the_pipeline_makes(tiny_pipeline: Any, tmp_path: Path) -> None:
    backend = DemoBackend(tiny_pipeline, model="tiny", out_root=tmp_path)
    reports: list[tuple[float, str]] = []
    result = backend.generate(
        "a person walks forward", 4.1, seed=7, progress=lambda f, d: reports.append((f, d))
    )
    expected = tiny_pipeline(["a person walks forward"], [82], seed=7).motions[0]
    assert result.frames == 80 and result.seed == 7
    np.testing.assert_array_equal(np.load(result.files["npy"]), expected)
    assert np.load(result.files["joints"]).shape == (80, 22, 3)
    assert {"npy", "joints", "mp4", "bvh", "glb", "run"} == set(result.files)
    assert all(path.parent == result.folder and path.is_file() for path in result.files.values())
    run = json.loads(result.files["run"].read_text())
    assert run["complete"] and run["seed"] == 7 and run["demo"] == "generate"
    assert "80 frames (4 s at 20 fps), seed 7" in result.summary
    assert "whole 0.2 s steps" in result.summary  # 4.1 s asked, 4 s made
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # a second request gets its own folder
    again = backend.generate("a person walks forward", None, estimate=True, seed=7)
    assert again.folder != result.folder and "estimated" in again.summary


def test_a_random_seed_is_drawn_and_shown(backend: DemoBackend) -> None:
    result = backend.generate("a person jumps", 2, seed="")
    assert f"seed {result.seed}" in result.summary
    assert json.loads(result.files["run"].read_text())["seed"] == result.seed


def test_the_viewer_file_draws_the_skeleton_as_a_skinned_stick_figure(
    backend: DemoBackend,
) -> None:
    import pygltflib

    result = backend.generate("a person waves", 2, seed=1)
    glb = pygltflib.GLTF2.load(str(result.viewer))
    joints = np.load(result.files["joints"])
    (mesh_node,) = [n for n in glb.nodes if n.mesh is not None]
    assert mesh_node.skin == 0 and glb.meshes[mesh_node.mesh].primitives[0].attributes.JOINTS_0
    # one box (8 corners) per bone, 21 bones; the animation keys every frame
    positions = glb.accessors[glb.meshes[0].primitives[0].attributes.POSITION]
    assert positions.count == 8 * 21
    assert glb.accessors[glb.animations[0].samplers[0].input].count == len(joints)
    # the file the downloads offer is the plain skeleton, unchanged by the demo
    plain = pygltflib.GLTF2.load(str(result.files["glb"]))
    assert not plain.meshes


def test_edit_regenerates_the_spans_asked_and_marks_them(
    backend: DemoBackend, tiny_pipeline: Any
) -> None:
    source = backend.generate("a person walks forward", 4, seed=2)
    result = backend.edit(source.files["npy"], "a person jumps", "1-2.5", seed=5)
    # 1-2.5 s = frames 20-50 regenerated: the kept spans, snapped inward to token steps
    expected = tiny_pipeline.edit(
        np.load(source.files["npy"]), "a person jumps", [(0, 20), (50, 80)], seed=5
    ).motions[0]
    np.testing.assert_array_equal(np.load(result.files["npy"]), expected)
    assert result.marked == [[20, 52]]
    assert "regenerated 1-2.6 s" in result.summary
    run = json.loads(result.files["run"].read_text())
    assert run["edit"]["keep"] == [[0, 20], [52, 80]]
    assert run["items"][0]["text"] == "a person jumps [regenerated 1-2.6 s]"  # the video title
    assert any("snapped" in w for w in result.warnings)
    # "keep these spans" is the complement
    kept = backend.edit(
        source.files["npy"], "a person jumps", "0-1, 2.5-4", regenerate=False, seed=5
    )
    np.testing.assert_array_equal(np.load(kept.files["npy"]), expected)


def test_sequence_is_generate_long(backend: DemoBackend, tiny_pipeline: Any) -> None:
    result = backend.sequence("a person walks : 3\n\na person sits down : 2.6", seed=4)
    expected = tiny_pipeline.generate_long(
        ["a person walks", "a person sits down"], [60, 52], transition=40, seed=4
    ).motions[0]
    np.testing.assert_array_equal(np.load(result.files["npy"]), expected)
    assert result.marked == [[0, 60], [60, 112]] and result.frames == 112


def _refused(backend: DemoBackend, request: Any, match: str) -> None:
    before = sorted(backend.out_root.iterdir())
    with pytest.raises(InvalidInputError, match=match):
        request(backend)
    assert sorted(backend.out_root.iterdir()) == before  # nothing written, no empty result


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (lambda b: b.generate("", 4), r"^Prompt: it is empty"),
        (lambda b: b.generate("   ", 4), r"^Prompt: it is empty"),
        (lambda b: b.generate("\x07", 4), r"^Prompt: the prompt .* has no words"),
        (lambda b: b.generate("a person walks", 0), r"^Length: 0 s is too short"),
        (lambda b: b.generate("a person walks", None), r"^Length: give a number of seconds"),
        (lambda b: b.generate("a person walks", float("nan")), r"^Length: nan s is too short"),
        (lambda b: b.generate("a person walks", 4, seed="x"), r"^Seed: 'x' is not a whole"),
        (lambda b: b.generate("a person walks", 4, seed=-1), r"^Seed: -1 is outside"),
        (lambda b: b.generate("a person walks", 4, seed=1.5), r"^Seed: 1.5 is not a whole"),
        (
            lambda b: b.generate("a person walks", 4, settings={"time_steps": 0}),
            r"^Advanced settings: time_steps must be an integer >= 1",
        ),
        (
            lambda b: b.generate("a person walks", 4, settings={"time_steps": 2.5}),
            r"^Advanced settings: time_steps must be a whole number",
        ),
        (
            lambda b: b.generate("a person walks", 4, settings={"topkr": 2.0}),
            r"^Advanced settings: topkr",
        ),
        (lambda b: b.edit(None, "a person jumps", "1-2"), r"^Motion: there is none yet"),
        (lambda b: b.sequence(""), r"^Sequence: give one 'prompt : seconds' row"),
        (lambda b: b.sequence("a person walks"), r"^Sequence row 1: 'a person walks' is not"),
        (lambda b: b.sequence("walks : 3\n : 3"), r"^Sequence row 2: ': 3' is not"),
        (lambda b: b.sequence("walks : 1"), r"^Sequence row 1: 1 s is too short"),
        (
            lambda b: b.sequence("walks : 3\nruns : 3", transition_seconds=20),
            r"^Transition: 20 s; give 0.2 to 8 s",
        ),
        (
            lambda b: b.sequence("walks : 2\nruns : 3", transition_seconds=2.4),
            r"^Sequence: transition = 48 frames, but the motion before the second window",
        ),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(
    backend: DemoBackend, request_: Any, match: str
) -> None:
    _refused(backend, request_, match)


def test_bad_edit_inputs_are_refused_naming_the_field(backend: DemoBackend, tmp_path: Path) -> None:
    motion = np.zeros((80, 263), dtype=np.float32)
    for name, array in {
        "flat.npy": np.zeros((80, 5), dtype=np.float32),
        "short.npy": np.zeros((20, 263), dtype=np.float32),
        "odd.npy": np.zeros((82, 263), dtype=np.float32),
        "ints.npy": np.zeros((80, 263), dtype=np.int64),
    }.items():
        np.save(tmp_path / name, array)
        _refused(backend, lambda b, n=name: b.edit(tmp_path / n, "x y", "1-2"), r"^Motion: ")
    (tmp_path / "text.npy").write_text("not an array")
    _refused(
        backend,
        lambda b: b.edit(tmp_path / "text.npy", "x y", "1-2"),
        r"^Motion: text.npy is not a readable .npy array",
    )
    nan = motion.copy()
    nan[3, 4] = np.nan
    _refused(backend, lambda b: b.edit(nan, "x y", "1-2"), r"^Motion: it holds NaN")
    _refused(
        backend, lambda b: b.edit(motion, "x y", "5-6"), r"^Spans: '5-6' needs START < END <= 4 s"
    )
    _refused(backend, lambda b: b.edit(motion, "x y", "0-4"), r"^Spans: they cover the whole")
    _refused(backend, lambda b: b.edit(motion, "x y", "soon"), r"^Spans: 'soon' is not a span")
    _refused(backend, lambda b: b.edit(motion, "", "1-2"), r"^Prompt: it is empty")
    # keeping less than one whole token step: the pipeline's own check, in the page's words
    _refused(
        backend,
        lambda b: b.edit(motion, "x y", "0.05-0.15", regenerate=False),
        r"^Spans: the kept frames .*",
    )


def test_spans_and_rows_are_read_in_seconds() -> None:
    assert parse_spans("1-2.5", 80) == [(20, 50)]
    assert parse_spans(" 0 - 1 ; 3:4 ", 80) == [(0, 20), (60, 80)]
    assert parse_spans(".5 to 1", 80) == [(10, 20)]
    assert parse_sequence_rows("a: b : 4\nsits : 2.5\n") == (["a: b", "sits"], [80, 50])


def test_the_page_shows_our_errors_as_messages_and_hides_other_tracebacks() -> None:
    gr = pytest.importorskip("gradio")
    from hftrainer_mogents.demo.app import _answer

    with pytest.raises(gr.Error) as caught:
        _answer(gr, lambda: (_ for _ in ()).throw(InvalidInputError("Length: too short")))
    assert caught.value.message == "Length: too short" and not caught.value.print_exception
    with pytest.raises(gr.Error) as caught:
        _answer(gr, lambda: {}["missing"])
    assert caught.value.message == (
        "the request failed (KeyError); the server's log has the details"
    )


def test_the_page_builds_with_its_three_tabs(backend: DemoBackend) -> None:
    pytest.importorskip("gradio")
    from hftrainer_mogents.demo.app import build_demo

    demo = build_demo(backend)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    for prefix in ("gen", "edit", "seq"):
        assert {f"{prefix}-run", f"{prefix}-model3d", f"{prefix}-video", f"{prefix}-files"} <= ids


def test_require_gradio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from hftrainer_mogents.demo.app import require_gradio

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(MissingDependencyError, match=r"hftrainer-mogents\[demo\]"):
        require_gradio()


def test_the_space_app_reads_its_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    import hftrainer_mogents.demo.app as demo_app
    import hftrainer_mogents.demo.backend as demo_backend

    pytest.importorskip("gradio")
    calls: dict[str, Any] = {}
    monkeypatch.setattr(
        demo_backend.DemoBackend,
        "load",
        classmethod(lambda cls, model, **kw: calls.setdefault("load", (model, kw)) and "backend"),
    )
    monkeypatch.setattr(demo_app, "launch", lambda backend, **kw: calls.setdefault("launch", kw))
    spec = importlib.util.spec_from_file_location(
        "space_app", Path(__file__).resolve().parents[1] / "app.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("MOGENTS_SMPL_DIR", "MOGENTS_DTYPE", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOGENTS_MODEL", "some/artifact")
    monkeypatch.setenv("MOGENTS_DEVICE", "cuda")
    monkeypatch.setenv("MOGENTS_CONCURRENCY", "3")
    module.main()
    assert calls["load"] == (
        "some/artifact",
        {"device": "cuda", "dtype": "float32", "model_dir": None},
    )
    assert calls["launch"] == {"host": "0.0.0.0", "port": 7860, "concurrency": 3}


def test_with_an_smpl_model_the_viewer_shows_the_body_and_the_npz_is_offered(
    tiny_pipeline: Any, fixtures_dir: Path, tmp_path: Path
) -> None:
    import pygltflib
    from conftest import require_fixture

    from hftrainer_mogents.exports import load_export_model

    smpl = load_export_model(["smpl", "glb"], require_fixture(fixtures_dir / "ms272_tiny/smpl"))
    backend = DemoBackend(
        tiny_pipeline, model="tiny", smpl_model=smpl, out_root=tmp_path, formats=("glb",)
    )
    result = backend.generate("a person walks", 2, seed=1)
    assert result.viewer == result.files["glb"]  # the skinned body itself, no stick figure
    assert np.load(result.files["smpl"])["body_pose"].shape[0] > 0
    glb = pygltflib.GLTF2.load(str(result.viewer))
    assert [m.name for m in glb.meshes] == ["smpl"]
    # a sequence is written without SMPL, as `generate --sequence` writes it
    long = backend.sequence("a person walks : 2\na person runs : 2", seed=1)
    assert "smpl" not in long.files and long.viewer.name == "sequence_view.glb"
