"""Typed exceptions of hftrainer-mogents.

Every error is a :class:`MoGenTSError` *and* the builtin it refines, so generic handlers
(``except FileNotFoundError``, ``except ValueError``, ``except KeyError``) keep working.
Messages say what failed, the offending value, and what to do next; they are meant to be shown
to the user as they are (the CLI prints them without a traceback).
"""

from __future__ import annotations

__all__ = [
    "MoGenTSError",
    "ArtifactNotFoundError",
    "ArtifactFormatError",
    "ChecksumMismatchError",
    "HubUnavailableError",
    "InvalidInputError",
    "MissingDependencyError",
    "HostNotInstalledError",
    "UnknownModelError",
    "UnknownRepresentationError",
    "DuplicateModelError",
    "PluginError",
    "NonFiniteOutputError",
    "FolderInUseError",
    "OutputWriteError",
]


class MoGenTSError(Exception):
    """Base class of every error raised on purpose by this package."""


class ArtifactNotFoundError(MoGenTSError, FileNotFoundError):
    """An artifact folder, a file inside it, or an official checkpoint is missing."""


class ArtifactFormatError(MoGenTSError, ValueError):
    """A file exists but is not what it should be: missing or unexpected key, wrong shape or dtype,
    truncated or unreadable file, unknown format version."""


class ChecksumMismatchError(ArtifactFormatError):
    """A file's sha256 differs from the one recorded in ``model_index.json``."""


class HubUnavailableError(MoGenTSError, ConnectionError):
    """The Hugging Face Hub could not be reached (or is disabled) and the cache cannot serve the
    request. The message says how to load a local folder or use ``local_files_only=True``."""


class InvalidInputError(MoGenTSError, ValueError):
    """A user-supplied argument is out of range or of the wrong kind (empty text, non-string,
    length out of range, mismatched list sizes, ...)."""


class MissingDependencyError(MoGenTSError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class HostNotInstalledError(MoGenTSError, ImportError):
    """The ``hftrainer`` host package is needed for this operation but is not importable."""


class UnknownModelError(MoGenTSError, KeyError):
    """A model name that no installed plugin provides; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class UnknownRepresentationError(MoGenTSError, KeyError):
    """A motion representation name, width or field that the registry
    (:mod:`hftrainer_mogents.motion.representations`) does not know, or a width that several
    representations share; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class DuplicateModelError(MoGenTSError, RuntimeError):
    """Two installed plugins claim the same model name; the message names both plugins."""


class PluginError(MoGenTSError, RuntimeError):
    """A plugin returned something that breaks the contract (wrong type, bad import string)."""


class NonFiniteOutputError(MoGenTSError, ArithmeticError):
    """The model produced NaN or infinite values (broken or mis-cast weights); the message names
    the prompts (index and text). Raised before anything is returned, so nothing is written or
    claimed done for them."""


class FolderInUseError(MoGenTSError, RuntimeError):
    """Another run holds the output folder's lock (the message names it: pid, host, start)."""


class OutputWriteError(MoGenTSError, OSError):
    """An output could not be written (disk full, no permission): the message names the folder;
    nothing of the failed write is claimed done."""
