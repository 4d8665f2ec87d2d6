"""SMPL body-model files: finding and reading them, and the arrays the joints depend on.

A model is read from a ``.npz`` or a chumpy-free ``.pkl`` without running pickled code; the
official chumpy ``.pkl`` is converted once by :mod:`hftrainer_mogents.convert.smpl_model` (with
:func:`read_smpl_pickle`, the one reader of SMPL pickles). The bridge uses the neutral model with
betas 0, so only the rest joints matter here (:meth:`SMPLModel.rest_joints`); :func:`smplx_model`
builds the full ``smplx.SMPL`` for comparisons.

:func:`read_smpl_pickle` reads the pickles with a restricted unpickler: numpy arrays are rebuilt,
the chumpy and scipy sparse objects become inert records, and their stored arrays are taken out (a
chumpy leaf keeps its value in ``x``; a sparse matrix in ``data/indices/indptr``). Any other class
the file names is refused.
"""

from __future__ import annotations

import functools
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    InvalidInputError,
    MissingDependencyError,
)
from hftrainer_mogents.motion import hml263
from hftrainer_mogents.utils.safe_pickle import PickledObject, numpy_array_globals

__all__ = [
    "NUM_JOINTS",
    "SMPL_PARENTS",
    "SMPL_JOINT_NAMES",
    "SMPL_KEYS",
    "CHUMPY_HOWTO",
    "SMPLModel",
    "find_smpl_model",
    "read_smpl_pickle",
    "load_smpl_model",
    "resolve_model",
    "smplx_model",
]

NUM_JOINTS = hml263.NUM_JOINTS  # the body joints: SMPL's first 22, HumanML3D's skeleton
# parents of the 24 SMPL joints (the 22 body joints followed by the two hands, on the wrists)
SMPL_PARENTS = [*hml263.PARENTS, 20, 21]
SMPL_JOINT_NAMES = [*hml263.JOINT_NAMES, "left_hand", "right_hand"]

_MODEL_KEYS = ("v_template", "shapedirs", "J_regressor", "kintree_table")

# the arrays a SMPL body model needs (smplx reads these); others in the file are dropped
SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
_OPTIONAL_KEYS = ("J",)

CHUMPY_HOWTO = (
    "Convert it once, without chumpy: "
    "`mogents convert-smpl-model {src} {dst}` "
    "(reads the file with a restricted unpickler; nothing in it is executed)."
)


def _stub(module: str, name: str) -> type[PickledObject]:
    return type(name, (PickledObject,), {"qualname": f"{module}.{name}"})


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    """``copy_reg._reconstructor`` limited to our inert records (py2 protocol 0/1 objects)."""
    if not (isinstance(cls, type) and issubclass(cls, PickledObject)):
        raise pickle.UnpicklingError(f"refused to reconstruct {cls!r}")
    return cls()


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The numpy globals of arrays and scalars, under numpy 1.x and 2.x names and every pickle
    protocol (protocol 5 writes ``numeric._frombuffer``): the restricted unpickler's list."""
    return numpy_array_globals()


class _SMPLUnpickler(pickle.Unpickler):
    def __init__(self, fh: Any, allow_chumpy: bool) -> None:
        super().__init__(fh, encoding="latin1")  # the official files were pickled by Python 2
        self._allowed = _numpy_globals()
        self._allowed[("copy_reg", "_reconstructor")] = _reconstructor
        self._allowed[("copyreg", "_reconstructor")] = _reconstructor
        for name in ("object", "set", "frozenset", "list", "dict", "tuple", "slice", "complex"):
            for module in ("builtins", "__builtin__"):  # protocols < 3 write __builtin__
                self._allowed[(module, name)] = getattr(__import__("builtins"), name)
        # Python 3 pickles (protocol < 3) write bytes as _codecs.encode(str, "latin1")
        self._allowed[("_codecs", "encode")] = __import__("_codecs").encode
        self._allow_chumpy = allow_chumpy
        self.stubbed: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if self._allow_chumpy and (
            module.split(".")[0] == "chumpy" or module.startswith("scipy.sparse")
        ):
            self.stubbed.add(f"{module}.{name}")
            return _stub(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")


def _state_dict(obj: PickledObject) -> dict[str, Any]:
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        state = {**(state[0] or {}), **state[1]}  # (dict, slots) form
    return state if isinstance(state, dict) else {}


def _to_array(key: str, value: Any, path: Path) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, PickledObject):
        state = _state_dict(value)
        if value.qualname.startswith("scipy.sparse"):
            try:
                shape = tuple(int(s) for s in state["_shape"])
                data, indices, indptr = state["data"], state["indices"], state["indptr"]
            except KeyError as err:
                raise ArtifactFormatError(
                    f"{path}: {key} is a {value.qualname} without {err} in its state"
                ) from err
            dense = np.zeros(shape, dtype=np.asarray(data).dtype)
            csc = "csc" in value.qualname.rsplit(".", 1)[-1]
            major = shape[1] if csc else shape[0]
            for i in range(major):
                lo, hi = int(indptr[i]), int(indptr[i + 1])
                if csc:
                    dense[indices[lo:hi], i] = data[lo:hi]
                else:
                    dense[i, indices[lo:hi]] = data[lo:hi]
            return dense
        if "x" in state and isinstance(state["x"], np.ndarray):
            return state["x"]  # a chumpy leaf (Ch): its value
        raise ArtifactFormatError(
            f"{path}: {key} is a {value.qualname} object whose value is not stored in the file "
            "(a computed chumpy expression); this file cannot be converted without chumpy"
        )
    try:
        return np.asarray(value)
    except Exception as err:  # noqa: BLE001 - report what the key held
        raise ArtifactFormatError(
            f"{path}: {key} holds {type(value).__name__}, not an array"
        ) from err


def read_smpl_pickle(
    path: str | os.PathLike[str], *, allow_chumpy: bool = True
) -> dict[str, np.ndarray]:
    """The arrays of a SMPL ``.pkl`` (chumpy or plain), read without executing pickled code.

    Args:
        path: the ``.pkl`` file.
        allow_chumpy: read chumpy/scipy-sparse objects as inert records and take their arrays out;
            when False such a file is refused with a message saying how to convert it.

    Returns:
        ``{key: array}`` for the keys of :data:`SMPL_KEYS` present (plus ``J``), dense float/int
        arrays.

    Raises:
        ArtifactNotFoundError: no such file.
        ArtifactFormatError: not a pickle, a refused class, a chumpy file when ``allow_chumpy`` is
            False, or a required array missing.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(f"SMPL model file not found: {path}")
    try:
        with open(path, "rb") as fh:
            unpickler = _SMPLUnpickler(fh, allow_chumpy)
            raw = unpickler.load()
    except pickle.UnpicklingError as err:
        message = str(err)
        if "chumpy" in message or "scipy.sparse" in message:
            dst = path.with_suffix(".npz")
            raise ArtifactFormatError(
                f"{path} is a chumpy pickle (the official SMPL release format), which is not "
                f"read at run time. " + CHUMPY_HOWTO.format(src=path, dst=dst)
            ) from err
        raise ArtifactFormatError(f"{path}: refused or unreadable SMPL pickle: {err}") from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise ArtifactFormatError(f"{path}: not a readable SMPL pickle ({err})") from err
    if not isinstance(raw, dict):
        raise ArtifactFormatError(f"{path}: expected a dict of arrays, got {type(raw).__name__}")
    out: dict[str, np.ndarray] = {}
    for key in SMPL_KEYS + _OPTIONAL_KEYS:
        if key in raw:
            out[key] = _to_array(key, raw[key], path)
    return out


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
