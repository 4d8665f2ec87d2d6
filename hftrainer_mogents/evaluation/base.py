"""The one shape every evaluator has: a converted folder it loads and saves, one ``evaluate``
contract, and the host runner's loop.

A converted evaluator folder holds ``evaluator_config.json`` (``format``, ``evaluator``,
``config``, the evaluator's own entries, ``checksums``: the sha256 of every file written,
``source``: where it was converted from) beside the evaluator's files. Nothing is unpickled.

The contract (:class:`MotionEvaluator`):

- ``from_pretrained(path, *, verify_checksums=True, **options)``: read and check the config,
  check the listed files and their checksums, then build the parts (:meth:`~MotionEvaluator.\
_from_folder`);
- ``save_pretrained(path, *, provenance=None)``: write the parts (:meth:`~MotionEvaluator.\
_save_files`) and the config with their checksums;
- ``evaluate(predictions, split, **options) -> dict``: ``predictions`` maps a test-split key to
  a generated motion (an array in physical units, or a ``.npy`` path); ``None`` scores the real
  data only; ``split`` is the test split (default: read from the evaluator's dataset folder);
- ``evaluate_dir(pred_dir, **options)``: ``evaluate`` on a folder of ``<key>.npy`` files;
- ``reset()`` / ``process(output)`` / ``compute()``: the host runner's loop; ``compute`` scores
  the gathered motions with ``evaluate`` and returns the flat metrics the host logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    InvalidInputError,
)
from hftrainer_mogents.host_compat import HostEvaluatorMixin, flatten_metrics
from hftrainer_mogents.utils.io import (
    atomic_write_json,
    checksum_map,
    is_temporary,
    read_json,
)
from hftrainer_mogents.utils.io import verify_checksums as verify_file_checksums

__all__ = [
    "CONFIG_FILE",
    "Coverage",
    "MotionEvaluator",
    "check_coverage",
    "check_scoring_options",
    "collect_predictions",
]

CONFIG_FILE = "evaluator_config.json"


def collect_predictions(pred_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """``<key>.npy`` files of a prediction folder, by key (temporary files skipped)."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise ArtifactNotFoundError(
            f"prediction folder {pred_dir} does not exist; generate it first "
            "(scripts/mogents_t2m_h3d263.py --out_dir ...)"
        )
    return {
        p.stem: p for p in sorted(pred_dir.glob("*.npy")) if p.is_file() and not is_temporary(p)
    }


@dataclass(frozen=True)
class Coverage:
    """Which test items a prediction folder covers.

    Attributes:
        total: test items.
        missing: keys of the test items without a prediction (split order).
        unmatched: prediction keys that name no test item (ignored by the evaluation).
    """

    total: int
    missing: list[str]
    unmatched: list[str]

    def subset_note(self) -> str | None:
        """The warning of a report over a subset (``None`` when every item has a prediction)."""
        if not self.missing:
            return None
        return (
            f"SUBSET: only {self.total - len(self.missing)} of {self.total} test items have a "
            f"prediction ({len(self.missing)} missing, --allow-missing); these numbers are NOT "
            "comparable to the published ones"
        )


def _first(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def check_coverage(
    expected: list[str],
    predictions: Mapping[str, Any],
    *,
    pred_dir: str | os.PathLike[str] | None,
    allow_missing: bool,
) -> Coverage:
    """Compare the test items with the predictions before any scoring.

    Args:
        expected: the test-split keys.
        predictions: the predictions by key.
        pred_dir: the folder, named in the message.
        allow_missing: score the items present when some are missing (the report then says it
            is over a subset) instead of failing.

    Raises:
        ArtifactNotFoundError: some test items have no prediction and ``allow_missing`` is off
            (the message names how many and the first keys).
    """
    known = set(expected)
    missing = [k for k in expected if k not in predictions]
    unmatched = sorted(k for k in predictions if k not in known)
    if missing and not allow_missing and len(missing) < len(expected):
        raise ArtifactNotFoundError(
            f"{len(missing)} of {len(expected)} test items have no prediction in {pred_dir} "
            f"(first: {_first(missing)}); generate them (--skip-existing resumes), or pass "
            f"--allow-missing to score the {len(expected) - len(missing)} present (numbers over a "
            "subset, not comparable to the published ones)"
        )
    return Coverage(len(expected), missing, unmatched)


def check_scoring_options(
    n_repeats: Any, diversity_times: Any, *, strict: bool = False, allow_missing: bool = False
) -> None:
    """The benchmarks' settings, refused before any work: evaluation passes or diversity pairs
    below 1, and ``strict`` with ``allow_missing``.

    Raises:
        InvalidInputError: naming the CLI flag (``--n-repeats``, ``--diversity-times``,
            ``--strict``/``--allow-missing``).
    """
    if strict and allow_missing:
        raise InvalidInputError("--strict and --allow-missing contradict each other; give one")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int) or n_repeats < 1:
        raise InvalidInputError(
            f"--n-repeats (n_repeats) must be a whole number >= 1, got {n_repeats!r}"
        )
    if diversity_times is not None and (
        isinstance(diversity_times, bool)
        or not isinstance(diversity_times, int)
        or diversity_times < 1
    ):
        raise InvalidInputError(
            f"--diversity-times (diversity_times) must be a whole number >= 1, got "
            f"{diversity_times!r}; leave it out for the protocol's default"
        )


class MotionEvaluator(HostEvaluatorMixin):
    """Base of the text-to-motion evaluators: loading, saving, checksums, the ``evaluate``
    contract and the host runner's ``reset`` / ``process`` / ``compute`` loop.

    A subclass names its artifact (:attr:`name`, :attr:`artifact_format`, :attr:`required_files`,
    :attr:`convert_command`), builds its parts from a folder (:meth:`_from_folder`), writes them
    (:meth:`_save_files`, :meth:`_config_dict`) and implements :meth:`evaluate` and
    :meth:`evaluate_dir`.
    """

    #: short name, recorded as ``"evaluator"`` in the config
    name: ClassVar[str]
    #: the ``"format"`` of ``evaluator_config.json``
    artifact_format: ClassVar[str]
    #: files that must exist beside the config (checked before the checksums)
    required_files: ClassVar[tuple[str, ...]] = ()
    #: the command that writes the folder (named in the messages)
    convert_command: ClassVar[str]
    #: what to do about a checksum mismatch
    checksum_remedy: ClassVar[str] = "convert the evaluator again"
    #: the constructor keyword of a converted folder (the zoo's name) and the parts it replaces
    folder_keyword: ClassVar[str]
    parts_names: ClassVar[str]

    evaluate_kwargs: dict[str, Any]

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str], *, verify_checksums: bool = True, **options: Any
    ) -> Any:
        """Load a converted evaluator folder: read and check its config, check its files and
        their sha256, then build the evaluator.

        Args:
            path: the folder.
            verify_checksums: check the sha256 of every file listed in the config.
            options: the evaluator's loading options (device, dtype, ...).

        Raises:
            ArtifactNotFoundError: the folder, its config or a file is missing.
            ArtifactFormatError: the config has another format.
            ChecksumMismatchError: a file's sha256 differs from the recorded one.
        """
        folder = Path(path)
        meta = cls.read_config(folder)
        for name in cls.required_files:
            if not (folder / name).is_file():
                raise ArtifactNotFoundError(f"{folder / name} missing; re-run the conversion")
        if verify_checksums:
            verify_file_checksums(
                folder,
                meta.get("checksums", {}),
                recorded_in=CONFIG_FILE,
                remedy=cls.checksum_remedy,
            )
        return cls._from_folder(folder, meta, **options)

    @classmethod
    def read_config(cls, folder: Path) -> dict[str, Any]:
        """The folder's ``evaluator_config.json``, its format checked.

        Raises:
            ArtifactNotFoundError: no config (the message says how to convert).
            ArtifactFormatError: another format.
        """
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise ArtifactNotFoundError(cls._not_converted(folder))
        meta = read_json(config_path)
        if meta.get("format") != cls.artifact_format:
            raise ArtifactFormatError(
                f"{config_path}: format {meta.get('format')!r}, expected {cls.artifact_format!r}"
            )
        return meta

    @classmethod
    def _not_converted(cls, folder: Path) -> str:
        """The message for a folder without a config."""
        return f"{folder / CONFIG_FILE} not found; run `{cls.convert_command}` first"

    @classmethod
    def _from_folder(cls, folder: Path, meta: Mapping[str, Any], **options: Any) -> Any:
        """Build the evaluator from a checked folder and its config."""
        raise NotImplementedError

    def save_pretrained(
        self, path: str | os.PathLike[str], *, provenance: Mapping[str, Any] | None = None
    ) -> Path:
        """Write the evaluator folder with sha256 checksums.

        Args:
            path: target folder (created; files replaced atomically).
            provenance: recorded under ``"source"`` in the config.

        Returns:
            The folder.

        Raises:
            InvalidInputError: ``path`` is a file.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"{path} is a file; save_pretrained needs a folder")
        path.mkdir(parents=True, exist_ok=True)
        written, extra = self._save_files(path)
        atomic_write_json(
            path / CONFIG_FILE,
            {
                "format": self.artifact_format,
                "evaluator": self.name,
                "config": self._config_dict(),
                **extra,
                "checksums": checksum_map(path, written),
                "source": dict(provenance or {}),
            },
        )
        return path

    def _save_files(self, path: Path) -> tuple[list[str], dict[str, Any]]:
        """Write the evaluator's files into ``path``; return their names (relative paths) and
        the evaluator's own config entries."""
        raise NotImplementedError

    def _config_dict(self) -> dict[str, Any]:
        """The network sizes recorded under ``"config"``."""
        raise NotImplementedError

    def _load_folder(self, folder: Any, *, keep: tuple[str, ...] = (), **options: Any) -> None:
        """``__init__`` from a converted folder (as the host builds evaluators from a config
        dict): take over a loaded evaluator's state, keeping the loop's and ``keep``'s."""
        if folder is None:
            raise InvalidInputError(
                f"{type(self).__name__} needs its parts ({self.parts_names}) or "
                f"{self.folder_keyword}= (a folder written by `{self.convert_command}`)"
            )
        loaded = type(self).from_pretrained(folder, **options)
        own = {name: getattr(self, name) for name in ("_results", "evaluate_kwargs", *keep)}
        self.__dict__.update({**vars(loaded), **own})

    # ------------------------------------------------------------------ the contract

    def evaluate(
        self, predictions: Mapping[str, Any] | None = None, split: Any = None, **options: Any
    ) -> dict[str, Any]:
        """Score ``predictions`` (test-split key -> generated motion; ``None``: the real data
        only) on ``split`` with the evaluator's protocol; a JSON-ready report."""
        raise NotImplementedError

    def evaluate_dir(
        self, pred_dir: str | os.PathLike[str] | None = None, **options: Any
    ) -> dict[str, Any]:
        """:meth:`evaluate` on a folder of ``<key>.npy`` predictions."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the host runner's loop

    def compute(self) -> dict[str, float]:
        """Score what :meth:`process` gathered with :meth:`evaluate` (with ``evaluate_kwargs``)
        and return the flat metrics the host logs (see
        :func:`~hftrainer_mogents.host_compat.flatten_metrics`). The full report is kept in
        ``last_report``.

        Raises:
            InvalidInputError: nothing processed, a key processed twice, or no dataset folder.
        """
        motions, extras = self._gathered()
        self.last_report = self._evaluate_gathered(motions, extras)
        return flatten_metrics(self.last_report)

    def _evaluate_gathered(
        self, motions: dict[str, Any], extras: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """The report of the gathered motions (by key) and their extra entries (by name)."""
        return self.evaluate(motions, **self.evaluate_kwargs)
