"""motion.smpl135: model loading, joints-only FK against smplx, batched IK."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.motion import hml263, smpl135
from hftrainer_mogents.motion.rotations import axis_angle_to_matrix

NAMES = ["walk_turn", "sway_arms", "short_spin"]


@pytest.fixture(scope="module")
def folder(fixtures_dir: Path) -> Path:
    return require_fixture(fixtures_dir / "ms272_tiny")


@pytest.fixture(scope="module")
def model(folder: Path) -> smpl135.SMPLModel:
    return smpl135.load_smpl_model(folder / "smpl")


def _motion(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / "motions" / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def test_fk_equals_smplx_joints(model: smpl135.SMPLModel) -> None:
    """Our joints-only FK against smplx's full forward (vertices, LBS, joint regression)."""
    gen = torch.Generator().manual_seed(0)
    n = 16
    go = 0.8 * torch.randn(n, 3, generator=gen)
    body = 0.5 * torch.randn(n, 69, generator=gen)
    transl = torch.randn(n, 3, generator=gen)
    betas = torch.zeros(n, 10)
    betas[8:, :2] = torch.randn(8, 2, generator=gen)  # half the batch with a shape too
    ref = smpl135.smplx_model(model)(
        global_orient=go, body_pose=body, transl=transl, betas=betas
    ).joints[:, :24]
    rot = axis_angle_to_matrix(torch.cat((go[:, None], body.reshape(n, 23, 3)), 1).double())
    rest = torch.stack([torch.from_numpy(model.rest_joints(b.numpy())) for b in betas])
    ours = smpl135.forward_kinematics(rot, rest, smpl135.SMPL_PARENTS, transl.double()).joints
    torch.testing.assert_close(ours, ref.double(), atol=1e-5, rtol=0)
    # the 22-joint chain the IK uses gives the same first 22 joints
    ours22 = smpl135.forward_kinematics(rot[:, :22], rest[:, :22], transl=transl.double()).joints
    torch.testing.assert_close(ours22, ours[:, :22])


@pytest.mark.parametrize("name", NAMES)
def test_fk_reproduces_fixture_joints(folder: Path, model: smpl135.SMPLModel, name: str) -> None:
    d = _motion(folder, name)
    rot = torch.from_numpy(d["local_rotmats22"])
    transl = torch.from_numpy(d["smpl_transl"])
    rest = torch.from_numpy(model.rest_joints())
    joints = smpl135.forward_kinematics(rot, rest[:22], transl=transl).joints
    np.testing.assert_allclose(joints.numpy(), d["fk_joints24"][:, :22], atol=1e-5, rtol=0)
    m135 = torch.from_numpy(d["motion135_cols"])
    np.testing.assert_allclose(
        smpl135.smpl135_joints(m135, rest).numpy(), d["fk_joints24"][:, :22], atol=1e-5, rtol=0
    )
    packed = smpl135.smpl_params_to_motion135(transl, rot)
    torch.testing.assert_close(packed, m135)


def test_ik_recovers_fixture_motions_from_joints(folder: Path, model: smpl135.SMPLModel) -> None:
    """The default fit (80 Adam steps) on the fixture joints at 30 fps, all clips in one batch."""
    cfg = smpl135.IKConfig(source_fps=30, target_fps=30, floor_align=False)
    clips = [
        smpl135.prepare_clip(_motion(folder, n)["fk_joints24"][:, :22].astype(np.float64), cfg, n)
        for n in NAMES
    ]
    results = smpl135.fit_clips(clips, model, cfg)
    for name, res in zip(NAMES, results):
        gt = _motion(folder, name)["fk_joints24"][:, :22]
        err_mm = np.linalg.norm(res.fitted_joints - gt, axis=-1).mean() * 1000
        assert err_mm < 5.0, f"{name}: {err_mm:.2f} mm"
        assert res.motion_135.shape == (len(gt), 135)
        assert abs(res.mean_mpjpe_mm - err_mm) < 1e-3


def test_ik_refinement_fixes_a_perturbed_start_and_is_batch_independent(
    folder: Path, model: smpl135.SMPLModel
) -> None:
    rest = torch.from_numpy(model.rest_joints()).float()
    gen = torch.Generator().manual_seed(3)
    targets, inits = [], []
    for name in NAMES:
        t = torch.from_numpy(_motion(folder, name)["fk_joints24"][:, :22]).float()
        init = smpl135.init_rotations_from_joints(t.double(), rest.double()).float()
        noise = axis_angle_to_matrix(0.1 * torch.randn(init.shape[:-2] + (3,), generator=gen))
        targets.append(t)
        inits.append(init @ noise)
    frames = max(len(t) for t in targets)
    target = torch.zeros(3, frames, 22, 3)
    init = torch.eye(3).repeat(3, frames, 22, 1, 1)
    for k, (t, r) in enumerate(zip(targets, inits)):
        target[k, : len(t)] = t
        init[k, : len(t)] = r
    lengths = torch.tensor([len(t) for t in targets])
    start = smpl135.fit_smpl_to_joints(target, rest, init, lengths, iters=0)
    fit = smpl135.fit_smpl_to_joints(target, rest, init, lengths, iters=80)
    for k in range(3):
        before = start.mpjpe[k, : lengths[k]].mean().item() * 1000
        after = fit.mpjpe[k, : lengths[k]].mean().item() * 1000
        assert before > 50 and after < before / 10, (before, after)
        alone = smpl135.fit_smpl_to_joints(
            target[k : k + 1, : lengths[k]], rest, init[k : k + 1, : lengths[k]]
        )
        torch.testing.assert_close(
            alone.body_pose[0], fit.body_pose[k, : lengths[k]], atol=1e-5, rtol=0
        )
        assert (fit.mpjpe[k, lengths[k] :] == 0).all()  # padding untouched


@pytest.mark.parametrize("rotation_init", ["joints", "hml263"])
def test_hml263_to_smpl135_end_to_end(
    folder: Path, model: smpl135.SMPLModel, rotation_init: str
) -> None:
    """263 features made from the fixture's 20 fps joints, back to SMPL at 30 fps."""
    # keep the fixture model's bones: the fit error measures the IK, not the skeleton gap
    features = hml263.joints_to_hml263(
        _motion(folder, "walk_turn")["fk_joints22_20fps"], skeleton="keep"
    )
    cfg = smpl135.IKConfig(rotation_init=rotation_init)  # type: ignore[arg-type]
    res = smpl135.fit_clips([smpl135.prepare_clip(features, cfg)], model, cfg)[0]
    assert res.rotation_init == rotation_init
    assert res.motion_135.shape == (88, 135)  # round(59 * 1.5) = 88 frames at 30 fps
    assert res.target_joints[..., 1].min() == pytest.approx(0.0, abs=1e-6)  # floor-aligned
    limit = 5.0 if rotation_init == "joints" else 15.0
    assert res.mean_mpjpe_mm < limit
    m135 = smpl135.hml263_to_smpl135(features, model=model, config=cfg)
    np.testing.assert_allclose(m135, res.motion_135, atol=1e-6)


@pytest.mark.parametrize(
    ("motion", "match"),
    [
        (np.zeros((10, 262), np.float32), r"\(T, 263\)"),
        (np.zeros((2, 263), np.float32), "at least 4"),
        (np.full((10, 22, 3), np.nan), "NaN"),
        (np.zeros((10, 263), np.int64), "floating-point"),
    ],
    ids=["wrong-width", "too-short", "nan", "integer"],
)
def test_bad_clips_are_refused(motion: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        smpl135.prepare_clip(motion)


def test_model_files(folder: Path, tmp_path: Path) -> None:
    import pickle

    with np.load(folder / "smpl" / "SMPL_NEUTRAL.npz") as data:
        arrays = {k: data[k] for k in data.files}
    # a chumpy-free pickle in the zoo's layout <dir>/smpl/SMPL_NEUTRAL.pkl
    (tmp_path / "smpl").mkdir()
    with open(tmp_path / "smpl" / "SMPL_NEUTRAL.pkl", "wb") as fh:
        pickle.dump(arrays, fh)
    from_pkl = smpl135.load_smpl_model(tmp_path)
    assert from_pkl.path.endswith("SMPL_NEUTRAL.pkl")
    np.testing.assert_allclose(
        from_pkl.rest_joints(), smpl135.load_smpl_model(folder / "smpl").rest_joints()
    )
    # protocol 5 (Python's highest, a possible future default) writes numpy's _frombuffer
    for protocol in (2, pickle.HIGHEST_PROTOCOL, 5):
        with open(tmp_path / "smpl" / "SMPL_NEUTRAL.pkl", "wb") as fh:
            pickle.dump(arrays, fh, protocol=protocol)
        again = smpl135.load_smpl_model(tmp_path)
        np.testing.assert_array_equal(again.rest_joints(), from_pkl.rest_joints())
    with pytest.raises(ArtifactNotFoundError, match="SMPL_NEUTRAL.npz") as err:
        smpl135.load_smpl_model(tmp_path / "empty")
    assert "mogents convert-smpl-model <file.pkl>" in str(err.value)
    with pytest.raises(InvalidInputError, match="model_dir"):
        smpl135.hml263_to_smpl135(np.zeros((10, 263), np.float32))
