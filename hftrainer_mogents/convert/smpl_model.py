"""Reading SMPL model files without running pickled code, and converting them to ``.npz``.

The official SMPL download ships ``.pkl`` files that hold ``chumpy`` objects (``shapedirs``,
``v_template``, ...) and a ``scipy.sparse`` ``J_regressor``. Loading those the usual way needs
chumpy installed (which breaks on modern numpy and Python) and runs whatever code the pickle
names. :func:`read_smpl_pickle` instead reads them with a restricted unpickler: numpy arrays are
rebuilt, the chumpy and scipy sparse objects become inert records, and their stored arrays are
taken out (a chumpy leaf keeps its value in ``x``; a sparse matrix in ``data/indices/indptr``).
Any other class the file names is refused.

Convert once, then point the bridge at the ``.npz``::

    python -m hftrainer_mogents.convert.smpl_model SMPL_NEUTRAL.pkl body_models/SMPL_NEUTRAL.npz
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.convert.safe_pickle import PickledObject
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError
from hftrainer_mogents.utils.io import atomic_save_npz

__all__ = ["SMPL_KEYS", "CHUMPY_HOWTO", "read_smpl_pickle", "convert_smpl_pickle"]

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
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for base in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(base, "_reconstruct")] = _reconstruct
        allowed[(base, "scalar")] = scalar
    for name in ("f4", "f8", "i4", "i8", "u4", "u8"):
        cls = type(np.dtype(name))
        allowed[("numpy.dtypes", cls.__name__)] = cls
    return allowed


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


def convert_smpl_pickle(
    src: str | os.PathLike[str], dst: str | os.PathLike[str]
) -> dict[str, np.ndarray]:
    """Write the arrays of a SMPL ``.pkl`` (chumpy or plain) to a plain ``.npz`` (atomically).

    Args:
        src: the official ``.pkl`` file.
        dst: the ``.npz`` to write (e.g. ``body_models/SMPL_NEUTRAL.npz``).

    Returns:
        The arrays written.
    """
    arrays = read_smpl_pickle(src, allow_chumpy=True)
    missing = [
        k for k in ("v_template", "shapedirs", "J_regressor", "kintree_table") if k not in arrays
    ]
    if missing:
        raise ArtifactFormatError(f"{src}: not a SMPL model file, missing {missing}")
    atomic_save_npz(dst, **arrays)
    return arrays


if __name__ == "__main__":  # pragma: no cover - the command line lives in hftrainer_mogents.cli
    from hftrainer_mogents.cli.convert import smpl_model_main

    raise SystemExit(smpl_model_main())
