"""SMPL body-model files: finding and reading them, and the arrays the joints depend on.

A model is read from a ``.npz`` or a chumpy-free ``.pkl`` without running pickled code; the
official chumpy ``.pkl`` is converted once by :mod:`hftrainer_mogents.convert.smpl_model`. The
bridge uses the neutral model with betas 0, so only the rest joints matter here
(:meth:`SMPLModel.rest_joints`); :func:`smplx_model` builds the full ``smplx.SMPL`` for
comparisons.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.convert.smpl_model import read_smpl_pickle
from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    InvalidInputError,
    MissingDependencyError,
)
from hftrainer_mogents.motion import hml263

__all__ = [
    "NUM_JOINTS",
    "SMPL_PARENTS",
    "SMPL_JOINT_NAMES",
    "SMPLModel",
    "find_smpl_model",
    "load_smpl_model",
    "resolve_model",
    "smplx_model",
]

NUM_JOINTS = 22
# parents of the 24 SMPL joints (the 22 body joints followed by the two hands)
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
SMPL_JOINT_NAMES = [*hml263.JOINT_NAMES, "left_hand", "right_hand"]

_MODEL_KEYS = ("v_template", "shapedirs", "J_regressor", "kintree_table")


@dataclass(frozen=True)
class SMPLModel:
    """The arrays of a SMPL body model that the joints depend on (plus the rest, for smplx).

    Attributes:
        v_template: (V, 3) template vertices.
        shapedirs: (V, 3, NB) shape blend shapes.
        j_regressor: (24, V) dense joint regressor.
        parents: the 24 parents (root -1).
        arrays: every array read from the file (``posedirs``, ``weights``, ``f``, ...).
        path: where it was read from.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    j_regressor: np.ndarray
    parents: tuple[int, ...]
    arrays: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    path: str | None = None

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        """Rest joints ``J_regressor @ (v_template + shapedirs . betas)``.

        Args:
            betas: (NB',) shape coefficients (first ``NB'`` components), default zeros.

        Returns:
            (24, 3) float64.
        """
        verts = self.v_template.astype(np.float64)
        if betas is not None and np.any(betas):
            betas = np.asarray(betas, dtype=np.float64)
            nb = min(len(betas), self.shapedirs.shape[-1])
            # (V, 3, nb) . (nb,) -> (V, 3)
            verts = verts + self.shapedirs[..., :nb].astype(np.float64) @ betas[:nb]
        return self.j_regressor.astype(np.float64) @ verts


def find_smpl_model(model_dir: str | os.PathLike[str], gender: str = "neutral") -> Path:
    """The SMPL model file for ``gender`` under ``model_dir`` (or ``model_dir`` itself if a file).

    Looks for ``SMPL_{GENDER}.npz`` then ``.pkl``, in ``model_dir`` and ``model_dir/smpl``, then
    the official file names (``basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl``, ...). A sibling
    ``body_models_nochumpy`` folder (the zoo's layout) is searched first.

    Raises:
        ArtifactNotFoundError: nothing found; the message lists where it looked and what to do.
    """
    path = Path(model_dir)
    if path.is_file():
        return path
    g = gender.upper()
    names = [f"SMPL_{g}.npz", f"SMPL_{g}.pkl", f"smpl/SMPL_{g}.npz", f"smpl/SMPL_{g}.pkl"]
    if gender.lower() == "neutral":
        names += [
            "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
            "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
            "smpl/basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
        ]
    roots = [path]
    if path.name == "body_models":
        roots.insert(0, path.with_name("body_models_nochumpy"))
    looked = []
    for root in roots:
        for name in names:
            candidate = root / name
            looked.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise ArtifactNotFoundError(
        f"no SMPL {gender} model found under {path} (looked for: {', '.join(looked[:6])}, ...). "
        f"Download SMPL from https://smpl.is.tue.mpg.de (free registration), then put "
        f"SMPL_{g}.npz (or a chumpy-free SMPL_{g}.pkl) in {path}; an official chumpy .pkl is "
        f"converted once with `mogents convert-smpl-model <file.pkl> "
        f"{path / f'SMPL_{g}.npz'}`."
    )


def load_smpl_model(model_dir: str | os.PathLike[str], gender: str = "neutral") -> SMPLModel:
    """Read a SMPL model from a ``.npz`` or a chumpy-free ``.pkl`` (no pickled code runs).

    Args:
        model_dir: a folder (see :func:`find_smpl_model`) or the file itself.
        gender: ``"neutral"`` (the bridge's), ``"male"`` or ``"female"``.

    Returns:
        The model.

    Raises:
        ArtifactNotFoundError: no model file.
        ArtifactFormatError: a chumpy pickle (with the command that converts it), or missing
            arrays / wrong shapes.
    """
    path = find_smpl_model(model_dir, gender)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except ValueError as err:  # object arrays need pickle: refuse
            raise ArtifactFormatError(f"{path}: not a plain .npz of arrays ({err})") from err
    else:
        arrays = read_smpl_pickle(path, allow_chumpy=False)
    missing = [k for k in _MODEL_KEYS if k not in arrays]
    if missing:
        raise ArtifactFormatError(f"{path}: not a SMPL model file, missing arrays {missing}")
    v_template = np.asarray(arrays["v_template"], dtype=np.float64)
    shapedirs = np.asarray(arrays["shapedirs"])
    j_reg = np.asarray(arrays["J_regressor"], dtype=np.float64)
    kintree = np.asarray(arrays["kintree_table"])
    n_verts = v_template.shape[0]
    if v_template.shape != (n_verts, 3) or shapedirs.shape[:2] != (n_verts, 3):
        raise ArtifactFormatError(
            f"{path}: v_template {v_template.shape} and shapedirs {shapedirs.shape} do not match "
            "(expected (V, 3) and (V, 3, NB))"
        )
    if j_reg.shape != (24, n_verts) or kintree.shape != (2, 24):
        raise ArtifactFormatError(
            f"{path}: J_regressor {j_reg.shape} / kintree_table {kintree.shape}, expected "
            f"(24, {n_verts}) / (2, 24): not a SMPL (24-joint) model"
        )
    parents = tuple(-1 if i == 0 else int(p) for i, p in enumerate(kintree[0]))
    if list(parents[:NUM_JOINTS]) != SMPL_PARENTS[:NUM_JOINTS]:
        raise ArtifactFormatError(f"{path}: unexpected SMPL joint tree {parents}")
    return SMPLModel(v_template, shapedirs, j_reg, parents, arrays, str(path))


def smplx_model(model: SMPLModel, **kwargs: Any) -> Any:
    """A ``smplx.SMPL`` built from the same arrays (for comparisons; the bridge does not need it).

    Raises:
        MissingDependencyError: smplx is not installed.
    """
    try:
        import smplx
        from smplx.utils import Struct
    except ImportError as err:
        raise MissingDependencyError(
            'smplx is needed here: pip install "hftrainer-mogents[bridge]"'
        ) from err
    arrays = dict(model.arrays)
    n_verts = model.v_template.shape[0]
    arrays.setdefault("posedirs", np.zeros((n_verts, 3, 207), dtype=np.float32))
    arrays.setdefault("weights", np.eye(24, dtype=np.float32)[np.zeros(n_verts, dtype=int)])
    arrays.setdefault("f", np.zeros((1, 3), dtype=np.int64))
    arrays["J_regressor"] = model.j_regressor
    model_path = os.path.dirname(model.path or ".")
    return smplx.SMPL(model_path=model_path, data_struct=Struct(**arrays), **kwargs)


@functools.lru_cache(maxsize=4)
def _cached_model(path: str, mtime: float) -> SMPLModel:
    return load_smpl_model(path)


def resolve_model(
    model: SMPLModel | None = None, model_dir: str | os.PathLike[str] | None = None
) -> SMPLModel:
    """``model`` if given, else the model under ``model_dir`` (cached while the file is unchanged).

    Raises:
        InvalidInputError: neither was given.
    """
    if model is not None:
        return model
    if model_dir is None:
        raise InvalidInputError(
            "the SMPL bridge needs the SMPL neutral model: pass model=... or model_dir=... "
            "(a folder holding SMPL_NEUTRAL.npz or a chumpy-free SMPL_NEUTRAL.pkl)"
        )
    path = find_smpl_model(model_dir)
    return _cached_model(str(path.resolve()), path.stat().st_mtime)
