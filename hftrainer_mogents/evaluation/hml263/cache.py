"""The real-motion embedding cache of the HumanML3D-263 protocol.

The embeddings of the real crops depend only on the evaluator, the dataset and the crops, not on
the model being scored, so a second evaluation needs to encode only the generated motions. One
``.npz`` file (``names``, ``embeddings``) per evaluator fingerprint and dataset state; a crop is
named ``<key>|<start>|<m_length>``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from hftrainer_mogents.utils.io import atomic_save_npz

__all__ = [
    "CACHE_NAME",
    "default_cache_dir",
    "real_cache_path",
    "load_embedding_cache",
    "save_embedding_cache",
    "cached_embeddings",
]

logger = logging.getLogger(__name__)

CACHE_NAME = "hml263"  # the evaluator's name: the cache folder and file prefix

K = TypeVar("K", bound=Hashable)


def default_cache_dir() -> Path:
    """Where the command-line tools keep the real-motion embedding cache:
    ``$HFTRAINER_MOGENTS_CACHE/hml263``, else ``$XDG_CACHE_HOME/hftrainer_mogents/hml263``, else
    ``~/.cache/hftrainer_mogents/hml263``."""
    root = os.environ.get("HFTRAINER_MOGENTS_CACHE")
    if root:
        return Path(root) / CACHE_NAME
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "hftrainer_mogents" / CACHE_NAME


def real_cache_path(cache_dir: Path, fingerprint: str, split: Any) -> Path:
    """The cache file of an evaluator (its :meth:`fingerprint`) on a test split: keyed by the
    dataset folder and each entry's key, frames, length and motion file size and time.

    Parameters
    ----------
    cache_dir:
        The cache folder.
    fingerprint:
        The evaluator's fingerprint.
    split:
        The test split (a :class:`~.dataset.HumanML3DTestSplit`).

    Returns
    -------
    ``<cache_dir>/hml263_real_<digest>.npz``.
    """
    digest = hashlib.sha256(fingerprint.encode())
    digest.update(str(split.root.resolve()).encode())
    for entry in split.entries:
        stat = split.motion_path(entry).stat()
        digest.update(
            f"{entry.key}|{entry.frames}|{entry.length}|{stat.st_size}|{stat.st_mtime_ns}".encode()
        )
    return cache_dir / f"{CACHE_NAME}_real_{digest.hexdigest()[:24]}.npz"


def load_embedding_cache(path: Path | None) -> dict[str, np.ndarray]:
    """Embeddings by crop name from a cache file (empty when absent or unreadable)."""
    if path is None or not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["names"].tolist(), data["embeddings"]))
    except (ValueError, KeyError, OSError) as err:
        logger.warning("ignoring the unreadable embedding cache %s (%s)", path, err)
        return {}


def save_embedding_cache(path: Path, table: Mapping[str, np.ndarray]) -> None:
    """Write embeddings by crop name (atomically, names sorted)."""
    names = sorted(table)
    atomic_save_npz(path, names=np.array(names), embeddings=np.stack([table[n] for n in names]))


def cached_embeddings(
    path: Path | None,
    requests: Iterable[K],
    name: Callable[[K], str],
    encode: Callable[[set[K]], Mapping[K, np.ndarray]],
) -> dict[K, np.ndarray]:
    """Embeddings of ``requests``: those in the cache file read from it, the others encoded
    and added to the file.

    Parameters
    ----------
    path:
        The cache file, or ``None`` (encode everything, keep nothing).
    requests:
        What to embed.
    name:
        The cache name of a request.
    encode:
        Embeds a set of requests.

    Returns
    -------
    The embedding of each request.
    """
    requests = set(requests)
    cached = load_embedding_cache(path)
    hits = {req: cached[name(req)] for req in requests if name(req) in cached}
    fresh = encode(requests - set(hits))
    if path is not None and fresh:
        cached.update({name(req): emb for req, emb in fresh.items()})
        save_embedding_cache(path, cached)
    return {**hits, **fresh}
