"""evaluation.metrics: the fixture's metric values (reference code outputs) and known answers."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.evaluation import metrics

TOL = 1e-6


@pytest.fixture(scope="module")
def ref(fixtures_dir):
    from conftest import require_fixture

    root = require_fixture(fixtures_dir / "hml263_eval_tiny")
    with open(root / "reference.json") as fh:
        meta = json.load(fh)
    return dict(np.load(root / "reference.npz")), meta


def _close(ours, theirs, what, tol=TOL):
    err = float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - np.asarray(theirs))))
    assert err <= tol, f"{what}: max abs diff {err:.3g} > {tol}"


# ------------------------------------------------------------------ fixture values (reference code)


def test_distance_matrix_and_top_k_match_reference(ref):
    arrays, meta = ref
    dist = metrics.euclidean_distance_matrix(arrays["rp_text"], arrays["rp_motion"])
    assert dist.dtype == np.float32
    _close(dist, arrays["rp_dist"], "distance matrix", tol=2e-6)
    np.testing.assert_array_equal(metrics.top_k_hits(dist), arrays["rp_topk_mat"].astype(bool))
    counts, traces = metrics.retrieval_counts(arrays["rp_text"][None], arrays["rp_motion"][None])
    assert counts[0].tolist() == meta["rprecision_single"]["counts"]
    _close(traces[0], meta["rprecision_single"]["matching_trace"], "matching trace", tol=2e-5)


def test_fid_matches_reference(ref):
    arrays, meta = ref
    # the reference computed these statistics from float32 copies of the stored float64 sets
    set_a = arrays["fid_set_a"].astype(np.float32)
    set_b = arrays["fid_set_b"].astype(np.float32)
    mu, cov = metrics.activation_statistics(set_a)
    _close(mu, arrays["fid_mu_a"], "mu", tol=0)
    _close(cov, arrays["fid_cov_a"], "cov", tol=0)
    for method in ("sqrtm", "eigh"):
        _close(
            metrics.fid(set_a, set_b, method=method), meta["fid_sets"]["value"], f"FID ({method})"
        )
    _close(metrics.fid(set_a, set_a), meta["fid_sets"]["value_same_set"], "FID(a, a)")


def test_diversity_and_multimodality_match_reference(ref):
    arrays, meta = ref
    div = metrics.diversity(
        arrays["div300_activation"],
        300,
        indices=(arrays["div300_first_idx"], arrays["div300_second_idx"]),
    )
    _close(div, meta["diversity_300"]["value"], "diversity")
    mm = metrics.multimodality(
        arrays["mm_activation"], 10, indices=(arrays["mm_first_idx"], arrays["mm_second_idx"])
    )
    _close(mm, meta["multimodality"]["value"], "multimodality")


def _repeat_embeddings(arrays, r):
    def cat(name):
        return np.concatenate([arrays[f"rep{r:02d}_b{b}_{name}"] for b in range(2)])

    return cat("et"), cat("em"), cat("em_pred")


def test_protocol_repeats_and_summary_match_reference(ref):
    """All 20 repeats of the reference protocol, from its embeddings and recorded draws."""
    arrays, meta = ref
    protocol = meta["protocol"]
    repeats = []
    for r, rec in enumerate(protocol["repeats"]):
        text, real, pred = _repeat_embeddings(arrays, r)
        out = metrics.embedding_metrics(
            text,
            real,
            pred,
            batch_size=protocol["batch_size"],
            diversity_times=protocol["diversity_times"],
            diversity_indices={
                "real": rec["diversity_real_indices"],
                "pred": rec["diversity_pred_indices"],
            },
        )
        assert out["n_samples"] == rec["nb_sample"]
        for ours, theirs in [
            ("fid", "fid"),
            ("r_precision", "R_precision"),
            ("r_precision_real", "R_precision_real"),
            ("matching_score", "matching_score_pred"),
            ("matching_score_real", "matching_score_real"),
            ("diversity", "diversity"),
            ("diversity_real", "diversity_real"),
        ]:
            _close(out[ours], rec[theirs], f"repeat {r} {ours}")
        for b, batch in enumerate(rec["batches"]):
            for side, emb in (("real", "em"), ("pred", "em_pred")):
                counts, traces = metrics.retrieval_counts(
                    arrays[f"rep{r:02d}_b{b}_et"][None], arrays[f"rep{r:02d}_b{b}_{emb}"][None]
                )
                assert counts[0].tolist() == batch[f"R_counts_{side}"], (r, b, side)
                _close(traces[0], batch[f"matching_trace_{side}"], "trace", tol=3e-5)
        repeats.append(out)

    summary = metrics.summarize_repeats(repeats)
    ref_summary = protocol["summary"]
    pairs = {
        "fid": "fid",
        "diversity": "diversity",
        "matching_score": "matching",
        "diversity_real": "diversity_real",
        "matching_score_real": "matching_real",
    }
    for ours, theirs in pairs.items():
        _close(summary[ours]["mean"], ref_summary[theirs]["mean"], f"{ours} mean")
        _close(summary[ours]["conf"], ref_summary[theirs]["conf"], f"{ours} conf")
    for k, name in enumerate(("top1", "top2", "top3")):
        _close(summary["r_precision"]["mean"][k], ref_summary[name]["mean"], f"{name} mean")
        _close(summary["r_precision"]["conf"][k], ref_summary[name]["conf"], f"{name} conf")
    _close(summary["r_precision_real"]["mean"][2], ref_summary["top3_real"]["mean"], "top3 real")
    _close(summary["r_precision_real"]["conf"][2], ref_summary["top3_real"]["conf"], "conf real")


# ------------------------------------------------------------------ known answers


def test_identical_sets_give_zero_fid():
    x = np.random.default_rng(0).normal(size=(200, 12))
    for method in ("sqrtm", "eigh"):
        assert abs(metrics.fid(x, x, method=method)) < 1e-9


def test_frechet_distance_of_known_gaussians():
    # diagonal covariances: |m|^2 + sum(a + b - 2 sqrt(a b))
    a = np.array([1.0, 4.0, 9.0])
    b = np.array([4.0, 1.0, 9.0])
    m = np.array([1.0, 2.0, -2.0])
    expected = 9.0 + (1 + 4 - 4) + (4 + 1 - 4) + (9 + 9 - 18)
    for method in ("sqrtm", "eigh"):
        got = metrics.frechet_distance(np.zeros(3), np.diag(a), m, np.diag(b), method=method)
        assert got == pytest.approx(expected, abs=1e-10)


def test_perfect_pairing_gives_r_precision_one():
    rng = np.random.default_rng(1)
    text = rng.normal(size=(96, 16)).astype(np.float32)
    scores = metrics.retrieval_scores(text, text.copy())
    assert scores.r_precision.tolist() == [1.0, 1.0, 1.0]
    assert scores.n_samples == 96
    assert scores.matching_score < 1e-2  # only rounding of |a|^2 + |a|^2 - 2 a.a


def test_derangement_gives_known_ranks():
    # motions are the texts shifted by one inside each batch: the true match is never nearest
    # and exactly the second nearest when the texts lie on a line with equal spacing
    n = 32
    text = np.zeros((n, 2), dtype=np.float64)
    text[:, 0] = np.arange(n) * 10.0
    motion = text + np.array([6.0, 0.0])  # every motion closer to the next text than to its own
    hits = metrics.top_k_hits(metrics.euclidean_distance_matrix(text, motion))
    # text 0's own motion (distance 6) is its nearest; every other text has one closer (4)
    assert hits[0].tolist() == [True, True, True]
    assert hits[1:, 0].sum() == 0 and hits[1:, 1].all()


def test_ties_are_broken_by_index():
    # all motions identical: every distance in a row ties, rank of row i is i
    text = np.random.default_rng(2).normal(size=(32, 4))
    motion = np.zeros_like(text)
    hits = metrics.top_k_hits(metrics.euclidean_distance_matrix(text, motion))
    assert hits[:, 0].tolist() == [True] + [False] * 31
    assert hits.sum(axis=0).tolist() == [1, 2, 3]


def test_retrieval_drops_the_last_partial_batch():
    rng = np.random.default_rng(3)
    text = rng.normal(size=(70, 8))
    scores = metrics.retrieval_scores(text, text + 0.1 * rng.normal(size=text.shape))
    assert scores.n_samples == 64
    full = metrics.retrieval_scores(text[:64], text[:64])
    assert full.n_samples == 64


def _loop_reference(text, motion, batch_size=32, top_k=3):
    """A plain per-batch loop (argsort of each row), independent of the vectorised code."""
    counts = np.zeros(top_k)
    total = 0.0
    for start in range(0, len(text) - batch_size + 1, batch_size):
        t = text[start : start + batch_size].astype(np.float64)
        m = motion[start : start + batch_size].astype(np.float64)
        dist = np.linalg.norm(t[:, None, :] - m[None, :, :], axis=-1)
        order = np.argsort(dist, axis=1, kind="stable")
        for i in range(batch_size):
            rank = int(np.where(order[i] == i)[0][0])
            counts += rank < np.arange(1, top_k + 1)
        total += np.trace(dist)
    used = (len(text) // batch_size) * batch_size
    return counts / used, total / used


@pytest.mark.parametrize("width", [5, 64], ids=["D5", "D64"])
def test_vectorised_retrieval_equals_a_plain_loop(width):
    rng = np.random.default_rng(width)
    text = rng.normal(size=(160, width))
    motion = text + rng.normal(size=text.shape) * 1.5
    scores = metrics.retrieval_scores(text, motion)
    r_loop, match_loop = _loop_reference(text, motion)
    np.testing.assert_allclose(scores.r_precision, r_loop)
    assert scores.matching_score == pytest.approx(match_loop, rel=1e-9)


def test_diversity_and_multimodality_known_values():
    act = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert metrics.diversity(act, 2, indices=([0, 1], [2, 2])) == pytest.approx((10 + 5) / 2)
    mm = np.stack([act, act * 2])  # (2 texts, 3 generations, 2)
    assert metrics.multimodality(mm, 1, indices=([0], [1])) == pytest.approx((5 + 10) / 2)
    # drawn pairs are reproducible and distinct within a draw
    first, second = metrics.draw_pairs(np.random.default_rng(0), 10, 10)
    assert sorted(first.tolist()) == list(range(10)) == sorted(second.tolist())


def test_confidence_interval_formula():
    mean, conf = metrics.confidence_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert conf == pytest.approx(1.96 * math.sqrt(1.25) / 2)
    means, confs = metrics.confidence_interval([[1.0, 10.0], [3.0, 10.0]])
    assert means == [2.0, 10.0] and confs[1] == 0.0


def test_replicate_is_seeded_and_repeat_draws_are_independent_of_count():
    rng = np.random.default_rng(4)
    text = rng.normal(size=(128, 8)).astype(np.float32)
    real = text + rng.normal(size=text.shape).astype(np.float32)
    pred = text + 2 * rng.normal(size=text.shape).astype(np.float32)
    a = metrics.replicate_embeddings(text, real, pred, n_repeats=3, seed=7, diversity_times=50)
    b = metrics.replicate_embeddings(text, real, pred, n_repeats=3, seed=7, diversity_times=50)
    c = metrics.replicate_embeddings(text, real, pred, n_repeats=2, seed=7, diversity_times=50)
    assert a == b
    assert a["repeats"][:2] == c["repeats"]
    other = metrics.replicate_embeddings(text, real, pred, n_repeats=3, seed=8, diversity_times=50)
    assert other["repeats"][0]["diversity"] != a["repeats"][0]["diversity"]
    # FID does not depend on the shuffle; R-precision does
    fids = [rep["fid"] for rep in a["repeats"]]
    assert max(fids) - min(fids) < 1e-6 * fids[0]  # float32 means: summation order only
    assert set(a["summary"]) >= {"fid", "r_precision", "matching_score", "diversity"}
    assert len(a["summary"]["r_precision"]["mean"]) == 3


def test_bad_inputs_are_named():
    x = np.zeros((40, 4))
    with pytest.raises(InvalidInputError, match="shape"):
        metrics.retrieval_scores(x, np.zeros((40, 5)))
    with pytest.raises(InvalidInputError, match="one batch"):
        metrics.retrieval_scores(x[:10], x[:10])
    with pytest.raises(InvalidInputError, match="distinct indices"):
        metrics.diversity(x, 100, rng=np.random.default_rng(0))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InvalidInputError, match="1 row"):
        metrics.embedding_metrics(x, bad, diversity_times=10)
    with pytest.raises(InvalidInputError, match="method"):
        metrics.fid(np.eye(4), np.eye(4), method="magic")


def test_metrics_import_no_torch():
    code = (
        "import sys; import hftrainer_mogents.evaluation.metrics; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
