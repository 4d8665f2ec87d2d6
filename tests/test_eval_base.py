"""The evaluator base: the converted folder's loading and saving steps, checksums, the
construction from a folder keyword, and the host loop feeding ``evaluate`` a key -> motion map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidInputError,
)
from hftrainer_mogents.evaluation.base import CONFIG_FILE, MotionEvaluator, collect_predictions
from hftrainer_mogents.host_compat import HostEvaluatorMixin


class Toy(MotionEvaluator):
    """A one-file evaluator: the mean of each motion's first channel, scored against a scale."""

    name = "toy"
    artifact_format = "toy-evaluator-v1"
    required_files = ("scale.npy",)
    convert_command = "make-toy"
    folder_keyword = "toy_dir"
    parts_names = "scale"

    def __init__(self, scale: np.ndarray | None = None, *, toy_dir: Any = None, **kw: Any):
        self.reset()
        self.evaluate_kwargs = dict(kw.pop("evaluate_kwargs", {}))
        if scale is None:
            self._load_folder(toy_dir, **kw)
            return
        self.scale = np.asarray(scale, np.float32)
        self.tag = kw.get("tag")

    @classmethod
    def _from_folder(cls, folder: Path, meta: dict, *, tag: str | None = None) -> Toy:
        return cls(np.load(folder / "scale.npy"), tag=tag)

    def _save_files(self, path: Path) -> tuple[list[str], dict[str, Any]]:
        np.save(path / "scale.npy", self.scale)
        return ["scale.npy"], {"extra": 1}

    def _config_dict(self) -> dict[str, Any]:
        return {"dim": int(self.scale.size)}

    def evaluate(self, predictions: Any = None, split: Any = None, **options: Any) -> dict:
        keys = sorted(predictions)
        score = float(sum(np.mean(predictions[k][:, 0]) for k in keys) * self.scale[0])
        return {"score": score, "keys": keys, "options": options, "config": {"n": len(keys)}}


def test_save_then_load_round_trips_and_records_checksums(tmp_path: Path) -> None:
    folder = Toy(np.array([2.0])).save_pretrained(tmp_path / "toy", provenance={"from": "x"})
    meta = json.loads((folder / CONFIG_FILE).read_text())
    assert set(meta) == {"format", "evaluator", "config", "extra", "checksums", "source"}
    assert meta["format"] == "toy-evaluator-v1" and meta["evaluator"] == "toy"
    assert meta["config"] == {"dim": 1} and meta["source"] == {"from": "x"}
    assert set(meta["checksums"]) == {"scale.npy"}
    loaded = Toy.from_pretrained(folder, tag="t")
    assert loaded.scale.tolist() == [2.0] and loaded.tag == "t"
    with pytest.raises(InvalidInputError, match="is a file"):
        loaded.save_pretrained(folder / "scale.npy")


def test_loading_checks_config_format_files_and_checksums(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="make-toy"):
        Toy.from_pretrained(tmp_path)
    folder = Toy(np.array([2.0])).save_pretrained(tmp_path / "toy")
    np.save(folder / "scale.npy", np.array([3.0], np.float32))
    with pytest.raises(ChecksumMismatchError, match="scale.npy"):
        Toy.from_pretrained(folder)
    assert Toy.from_pretrained(folder, verify_checksums=False).scale.tolist() == [3.0]
    (folder / "scale.npy").unlink()
    with pytest.raises(ArtifactNotFoundError, match="scale.npy missing"):
        Toy.from_pretrained(folder, verify_checksums=False)
    meta = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**meta, "format": "other"}))
    with pytest.raises(ArtifactFormatError, match="'other', expected 'toy-evaluator-v1'"):
        Toy.from_pretrained(folder)


def test_a_folder_keyword_builds_the_evaluator_and_keeps_the_loop_state(tmp_path: Path) -> None:
    folder = Toy(np.array([2.0])).save_pretrained(tmp_path / "toy")
    ev = Toy(toy_dir=folder, evaluate_kwargs={"seed": 3})
    assert ev.scale.tolist() == [2.0] and ev.evaluate_kwargs == {"seed": 3}
    with pytest.raises(InvalidInputError, match=r"Toy needs its parts \(scale\) or toy_dir="):
        Toy()


def test_host_loop_evaluates_the_gathered_motions_by_key() -> None:
    ev = Toy(np.array([2.0]), evaluate_kwargs={"seed": 3})
    assert isinstance(ev, HostEvaluatorMixin)
    ev.process({"keys": ["b"], "motions": [np.ones((4, 3))]})
    ev.process({"keys": ["a"], "motions": np.zeros((1, 5, 3)), "lengths": [2]})
    flat = ev.compute()
    assert flat == {"score": 2.0}
    assert ev.last_report["keys"] == ["a", "b"] and ev.last_report["options"] == {"seed": 3}
    assert ev.compute_from_outputs([{"keys": ["c"], "motions": [np.full((2, 3), 3.0)]}]) == {
        "score": 6.0
    }


def test_collect_predictions_skips_temporary_files(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros(2))
    np.save(tmp_path / ".a.npy.x1.tmp.npy", np.zeros(2))
    assert list(collect_predictions(tmp_path)) == ["a"]
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        collect_predictions(tmp_path / "nowhere")


def test_both_evaluators_share_the_base() -> None:
    from hftrainer_mogents.evaluation.hml263 import HumanML263Evaluator
    from hftrainer_mogents.evaluation.ms272 import MotionStreamer272Evaluator

    for cls in (HumanML263Evaluator, MotionStreamer272Evaluator):
        assert issubclass(cls, MotionEvaluator)
        assert cls.save_pretrained is MotionEvaluator.save_pretrained
        assert cls.compute is MotionEvaluator.compute
