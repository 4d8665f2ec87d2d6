"""Reading third-party pickled files without running their code.

Official checkpoints come as pickles: MoGenTS ``.tar`` files (torch zip format with numpy scalars
inside), OpenAI's CLIP ``.pt`` (a TorchScript archive), GloVe ``.pkl`` vocabularies, Lightning
``.ckpt`` files. They are read once, by the converters, through one of (the SMPL model files'
own reader, :mod:`hftrainer_mogents.motion.smpl135.body_model`, records chumpy objects as
:class:`PickledObject` too):

- :func:`torch_load_weights_only`: ``torch.load(weights_only=True)`` plus a minimal allow-list
  (the numpy scalar and dtype globals that MoGenTS stores its best FID as, under both numpy 1.x
  and 2.x module names). Never ``weights_only=False``.
- :func:`read_torch_zip`: our own restricted unpickler over the torch zip format. Tensors are
  rebuilt from the raw storages; any other global is replaced by an inert record
  (:class:`PickledObject`) that keeps its constructor arguments and state but runs nothing. Used
  for TorchScript archives and checkpoints whose metadata holds arbitrary classes.
- :func:`restricted_pickle_load`: plain pickles restricted to builtin containers and scalars
  (plus numpy arrays and scalars when asked).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError

__all__ = [
    "PickledObject",
    "torch_load_weights_only",
    "read_torch_zip",
    "restricted_pickle_load",
    "numpy_array_globals",
    "find_state_dicts",
]


def _check_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(f"checkpoint file not found: {path}")
    return path


def _numpy_allowlist() -> list[Any]:
    """numpy globals a MoGenTS checkpoint legitimately references (its ``value``/``best_value``
    numpy.float64), under the module names of numpy 1.x and 2.x."""
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    dtype_classes = [type(np.dtype(name)) for name in ("float64", "float32", "int64", "int32")]
    return [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        *dtype_classes,
    ]


def torch_load_weights_only(
    path: str | os.PathLike[str], *, extra_globals: Iterable[Any] = ()
) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")`` with the numpy scalar globals of
    MoGenTS checkpoints allowed (and ``extra_globals``, torch ``safe_globals`` entries).

    Raises:
        ArtifactNotFoundError: the file does not exist.
        ArtifactFormatError: the file is not a torch checkpoint, or references a global outside the
            allow-list (named in the message; the file is not loaded).
    """
    import torch

    path = _check_file(path)
    allowed = [*_numpy_allowlist(), *extra_globals]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ArtifactFormatError(
            f"{path}: refused to unpickle (only tensors, containers and numpy scalars are "
            f"allowed): {str(err).splitlines()[0]}"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise ArtifactFormatError(
            f"{path}: not a readable torch checkpoint, truncated or corrupted? ({err})"
        ) from err


class PickledObject:
    """An inert stand-in for a pickled object of a class we do not import.

    Attributes:
        qualname: ``"module.Class"`` the pickle named.
        args: constructor arguments the pickle passed.
        state: what the pickle gave to ``__setstate__`` (usually a dict of attributes).
    """

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None
        self.items: list[Any] = []

    def __setstate__(self, state: Any) -> None:
        self.state = state

    # list/dict subclasses pickle their items through append / __setitem__
    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Iterable[Any]) -> None:
        self.items.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items.append((key, value))

    def __repr__(self) -> str:
        return f"<PickledObject {self.qualname}>"


def _stub_class(module: str, name: str) -> type[PickledObject]:
    return type(name, (PickledObject,), {"qualname": f"{module}.{name}"})


_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, *args):  # noqa: ANN001
    import torch

    if len(size) == 0:
        return storage[storage_offset].clone()
    return torch.as_strided(storage, tuple(size), tuple(stride), storage_offset)


def _rebuild_parameter(data, requires_grad=False, *args):  # noqa: ANN001
    return data


_BUILTIN_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
}


class _RestrictedTorchUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, archive: zipfile.ZipFile, prefix: str, stub: bool):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._stub = stub
        self._storages: dict[str, Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _BUILTIN_GLOBALS:
            return _BUILTIN_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name == "Size":
            return tuple
        if self._stub:
            return _stub_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")

    def persistent_load(self, pid: Any) -> Any:
        import torch

        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, _numel = pid[:5]
        type_name = getattr(storage_type, "name", None)
        if type_name not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        if key not in self._storages:
            data = self._archive.read(f"{self._prefix}/data/{key}")
            dtype = getattr(torch, _STORAGE_DTYPES[type_name])
            self._storages[key] = torch.frombuffer(bytearray(data), dtype=dtype)
        return self._storages[key]


def read_torch_zip(
    path: str | os.PathLike[str], *, pickle_name: str = "data.pkl", stub_unknown: bool = True
) -> Any:
    """Unpickle ``<archive>/<pickle_name>`` of a torch zip file (``torch.save`` output or a
    TorchScript archive) without importing or running any class it names.

    Tensors come back as CPU tensors; other objects as :class:`PickledObject` records when
    ``stub_unknown`` (else they are refused).

    Raises:
        ArtifactNotFoundError: the file does not exist.
        ArtifactFormatError: not a torch zip file, or a refused global.
    """
    path = _check_file(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ArtifactFormatError(
            f"{path}: not a torch zip checkpoint (legacy torch<1.6 files are not supported; "
            "re-save it with a recent torch)"
        ) from err
    with archive:
        names = [n for n in archive.namelist() if n.endswith(f"/{pickle_name}")]
        if not names:
            raise ArtifactFormatError(f"{path}: no {pickle_name} inside the archive")
        name = min(names, key=len)
        prefix = name[: -len(pickle_name) - 1]
        try:
            return _RestrictedTorchUnpickler(
                io.BytesIO(archive.read(name)), archive, prefix, stub_unknown
            ).load()
        except (pickle.UnpicklingError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise ArtifactFormatError(f"{path}: cannot read {name}: {err}") from err


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, allow_numpy: bool):
        super().__init__(file)
        self._allowed = dict(_BUILTIN_GLOBALS)
        if allow_numpy:
            self._allowed.update(numpy_array_globals())

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed") from None


def _numpy_allowlist_named() -> list[tuple[Any, str]]:
    """The numpy globals a plain pickle of arrays and scalars needs, by the dotted names numpy 1.x
    and 2.x write: ``dtype`` and its numeric classes, ``scalar``, ``_reconstruct`` (protocols
    0-4) and ``numeric._frombuffer`` (protocol 5, in-band buffers; it only views the bytes as
    the dtype, and refuses object dtypes), plus ``_codecs.encode`` (bytes under protocol < 3).
    Out-of-band buffers are refused by the unpickler itself (no ``buffers`` are given)."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct, scalar
        from numpy._core.numeric import _frombuffer
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
        from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]
    named = [(np.dtype, "numpy.dtype")]
    for base in ("numpy.core", "numpy._core"):
        named += [
            (scalar, f"{base}.multiarray.scalar"),
            (_reconstruct, f"{base}.multiarray._reconstruct"),
            (_frombuffer, f"{base}.numeric._frombuffer"),
        ]
    for code in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?"):
        cls = type(np.dtype(code))
        named.append((cls, f"numpy.dtypes.{cls.__name__}"))
    named += [(__import__("_codecs").encode, "_codecs.encode")]
    return named


def numpy_array_globals() -> dict[tuple[str, str], Any]:
    """``(module, name) -> object`` of the numpy globals a restricted unpickler may allow for
    arrays and scalars (see :func:`restricted_pickle_load`; the SMPL model reader uses the same
    list)."""
    import numpy as np

    allowed = {}
    for obj, dotted in _numpy_allowlist_named():
        module, _, name = dotted.rpartition(".")
        allowed[(module, name)] = obj
    allowed[("numpy", "ndarray")] = np.ndarray
    return allowed


def restricted_pickle_load(path: str | os.PathLike[str], *, allow_numpy: bool = False) -> Any:
    """Load a plain pickle that may hold only builtin containers and scalars (and numpy arrays and
    scalars when ``allow_numpy``); anything else is refused before it is constructed.

    Raises:
        ArtifactNotFoundError: the file does not exist.
        ArtifactFormatError: unreadable, or a refused global (named in the message).
    """
    path = _check_file(path)
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh, allow_numpy).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ArtifactFormatError(f"{path}: refused or unreadable pickle: {err}") from err


def find_state_dicts(obj: Any, prefix: str = "") -> dict[str, Mapping[str, Any]]:
    """Every mapping of tensors inside ``obj`` (nested dicts), by dotted path; for listing what a
    checkpoint holds in error messages."""
    import torch

    found: dict[str, Mapping[str, Any]] = {}
    if isinstance(obj, Mapping):
        values = list(obj.values())
        if values and all(isinstance(v, torch.Tensor) for v in values):
            found[prefix or "<root>"] = obj
        else:
            for key, value in obj.items():
                found.update(find_state_dicts(value, f"{prefix}.{key}" if prefix else str(key)))
    return found
