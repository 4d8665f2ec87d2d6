"""The artifact I/O kit: atomic writes, sha256 checksums, safetensors and strict state dicts.

Every artifact kind (the generation artifact, both evaluators) and every output file goes
through here:

- atomic writes: a file goes to a temporary name in its folder and is renamed into place
  (:func:`atomic_path` and the ``atomic_*`` writers); a whole folder is written under a temporary
  sibling name and renamed (:func:`atomic_dir`), so a killed job never leaves a half-written file
  or folder under the final name;
- checksums: :func:`sha256_file`, :func:`checksum_map` (what a folder's JSON records) and
  :func:`verify_checksums` (:class:`~hftrainer_mogents.errors.ChecksumMismatchError`);
- safetensors: :func:`safetensors_shapes`, :func:`load_safetensors` (truncated or unreadable files
  raise :class:`~hftrainer_mogents.errors.ArtifactFormatError`) and :func:`save_safetensors`;
- strict state dicts: :func:`check_state_dict` / :func:`load_state_dict_strict` name every
  missing or unexpected key, and the key and both shapes of every mismatch.

torch and safetensors are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    ChecksumMismatchError,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = [
    "TMP_SUFFIX",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npy",
    "atomic_save_npz",
    "atomic_dir",
    "is_temporary",
    "sha256_file",
    "checksum_map",
    "verify_checksums",
    "check_checksums",
    "read_json",
    "safetensors_shapes",
    "load_safetensors",
    "save_safetensors",
    "check_state_dict",
    "check_dtypes",
    "load_state_dict_strict",
]

TMP_SUFFIX = ".tmp"


def _default_mode(directory: bool) -> int:
    """Permissions a plain ``open``/``mkdir`` would give (mkstemp/mkdtemp use 0600/0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a leftover temporary file of :func:`atomic_path` (skip it in listings)."""
    name = Path(path).name
    return name.startswith(".") and TMP_SUFFIX in name


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    The temporary name starts with a dot and keeps the final suffix (``.name.XXXX.tmp.npy``) so
    libraries that append extensions (numpy) write where we expect.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f"{TMP_SUFFIX}{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode(directory=False))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsync before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, sort_keys: bool = True) -> Path:
    """Write ``obj`` as JSON (indent 2, trailing newline) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def atomic_save_npy(path: str | os.PathLike[str], array: Any) -> Path:
    """``np.save`` to ``path`` atomically (no pickle: object arrays are refused)."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_save_npz(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """``np.savez`` to ``path`` atomically (no pickle)."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; remove it or pass overwrite=True (--overwrite on the command line)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, _default_mode(directory=True))
        if path.exists():
            old = path.with_name(f".{path.name}.old{TMP_SUFFIX}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------- checksums


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def checksum_map(folder: str | os.PathLike[str], names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` (paths relative to ``folder``), sorted by name:
    what an artifact's JSON records under ``"checksums"``."""
    folder = Path(folder)
    return {name: sha256_file(folder / name) for name in sorted(names)}


def verify_checksums(
    folder: str | os.PathLike[str],
    checksums: Mapping[str, str],
    files: Iterable[str] | None = None,
    *,
    recorded_in: str = "the recorded checksums",
    remedy: str = "download or convert it again",
) -> None:
    """Check the sha256 of each file in ``checksums`` (or only of ``files``) under ``folder``.

    Args:
        folder: the artifact folder.
        checksums: ``{relative path: hex sha256}`` as :func:`checksum_map` wrote it.
        files: check only these (those without a recorded digest are skipped).
        recorded_in: the file that records the digests, for the messages.
        remedy: what the user should do about a damaged file, for the messages.

    Raises:
        ArtifactNotFoundError: a listed file is missing.
        ChecksumMismatchError: a digest differs (file, expected and actual digests named).
    """
    folder = Path(folder)
    for name in files if files is not None else checksums:
        expected = checksums.get(name)
        if expected is None:
            continue
        path = folder / name
        if not path.is_file():
            raise ArtifactNotFoundError(
                f"{name} is listed in {recorded_in} but missing from {folder}; {remedy}"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumMismatchError(
                f"{path}: sha256 {actual} does not match {expected} recorded in {recorded_in}; "
                f"the file is corrupted or was changed: {remedy}"
            )


# the name before verify_checksums; kept for one release
check_checksums = verify_checksums


# ---------------------------------------------------------------------- reading


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON object from ``path``.

    Raises:
        ArtifactNotFoundError: missing file. ArtifactFormatError: not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(f"{path.name} not found in {path.parent}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactFormatError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(doc, dict):
        raise ArtifactFormatError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    return doc


def safetensors_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Key -> (shape, dtype string) read from a safetensors header, without loading tensors.

    Raises:
        ArtifactNotFoundError: missing file. ArtifactFormatError: unreadable or truncated file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(f"{path.name} not found in {path.parent}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            out = {}
            for key in fh.keys():  # noqa: SIM118 (safe_open is not iterable)
                sl = fh.get_slice(key)
                out[key] = (tuple(sl.get_shape()), str(sl.get_dtype()))
        _check_size(path)
        return out
    except ArtifactFormatError:
        raise
    except Exception as err:  # safetensors raises its own SafetensorError / OSError
        raise ArtifactFormatError(f"{path}: not a readable safetensors file ({err})") from err


def _check_size(path: Path) -> None:
    """A truncated file has a valid header but too few bytes: compare with the header's end."""
    with path.open("rb") as raw:
        header_len = int.from_bytes(raw.read(8), "little")
        header = json.loads(raw.read(header_len))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    expected = 8 + header_len + end
    actual = path.stat().st_size
    if actual < expected:
        raise ArtifactFormatError(
            f"{path}: truncated file ({actual} bytes, the header needs {expected}); "
            "download or convert it again"
        )


def load_safetensors(
    path: str | os.PathLike[str], *, keys: Iterable[str] | None = None
) -> dict[str, Any]:
    """Load tensors (all, or only ``keys``) from a safetensors file; keys and shapes are checked
    against the module by the caller (:func:`check_state_dict`).

    Raises:
        ArtifactNotFoundError: missing file.
        ArtifactFormatError: truncated or unreadable file, or a requested key it lacks.
    """
    from safetensors import safe_open

    path = Path(path)
    found = safetensors_shapes(path)
    wanted = list(found) if keys is None else list(keys)
    missing = [k for k in wanted if k not in found]
    if missing:
        raise ArtifactFormatError(f"{path}: missing keys {missing[:8]} ({len(missing)} in all)")
    try:
        with safe_open(str(path), framework="pt") as fh:
            # views of the memory-mapped file: no copy, pages load on first use (artifact files
            # are only ever replaced by rename, never rewritten in place)
            return {key: fh.get_tensor(key) for key in wanted}
    except Exception as err:
        raise ArtifactFormatError(f"{path}: cannot read tensors ({err})") from err


def save_safetensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, Any],
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``tensors`` (detached, contiguous CPU copies) to a safetensors file atomically.

    Returns:
        ``path``.
    """
    from safetensors.torch import save_file

    cpu = {key: value.detach().to("cpu").contiguous() for key, value in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=dict(metadata) if metadata is not None else None)
        _sort_safetensors_metadata(tmp)
    return Path(path)


def _sort_safetensors_metadata(path: Path) -> None:
    """Rewrite the header's ``__metadata__`` with its keys sorted, in place.

    safetensors serialises the metadata from a hash map, so its key order (and with it the file's
    bytes and sha256) changes from run to run; sorted keys make the same tensors and metadata give
    the same bytes on any machine. Only the order changes, so the header keeps its length.
    """
    with open(path, "r+b") as fh:
        size = int.from_bytes(fh.read(8), "little")
        raw = fh.read(size)
        header = json.loads(raw)
        if "__metadata__" not in header:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) != len(raw.rstrip(b" ")):  # pragma: no cover - a format change upstream
            raise ArtifactFormatError(f"{path}: unexpected safetensors header layout")
        fh.seek(8)
        fh.write(text.ljust(size, b" "))


# ---------------------------------------------------------------------- strict state dicts

_MAX_LISTED = 10


def _listed(keys: list[str]) -> str:
    more = f" (and {len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def check_state_dict(module: nn.Module, state_dict: Mapping[str, Any], *, source: str) -> None:
    """Raise unless ``state_dict`` has exactly the keys and shapes of ``module.state_dict()``.

    Args:
        module: the network to load into (may live on the ``meta`` device).
        state_dict: key -> tensor (anything with a ``shape``).
        source: what the weights come from (a file name), for the message.

    Raises:
        ArtifactFormatError: missing keys, unexpected keys, or shape mismatches, each listed with
            the key and, for mismatches, the file's and the model's shapes.
    """
    expected = module.state_dict()
    problems = []
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: {tuple(state_dict[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listed(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch for {_listed(mismatched)}")
    if problems:
        raise ArtifactFormatError(
            f"{source}: the weights do not fit {type(module).__name__} "
            f"({'; '.join(problems)}); check that the config matches the checkpoint"
        )


def check_dtypes(
    state_dict: Mapping[str, Any], expected: Mapping[str, Iterable[Any]], *, source: str
) -> None:
    """Raise unless every tensor of ``state_dict`` has one of the dtypes ``expected`` lists for
    its key (keys ``expected`` does not list are not checked).

    Args:
        state_dict: key -> tensor, as read from the file.
        expected: key -> the torch dtypes the artifact format stores for it.
        source: what the weights come from (a file name), for the message.

    Raises:
        ArtifactFormatError: naming the file, each key with a wrong dtype, its dtype and the
            expected ones.
    """
    wrong = []
    for key, tensor in state_dict.items():
        allowed = list(expected.get(key, ()))
        if allowed and tensor.dtype not in allowed:
            names = " or ".join(str(d).removeprefix("torch.") for d in allowed)
            wrong.append(f"{key}: {str(tensor.dtype).removeprefix('torch.')}, expected {names}")
    if wrong:
        raise ArtifactFormatError(
            f"{source}: tensors of the wrong dtype ({_listed(wrong)}); the artifact format "
            "stores these weights in the dtype given, and a cast to another compute dtype is "
            "done at load (dtype=...): save or convert the artifact again"
        )


def load_state_dict_strict(
    module: nn.Module, state_dict: Mapping[str, Any], *, source: str
) -> nn.Module:
    """:func:`check_state_dict`, then ``module.load_state_dict(state_dict, strict=True)``.

    Returns:
        ``module`` (weights copied in, dtype and device of ``module`` kept).
    """
    check_state_dict(module, state_dict, source=source)
    module.load_state_dict(state_dict, strict=True)
    return module
