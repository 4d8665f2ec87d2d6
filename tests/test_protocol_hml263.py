"""The HumanML3D-263 test protocol end to end on a small HumanML3D folder written here: planning,
generation with a STAND-IN generator (ground truth plus seeded noise, see hml263_standin.py),
sharding, resuming after a kill, evaluation, the scripts, the CLI and the zoo specs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hml263_standin import GroundTruthPlusNoise, make_humanml3d

from hftrainer_mogents.cli import cli
from hftrainer_mogents.config import clamp_length
from hftrainer_mogents.convert.evaluator_hml263 import convert_hml263_evaluator
from hftrainer_mogents.errors import ArtifactFormatError, InvalidInputError
from hftrainer_mogents.evaluation.hml263.benchmark import run_benchmark, run_from_spec
from hftrainer_mogents.evaluation.hml263.dataset import read_test_split
from hftrainer_mogents.evaluation.hml263.evaluator import PUBLISHED, HumanML263Evaluator
from hftrainer_mogents.evaluation.hml263.split_generation import (
    generate_test_split,
    plan_test_split,
)
from hftrainer_mogents.generation_config import GenerationConfig

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
SMALL = {"mm_samples": 3, "mm_repeats": 12, "batch_size": 8}
RESULT_KEYS = {
    "fid",
    "r_precision",
    "matching_score",
    "diversity",
    "multimodality",
    "r_precision_real",
    "matching_score_real",
    "diversity_real",
    "n_samples_used",
    "skipped_no_pred",
    "skipped",
    "config",
    "repeats",
}


@pytest.fixture(scope="module")
def evaluator_dir(fixtures_dir, tmp_path_factory):
    from conftest import require_fixture

    fx = require_fixture(fixtures_dir / "hml263_eval_tiny")
    out = tmp_path_factory.mktemp("ev") / "hml263"
    return convert_hml263_evaluator(fx / "checkpoints", out, glove_dir=fx / "glove")


@pytest.fixture(scope="module")
def evaluator(evaluator_dir):
    return HumanML263Evaluator.from_pretrained(evaluator_dir, device="cpu")


@pytest.fixture(scope="module")
def dataset(evaluator, tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "HumanML3D"
    return make_humanml3d(root, evaluator.mean, evaluator.std)


@pytest.fixture(scope="module")
def reference_run(dataset, tmp_path_factory):
    """One uninterrupted, unsharded generation to compare the others with."""
    out = tmp_path_factory.mktemp("pred") / "full"
    summary = generate_test_split(
        GroundTruthPlusNoise(dataset), dataset, out, seed=3, progress=False, **SMALL
    )
    return out, summary


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*.npy"))
        if not p.name.startswith(".")
    }


# ------------------------------------------------------------------ planning


def test_plan_follows_the_length_and_caption_rules(dataset):
    split = read_test_split(dataset)
    assert "000007" in split.skipped and "999999" in split.skipped
    plan = plan_test_split(split, seed=0, **SMALL)
    main = [b for b in plan.batches if not b.mm]
    items = [it for b in main for it in b.items]
    assert [it.key for it in items] == [e.key for e in split.entries]
    for it, e in zip(items, split.entries):
        assert it.length == clamp_length(e.length) and it.length % 4 == 0
        assert 40 <= it.length <= 196
        assert it.text == e.captions[0].text
    assert any(it.key.endswith("__sub0") for it in items)
    assert [clamp_length(n) for n in (30, 41, 199, 250)] == [40, 40, 196, 196]
    assert len({b.seed for b in plan.batches}) == len(plan.batches)
    mm = [b for b in plan.batches if b.mm]
    assert len(mm) == 3 and all(len(b.items) == 12 and len(set(b.items)) == 1 for b in mm)
    again = plan_test_split(split, seed=0, **SMALL)
    assert again.batches == plan.batches
    other = plan_test_split(split, seed=1, caption_selection="random", **SMALL)
    assert [b.seed for b in other.batches] != [b.seed for b in plan.batches]
    assert {it.caption_index for b in other.batches for it in b.items} == {0, 1}
    assert plan.settings["generation_kwargs"] == GenerationConfig().to_dict()
    assert plan.settings["mm_generation_kwargs"]["gumbel_sample"] is True


# ------------------------------------------------------------------ generation


def test_generation_writes_every_item_and_the_manifest(dataset, reference_run):
    out, summary = reference_run
    split = read_test_split(dataset)
    names = {p.stem for p in out.glob("*.npy")}
    assert names == {e.key for e in split.entries}
    assert summary["failed"] == [] and summary["written"] == len(split) + 3 * 12
    assert len(list((out / "mm").glob("*__r*.npy"))) == 36
    manifest = json.loads((out / "generation.json").read_text())
    assert set(manifest["items"]) == names and manifest["seed"] == 3
    entry = split.entries[5]
    motion = np.load(out / f"{entry.key}.npy")
    assert motion.dtype == np.float32 and motion.shape == (clamp_length(entry.length), 263)
    assert (out / "_generation_summary.json").is_file()


def test_sharded_runs_equal_one_run(dataset, reference_run, tmp_path):
    out = tmp_path / "sharded"
    for index in range(3):
        gen = GroundTruthPlusNoise(dataset)
        generate_test_split(
            gen, dataset, out, seed=3, num_shards=3, shard_index=index, progress=False, **SMALL
        )
        assert gen.calls, f"shard {index} got no batch"
    assert _files(out) == _files(reference_run[0])
    assert sorted(p.name for p in out.glob("_generation_summary*.json")) == [
        f"_generation_summary_s{i:02d}_of_03.json" for i in range(3)
    ]


def test_sharding_reads_torchrun_environment(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    summary = generate_test_split(
        GroundTruthPlusNoise(dataset), dataset, tmp_path / "p", seed=3, progress=False, **SMALL
    )
    assert (summary["num_shards"], summary["shard_index"]) == (2, 1)


def test_skip_existing_resumes_and_refuses_other_settings(dataset, reference_run, tmp_path):
    out = tmp_path / "resume"
    generate_test_split(
        GroundTruthPlusNoise(dataset), dataset, out, seed=3, progress=False, **SMALL
    )
    victim = sorted(out.glob("*.npy"))[4]
    victim.unlink()
    gen = GroundTruthPlusNoise(dataset)
    summary = generate_test_split(
        gen, dataset, out, seed=3, skip_existing=True, progress=False, **SMALL
    )
    assert summary["written"] == 1 and len(gen.calls) == 1  # only the victim's batch ran
    assert _files(out) == _files(reference_run[0])
    with pytest.raises(InvalidInputError, match="seed"):
        generate_test_split(gen, dataset, out, seed=4, skip_existing=True, progress=False, **SMALL)


def test_failed_batches_are_recorded_and_the_rest_goes_on(dataset, tmp_path):
    split = read_test_split(dataset)
    bad_text = split.entries[0].captions[0].text
    gen = GroundTruthPlusNoise(dataset, fail_texts=(bad_text,))
    summary = generate_test_split(gen, dataset, tmp_path / "p", seed=3, progress=False, **SMALL)
    assert len(summary["failed"]) == 1
    assert summary["failed"][0]["files"][0] == f"{split.entries[0].key}.npy"
    assert "stand-in failure" in summary["failed"][0]["error"]
    assert not (tmp_path / "p" / f"{split.entries[0].key}.npy").exists()
    assert (tmp_path / "p" / f"{split.entries[-1].key}.npy").exists()


_KILL_DRIVER = textwrap.dedent(
    """
    import runpy, sys
    from pathlib import Path
    import hftrainer_mogents.evaluation.hml263.split_generation as split_generation
    from hml263_standin import GroundTruthPlusNoise

    data, kill_after = sys.argv[1], sys.argv[2]
    kill = None if kill_after == "none" else int(kill_after)
    split_generation.load_generator = lambda path, device=None: GroundTruthPlusNoise(
        Path(data), kill_after=kill
    )
    sys.argv = ["mogents_t2m_h3d263.py", *sys.argv[3:]]
    runpy.run_path({script!r}, run_name="__main__")
    """
)


def _run_script(tmp_path: Path, dataset: Path, kill_after: str, *args: str):
    driver = tmp_path / "driver.py"
    driver.write_text(_KILL_DRIVER.format(script=str(REPO / "scripts" / "mogents_t2m_h3d263.py")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    return subprocess.run(
        [sys.executable, str(driver), str(dataset), kill_after, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_script_restarts_after_a_kill(dataset, reference_run, tmp_path):
    out = tmp_path / "killed"
    args = ["--data_root", str(dataset), "--out_dir", str(out), "--seed", "3", "--no-progress"]
    args += ["--batch_size", "8", "--mm_samples", "3", "--mm_repeats", "12"]
    killed = _run_script(tmp_path, dataset, "3", *args, "--skip-existing")
    assert killed.returncode == -9, killed.stderr
    done = list(out.glob("*.npy"))
    assert 0 < len(done) < len(_files(reference_run[0]))
    for path in done:  # whatever exists under a final name is complete
        assert np.load(path).shape[1] == 263
    # a temporary file as a kill during a write would leave it
    (out / ".000001.abcd.tmp.npy").write_bytes(b"partial")
    resumed = _run_script(tmp_path, dataset, "none", *args, "--skip-existing")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["skipped"] == len(done) and summary["failed"] == []
    assert _files(out) == _files(reference_run[0])


# ------------------------------------------------------------------ evaluation and reports


def test_verify_script_writes_json_and_markdown(dataset, reference_run, evaluator_dir, tmp_path):
    pred = reference_run[0]
    metrics = tmp_path / "metrics"
    texts = tmp_path / "texts"  # the zoo's --hml263-texts-dir: captions from another folder
    shutil.copytree(dataset / "texts", texts)
    args = [
        "--which",
        "hml263",
        "--hml263-pred",
        str(pred),
        "--hml263-gt-root",
        str(dataset),
        "--hml263-evaluator",
        str(evaluator_dir),
        "--hml263-texts-dir",
        str(texts),
        "--hml263-diversity-times",
        "20",
        "--n-repeats",
        "3",
        "--out-dir",
        str(metrics),
        "--no-progress",
        "--device",
        "cpu",
    ]
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "verify_evaluators.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert run.returncode == 0, run.stderr
    result = json.loads((metrics / "verify_hml263.json").read_text())
    assert set(result) >= RESULT_KEYS
    assert result["skipped_no_pred"] == 0 and result["mode"] == "pred"
    assert len(result["r_precision"]["mean"]) == 3 and len(result["r_precision"]["conf"]) == 3
    assert result["multimodality"]["mean"] > 0
    assert result["reference"]["fid"] == 0.0806
    assert result["config"]["captions_from"].endswith("generation.json")
    assert result["config"]["texts_dir"] == str(texts)
    assert result["n_samples"] == len(read_test_split(dataset))  # the zoo's key
    assert len(result["fid"]) == 3 and result["fid"]["std"] >= 0  # {mean, std, conf}
    assert len(list((tmp_path / "cache").rglob("hml263_real_*.npz"))) == 1
    r_prec = result["r_precision"]["mean"] + result["r_precision_real"]["mean"]
    assert all(0 <= v <= 1 for v in r_prec) and result["fid"]["mean"] > 0
    assert len(result["repeats"]) == 3 and result["n_samples_used"] % 32 == 0
    md = (metrics / "verify_hml263.md").read_text()
    for published in ("0.0806", "0.5219", "0.7128", "0.8056", "9.4063", "2.9290", "0.5135"):
        assert published in md
    assert "| FID (lower) |" in md


def test_missing_predictions_are_counted_or_fail_strict(
    dataset, reference_run, evaluator, tmp_path
):
    pred = tmp_path / "pred"
    pred.mkdir()
    files = sorted(reference_run[0].glob("*.npy"))
    for path in files[:-5]:
        (pred / path.name).write_bytes(path.read_bytes())
    kw = {"dataset_root": dataset, "n_repeats": 2, "diversity_times": 20, "progress": False}
    result = evaluator.evaluate_dir(pred, **kw)
    assert result["skipped_no_pred"] == 5
    assert sorted(result["skipped"]["no_prediction"]) == sorted(p.stem for p in files[-5:])
    assert result["multimodality"] is None and "not computed" in result["multimodality_note"]
    assert result["config"]["captions_from"] == "first caption of each item"
    from hftrainer_mogents.errors import ArtifactNotFoundError

    with pytest.raises(ArtifactNotFoundError, match="5 of"):
        evaluator.evaluate_dir(pred, strict=True, **kw)
    (pred / "generation.json").write_text("{not json")
    with pytest.raises(ArtifactFormatError, match="generation.json"):
        evaluator.evaluate_dir(pred, **kw)


def test_real_embedding_cache_is_reused_and_invalidated(
    dataset, reference_run, evaluator, tmp_path, monkeypatch
):
    data = tmp_path / "HumanML3D"
    shutil.copytree(dataset, data)
    cache = tmp_path / "cache"
    kw = {"dataset_root": data, "n_repeats": 3, "diversity_times": 20, "progress": False}
    plain = evaluator.evaluate_dir(reference_run[0], **kw)
    first = evaluator.evaluate_dir(reference_run[0], cache_dir=cache, **kw)
    assert len(list(cache.glob("hml263_real_*.npz"))) == 1

    encoded = {}
    original = HumanML263Evaluator._embed_crops

    def spy(self, requests, load, batch_size, progress, desc):
        requests = set(requests)
        encoded[desc] = len(requests)
        return original(self, requests, load, batch_size, progress, desc)

    monkeypatch.setattr(HumanML263Evaluator, "_embed_crops", spy)
    second = evaluator.evaluate_dir(reference_run[0], cache_dir=cache, **kw)
    assert encoded["encode real motions"] == 0 and encoded["encode generated motions"] > 0
    for other in (first, second):
        for a, b in zip(plain["repeats"], other["repeats"]):
            for key in ("fid", "matching_score_real", "diversity_real", "matching_score"):
                assert abs(a[key] - b[key]) < 1e-6, key
    # a changed motion file gives a new cache file
    victim = next((data / "new_joint_vecs").glob("*.npy"))
    np.save(victim, np.load(victim) + 1)
    evaluator.evaluate_dir(reference_run[0], cache_dir=cache, **kw)
    assert encoded["encode real motions"] > 0
    assert len(list(cache.glob("hml263_real_*.npz"))) == 2


def test_gt_only_scores_the_real_data(dataset, evaluator):
    result = evaluator.evaluate_dir(
        None, dataset_root=dataset, n_repeats=2, diversity_times=20, progress=False
    )
    assert result["mode"] == "gt-only" and result["fid"] is None
    assert result["config"]["caption_selection"] == "random"
    assert len(result["r_precision_real"]["mean"]) == 3


# ------------------------------------------------------------------ CLI, benchmark, zoo specs


def test_cli_convert_and_evaluate(fixtures_dir, dataset, reference_run, tmp_path, monkeypatch):
    fx = fixtures_dir / "hml263_eval_tiny"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runner = CliRunner()
    out = tmp_path / "ev"
    res = runner.invoke(
        cli,
        [
            "convert-evaluator",
            "--checkpoints",
            str(fx / "checkpoints"),
            "--glove",
            str(fx / "glove"),
        ]
        + ["--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert (out / "evaluator.safetensors").is_file()
    again = runner.invoke(
        cli, ["convert-evaluator", "--checkpoints", str(fx / "checkpoints"), "--out", str(out)]
    )
    assert again.exit_code != 0 and "already exists" in again.output

    base = ["evaluate", "hml263", "--dataset-root", str(dataset), "--evaluator", str(out)]
    base += ["--n-repeats", "2", "--diversity-times", "20", "--device", "cpu"]
    res = runner.invoke(
        cli, [*base, "--pred-dir", str(reference_run[0]), "--out-dir", str(tmp_path / "m")]
    )
    assert res.exit_code == 0, res.output
    assert "| R@1 (higher) |" in res.output
    assert (tmp_path / "m" / "verify_hml263.json").is_file()

    # --model-path generates first (the stand-in replaces the pipeline the loader would build)
    import hftrainer_mogents.evaluation.hml263.split_generation as split_generation

    monkeypatch.setattr(
        split_generation, "load_generator", lambda path, device=None: GroundTruthPlusNoise(dataset)
    )
    pred = tmp_path / "gen"
    res = runner.invoke(
        cli,
        [*base, "--pred-dir", str(pred), "--model-path", "stand-in", "--mm-samples", "2"]
        + ["--mm-repeats", "11"],
    )
    assert res.exit_code == 0, res.output
    assert (pred / "metrics" / "verify_hml263.md").is_file()
    assert len(list((pred / "mm").glob("*.npy"))) == 22

    res = runner.invoke(cli, ["evaluate", "hml263", "--dataset-root", str(tmp_path)])
    assert res.exit_code != 0 and "--pred-dir" in res.output
    res = runner.invoke(
        cli, [*base[:2], "--dataset-root", str(tmp_path), "--evaluator", str(out), "--gt-only"]
    )
    assert res.exit_code != 0 and "new_joint_vecs" in res.output


def test_cli_refuses_missing_predictions_unless_allowed(
    dataset, reference_run, evaluator_dir, tmp_path, monkeypatch
):
    """20 of 77 missing must not print numbers beside the published ones as if complete: the
    run fails naming how many and which (nothing written), --allow-missing scores the subset
    and says so in the report and on the console; extra files are named; bad counts are usage
    errors naming the flag, before any work."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pred = tmp_path / "pred"
    pred.mkdir()
    files = sorted(reference_run[0].glob("*.npy"))
    for path in files[:-5]:
        (pred / path.name).write_bytes(path.read_bytes())
    (pred / "not_a_test_item.npy").write_bytes(files[0].read_bytes())
    runner = CliRunner()
    base = ["evaluate", "hml263", "--dataset-root", str(dataset), "--evaluator", str(evaluator_dir)]
    base += ["--n-repeats", "2", "--diversity-times", "20", "--device", "cpu", "--pred-dir"]
    base += [str(pred)]
    res = runner.invoke(cli, base)
    assert res.exit_code == 1 and not (pred / "metrics").exists()
    assert f"5 of {len(files)} test items have no prediction" in res.output
    assert files[-1].stem in res.output and "--allow-missing" in res.output
    res = runner.invoke(cli, [*base, "--allow-missing"])
    assert res.exit_code == 0, res.output
    assert f"SUBSET: only {len(files) - 5} of {len(files)}" in res.stdout
    assert "NOT comparable to the published ones" in res.stdout
    assert "not_a_test_item.npy" in res.stderr and files[-1].stem in res.stderr
    report = json.loads((pred / "metrics" / "verify_hml263.json").read_text())
    assert report["comparable_to_published"] is False and report["skipped_no_pred"] == 5
    assert "SUBSET" in (pred / "metrics" / "verify_hml263.md").read_text()
    for flag in ("--n-repeats", "--diversity-times"):
        for bad in ("0", "-1"):
            res = runner.invoke(cli, [*base, "--allow-missing", flag, bad])
            assert res.exit_code == 2 and flag in res.output, res.output
    with pytest.raises(InvalidInputError, match="--n-repeats"):
        run_benchmark(pred, dataset_root=dataset, evaluator_dir=evaluator_dir, n_repeats=0)
    with pytest.raises(InvalidInputError, match="--diversity-times"):
        run_benchmark(pred, dataset_root=dataset, evaluator_dir=evaluator_dir, diversity_times=0)
    # the evaluators' library contract is unchanged: missing predictions are counted
    result = HumanML263Evaluator.from_pretrained(evaluator_dir, device="cpu").evaluate_dir(
        pred, dataset_root=dataset, n_repeats=2, diversity_times=20, progress=False
    )
    assert result["skipped_no_pred"] == 5


def test_run_benchmark_generates_then_evaluates(dataset, evaluator_dir, tmp_path):
    out = run_benchmark(
        tmp_path / "bench",
        dataset_root=dataset,
        evaluator_dir=evaluator_dir,
        generator=GroundTruthPlusNoise(dataset),
        device="cpu",
        n_repeats=2,
        mm_samples=0,
        diversity_times=20,
        progress=False,
    )
    assert out["metrics"]["multimodality"] is None
    assert (tmp_path / "bench" / "metrics" / "verify_hml263.json").is_file()


def test_zoo_declares_the_evaluator_and_the_benchmark(dataset):
    from hftrainer_mogents.zoo import loader, plugin
    from hftrainer_mogents.zoo.specs import resolve

    evaluators = {e.name: e for e in loader.list_evaluators()}
    assert resolve(evaluators["hml263"].cls) is HumanML263Evaluator
    assert "hml263" in {m.name: m for m in loader.list_models()}["mogents"].evaluators
    bench = {b.name: b for b in loader.list_benchmarks()}["mogents-humanml3d-test"]
    assert (bench.dataset, bench.split, bench.evaluator) == ("humanml3d", "test", "hml263")
    assert resolve(bench.entry) is run_from_spec
    assert (bench.seed, bench.batch_size) == (0, 32)
    assert dict(bench.generation_kwargs) == GenerationConfig().to_dict()
    # the run's seed and batch size are not sampling settings: refused where they would clash
    from hftrainer_mogents.errors import PluginError
    from hftrainer_mogents.zoo.specs import BenchmarkSpec

    with pytest.raises(PluginError, match=r"\['seed', 'batch_size'\].*BenchmarkSpec\(seed="):
        BenchmarkSpec("x", "mogents", "humanml3d", "test", "hml263", {"seed": 0, "batch_size": 8})
    with pytest.raises(InvalidInputError, match="pass seed= and batch_size= instead"):
        plan_test_split(read_test_split(dataset), generation_kwargs={"seed": 0})
    with pytest.raises(PluginError, match="unknown argument"):
        bench.run(dataset_root="d", evaluator_dir="e", out_dir="o", device="cpu")
    with pytest.raises(InvalidInputError, match="HumanML3D-263 test benchmark"):
        run_from_spec(
            BenchmarkSpec("x", "mogents", "humanml3d", "val", "hml263"),
            dataset_root="d",
            evaluator_dir="e",
            out_dir="o",
        )
    assert GenerationConfig().to_dict() == plugin.HML263_GENERATION_KWARGS
    as_tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in PUBLISHED.items()}
    assert dict(bench.reference) == as_tuples


def test_verify_dispatch_table_takes_new_evaluators(tmp_path, capsys):
    from hftrainer_mogents.cli import evaluate as evaluate_cli

    calls = []

    def run_fake(args, out_dir):
        calls.append((args.fake_flag, out_dir))
        return [out_dir / "verify_fake.json"]

    fake = evaluate_cli.Verifier(
        "fake", lambda parser: parser.add_argument("--fake-flag", default="x"), run_fake
    )
    table = {**evaluate_cli.VERIFIERS, "fake": fake}
    assert (
        evaluate_cli.verify_main(["--which", "fake", "--out-dir", str(tmp_path)], verifiers=table)
        == 0
    )
    assert calls == [("x", tmp_path)]
    # 'both' runs every entry; hml263 without predictions fails with a named error, exit 2
    status = evaluate_cli.verify_main(
        ["--which", "both", "--out-dir", str(tmp_path)], verifiers=table
    )
    assert status == 2 and len(calls) == 2
    assert "--hml263-pred" in capsys.readouterr().err


def test_resume_redoes_damaged_files_and_refuses_another_model(dataset, reference_run, tmp_path):
    """--skip-existing checks each existing file (loads, shape, finite) and redoes bad ones;
    generation.json records the model's fingerprint, and another model cannot resume."""
    out = tmp_path / "resume"
    gen = GroundTruthPlusNoise(dataset)
    gen.fingerprint = lambda: "a" * 64
    generate_test_split(gen, dataset, out, seed=3, progress=False, **SMALL)
    assert json.loads((out / "generation.json").read_text())["model_fingerprint"] == "a" * 64
    names = sorted(p.name for p in out.glob("*.npy"))
    truncated, nan, short = out / names[1], out / names[5], out / names[9]
    truncated.write_bytes(truncated.read_bytes()[:100])
    motion = np.load(nan)
    motion[3, 7] = np.nan
    np.save(nan, motion)
    np.save(short, np.load(short)[:-4])
    (out / "mm" / sorted(p.name for p in (out / "mm").glob("*.npy"))[0]).write_bytes(b"")
    summary = generate_test_split(
        gen, dataset, out, seed=3, skip_existing=True, progress=False, **SMALL
    )
    redone = {item["file"] for item in summary["redone"]}
    assert {truncated.name, nan.name, short.name} <= redone and len(redone) == 4
    assert summary["written"] == 4
    assert _files(out) == _files(reference_run[0])
    other = GroundTruthPlusNoise(dataset)
    other.fingerprint = lambda: "b" * 64
    with pytest.raises(InvalidInputError, match="predictions of another model"):
        generate_test_split(
            other, dataset, out, seed=3, skip_existing=True, progress=False, **SMALL
        )


def test_pipeline_fingerprint_follows_the_weights(tiny_artifact):
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu")
    first = pipe.fingerprint()
    assert first == MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu").fingerprint()
    with torch.no_grad():
        next(pipe.bundle.res_transformer_aux.parameters()).add_(1e-6)
    assert pipe.fingerprint() != first
    bf16 = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu", dtype=torch.bfloat16)
    assert bf16.fingerprint() != first


@pytest.mark.slow
def test_torchrun_shards_give_the_single_process_files(dataset, tiny_artifact, tmp_path):
    """The stated guarantee: under torchrun (2 processes, 1 thread each) the shards together write
    the files of a single-process run with the same thread count bit for bit, and those of a run
    with another thread count within float round-off (GEMM sums depend on the thread count; a
    different token would move a motion by far more)."""
    script = str(REPO / "scripts" / "mogents_t2m_h3d263.py")
    common = ["--model_path", str(tiny_artifact), "--data_root", str(dataset), "--seed", "3"]
    common += ["--batch_size", "8", "--mm_samples", "1", "--mm_repeats", "4", "--no_progress"]
    common += ["--device", "cpu", "--time_steps", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(out: Path, *prefix: str, threads: str | None = None) -> None:
        extra = {"OMP_NUM_THREADS": threads} if threads else {}
        done = subprocess.run(
            [*prefix, script, *common, "--out_dir", str(out)],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this python")
    run(tmp_path / "torchrun", str(torchrun), "--standalone", "--nproc_per_node=2")
    run(tmp_path / "one_thread", sys.executable, threads="1")
    run(tmp_path / "two_threads", sys.executable, threads="2")
    sharded, single = _files(tmp_path / "torchrun"), _files(tmp_path / "one_thread")
    assert list(tmp_path.glob("torchrun/_generation_summary_s0*_of_02.json"))
    assert sharded.keys() == single.keys() and len(sharded) > 40
    assert sharded == single  # bitwise at equal thread counts
    other = tmp_path / "two_threads"
    for name in sharded:
        a = np.load(tmp_path / "torchrun" / name)
        np.testing.assert_allclose(a, np.load(other / name), atol=1e-4, rtol=0, err_msg=name)


def test_no_progress_silences_the_pipelines_bar_too(dataset, tiny_artifact, tmp_path, capfd):
    from hftrainer_mogents.cli.split_generation import generation_main
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu")
    argv = ["--data_root", str(dataset), "--out_dir", str(tmp_path / "p"), "--seed", "3"]
    argv += ["--batch_size", "16", "--mm_samples", "0", "--time_steps", "1", "--no_progress"]
    assert generation_main(argv, generator_factory=lambda args: pipe) == 0
    err = capfd.readouterr().err
    assert "it/s" not in err and "s/it" not in err and "%|" not in err, err
