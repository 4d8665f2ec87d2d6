"""The MoGenTS artifact folder: layout (which files, what a missing one means),
``model_index.json`` with sha256 checksums, the normalisation statistics, and resolution of a
local path or a Hugging Face Hub repo id.

Checksums, safetensors reading and strict loading are the I/O kit's
(:mod:`hftrainer_mogents.utils.io`); its reading functions are re-exported here.

Layout (format ``hftrainer-mogents-v1``, as the zoo publishes ``ZeyuLing/hftrainer-mogents-humanml3d``)::

    mogents_config.json   model_index.json
    vq.safetensors  mask_aux.safetensors  mask_ts.safetensors  res_aux.safetensors
    res_ts.safetensors  length_est.safetensors (optional)  clip.safetensors
    Mean.npy  Std.npy
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hftrainer_mogents._version import __version__
from hftrainer_mogents.config import DEFAULT_REPO_ID, FORMAT
from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    HubUnavailableError,
    InvalidInputError,
)
from hftrainer_mogents.utils.io import (
    atomic_write_json,
    checksum_map,
    load_safetensors,
    read_json,
    safetensors_shapes,
    sha256_file,
    verify_checksums,
)

__all__ = [
    "DEFAULT_REPO_ID",
    "CONFIG_NAME",
    "INDEX_NAME",
    "COMPONENT_FILES",
    "MEAN_NAME",
    "STD_NAME",
    "ARTIFACT_PATTERNS",
    "sha256_file",
    "resolve_artifact",
    "read_json",
    "component_files",
    "require_artifact_files",
    "build_model_index",
    "drop_clip",
    "read_model_index",
    "FINETUNE_NAME",
    "read_finetune_record",
    "verify_checksums",
    "check_checksums",
    "verify_artifact_files",
    "safetensors_shapes",
    "load_safetensors",
    "load_stat",
]

logger = logging.getLogger(__name__)

CONFIG_NAME = "mogents_config.json"
INDEX_NAME = "model_index.json"
# where a fine-tuned artifact came from (`mogents export` writes it; `mogents publish` renders it)
FINETUNE_NAME = "finetune.json"
MEAN_NAME = "Mean.npy"
STD_NAME = "Std.npy"
# bundle component -> file (the zoo's names)
COMPONENT_FILES: dict[str, str] = {
    "vq": "vq.safetensors",
    "mask_aux": "mask_aux.safetensors",
    "mask_ts": "mask_ts.safetensors",
    "res_aux": "res_aux.safetensors",
    "res_ts": "res_ts.safetensors",
    "length_estimator": "length_est.safetensors",
    "clip": "clip.safetensors",
}
# what a hub download fetches: the artifact files and nothing else (no README, no .pt copies)
ARTIFACT_PATTERNS = [CONFIG_NAME, INDEX_NAME, MEAN_NAME, STD_NAME, *COMPONENT_FILES.values()]

# the name before verify_checksums; kept for one release
check_checksums = verify_checksums


def component_files(has_length_estimator: bool = True) -> dict[str, str]:
    """Component -> file of an artifact, in artifact order (without ``length_est.safetensors``
    when the artifact has no length estimator)."""
    return {
        name: file
        for name, file in COMPONENT_FILES.items()
        if name != "length_estimator" or has_length_estimator
    }


def require_artifact_files(folder: Path, files: Iterable[str]) -> None:
    """Check that ``files`` exist in the artifact ``folder``.

    Args:
        folder: the artifact folder.
        files: file names relative to ``folder``.

    Raises:
        ArtifactNotFoundError: some are missing; the message lists them and what an artifact
            holds, and says what to do when the length estimator or CLIP is the missing one.
    """
    missing = [f for f in files if not (folder / f).is_file()]
    if not missing:
        return
    raise ArtifactNotFoundError(
        f"artifact {folder} lacks {missing}; an artifact holds {ARTIFACT_PATTERNS}"
        + (
            " (set has_length_estimator false or load_length_estimator=False)"
            if COMPONENT_FILES["length_estimator"] in missing
            else ""
        )
        + (
            "; it was converted without CLIP (--no_clip), and generation needs the "
            "artifact's own CLIP text encoder: convert again without --no_clip"
            if COMPONENT_FILES["clip"] in missing
            else ""
        )
    )


def build_model_index(
    folder: Path, written: Iterable[str], *, has_length_estimator: bool
) -> dict[str, Any]:
    """The ``model_index.json`` document of an artifact being saved into ``folder``.

    Args:
        folder: the artifact folder, holding the files already written.
        written: the files written so far; their sha256 go under ``"checksums"``.
        has_length_estimator: whether ``length_est.safetensors`` is part of the artifact.

    Returns:
        The document (class names, the file of each component, the API, the checksums).
    """
    files = COMPONENT_FILES
    return {
        "_class_name": "MoGenTSPipeline",
        "_library_name": "hftrainer-mogents",
        "_library_version": __version__,
        "model_type": "mogents",
        "format": FORMAT,
        "bundle_class": "hftrainer_mogents.bundle.MoGenTSBundle",
        "pipeline_class": "hftrainer_mogents.pipeline.MoGenTSPipeline",
        "artifacts": {
            "vq": files["vq"],
            "mask_aux": files["mask_aux"],
            "mask_ts": files["mask_ts"],
            "res_aux": files["res_aux"],
            "res_ts": files["res_ts"],
            "length_estimator": files["length_estimator"] if has_length_estimator else None,
            "clip": files["clip"],
            "mean": MEAN_NAME,
            "std": STD_NAME,
        },
        "api": {
            "from_pretrained": "hftrainer_mogents.bundle.MoGenTSBundle.from_pretrained",
            "from_config": "hftrainer_mogents.bundle.MoGenTSBundle.from_config",
        },
        "checksums": checksum_map(folder, written),
    }


def drop_clip(folder: Path) -> None:
    """Remove ``clip.safetensors`` from an artifact being written and record why in
    ``model_index.json`` (its checksum goes too): the zoo's ``--no_clip`` export."""
    name = COMPONENT_FILES["clip"]
    (folder / name).unlink()
    index = read_model_index(folder) or {}
    checksums = dict(index.get("checksums") or {})
    checksums.pop(name, None)
    index["checksums"] = checksums
    index["clip_omitted"] = (
        "converted with --no_clip: the artifact lacks the CLIP text encoder; convert again "
        "without --no_clip to generate with it"
    )
    atomic_write_json(folder / INDEX_NAME, index)


def read_model_index(folder: Path) -> dict[str, Any] | None:
    """``model_index.json`` of ``folder``, or None when the artifact has none (older artifacts)."""
    path = folder / INDEX_NAME
    return read_json(path) if path.is_file() else None


def read_finetune_record(folder: Path) -> dict[str, Any] | None:
    """``finetune.json`` of ``folder`` (the provenance of a fine-tuned artifact: base artifact,
    data, stage, steps, seed, ...), or None when the artifact was not fine-tuned.

    Raises:
        ArtifactFormatError: the file is not a JSON object.
    """
    path = Path(folder) / FINETUNE_NAME
    return read_json(path) if path.is_file() else None


def verify_artifact_files(folder: Path, files: Iterable[str]) -> None:
    """Check ``files`` against the sha256 checksums of ``model_index.json``.

    The checksums cannot be switched off by damage: a missing ``model_index.json``, or a
    checksum map that leaves out a file, is an error (``verify_checksums=False`` at load is the
    explicit way to skip the check). An index without any checksum map, as the zoo publishes
    it, is accepted with a warning.

    Raises:
        ArtifactFormatError: ``model_index.json`` missing, or a file without a recorded digest.
        ArtifactNotFoundError / ChecksumMismatchError: a listed file is missing or differs.
    """
    files = list(files)
    index = read_model_index(folder)
    if index is None:
        raise ArtifactFormatError(
            f"{folder} has no {INDEX_NAME}, which records the sha256 of every file: the files "
            f"cannot be checked. Download or convert the artifact again, or pass "
            f"verify_checksums=False to load it unverified"
        )
    checksums = index.get("checksums")
    if not checksums:
        logger.warning(
            "%s records no checksums (the zoo's published format): %s loaded unverified; "
            "save_pretrained writes an artifact that records them",
            folder / INDEX_NAME,
            folder,
        )
        return
    unlisted = [name for name in files if name not in checksums]
    if unlisted:
        raise ArtifactFormatError(
            f"{folder / INDEX_NAME} records no checksum for {unlisted}: the index was edited or "
            f"belongs to another artifact. Download or convert the artifact again, or pass "
            f"verify_checksums=False to load it unverified"
        )
    verify_checksums(folder, checksums, files, recorded_in=INDEX_NAME)


def load_stat(path: Path, width: int, *, positive: bool | None = None) -> Any:
    """A (width,) float32 normalisation statistic from ``.npy`` (no pickle).

    Raises:
        ArtifactNotFoundError / ArtifactFormatError: missing, unreadable, wrong shape, or
            non-finite / non-positive (for a std) values.
    """
    import numpy as np

    if not path.is_file():
        raise ArtifactNotFoundError(f"{path.name} not found in {path.parent}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ArtifactFormatError(f"{path}: not a readable .npy array ({err})") from err
    if array.shape != (width,):
        raise ArtifactFormatError(f"{path}: shape {array.shape}, expected ({width},)")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ArtifactFormatError(f"{path}: contains NaN or infinite values")
    if positive is None:
        positive = path.name.lower() == STD_NAME.lower()
    if positive and (array <= 0).any():
        raise ArtifactFormatError(f"{path}: standard deviations must be > 0")
    return array


def _looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))


def resolve_artifact(
    path_or_repo_id: str | os.PathLike[str] | None,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
) -> Path:
    """A local folder holding the artifact: ``path_or_repo_id`` itself when it is a folder,
    otherwise a snapshot of that hub repo (only the artifact files are downloaded); None is the
    default repo (:data:`DEFAULT_REPO_ID`).

    When the hub cannot be reached, huggingface_hub serves the artifact from its cache if it is
    there completely.

    Raises:
        InvalidInputError: ``path_or_repo_id`` is neither a string nor a path.
        ArtifactNotFoundError: a local path that does not exist, or a repo / revision / file
            that the hub does not have.
        HubUnavailableError: the hub is unreachable (or offline mode is on) and the cache does not
            hold the artifact; the message names the repo, the revision and the ways out.
    """
    if path_or_repo_id is None:
        path_or_repo_id = DEFAULT_REPO_ID
    if not isinstance(path_or_repo_id, (str, os.PathLike)):
        raise InvalidInputError(
            f"path_or_repo_id must be an artifact folder or a hub repo id ('owner/name'), got "
            f"{type(path_or_repo_id).__name__} {path_or_repo_id!r}"
        )
    local = Path(path_or_repo_id).expanduser()
    if local.is_dir():
        if not (local / CONFIG_NAME).is_file():
            raise ArtifactNotFoundError(
                f"{local} has no {CONFIG_NAME}: it is not a MoGenTS artifact folder. Convert the "
                "official checkpoints with `mogents convert` or pass a hub repo id"
            )
        return local
    text = str(path_or_repo_id)
    if local.exists() or not _looks_like_repo_id(text):
        raise ArtifactNotFoundError(
            f"{text!r} is neither an artifact folder nor a hub repo id ('owner/name')"
        )
    try:
        return _snapshot(text, revision, cache_dir, local_files_only, token, force_download)
    except (ArtifactNotFoundError, HubUnavailableError) as err:
        # 'art/tinyx' is a valid repo id and a (misspelled) relative path: say first that there is
        # no such folder, so a typo is not answered with a hub error alone
        raise type(err)(
            f"there is no local folder {text!r} (relative to {Path.cwd()}), so it was taken as a "
            f"hub repo id: {err}"
        ) from err


def _snapshot(
    repo_id: str,
    revision: str | None,
    cache_dir: Any,
    local_files_only: bool,
    token: Any,
    force_download: bool,
) -> Path:
    from huggingface_hub import errors as hub_errors
    from huggingface_hub import snapshot_download

    kwargs = dict(
        repo_id=repo_id,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        allow_patterns=ARTIFACT_PATTERNS,
        library_name="hftrainer-mogents",
    )
    where = f"{repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    ways_out = (
        "pass the path of a local artifact folder instead (e.g. one written by `mogents convert`), "
        "or download it once while online and then use local_files_only=True"
    )
    try:
        folder = snapshot_download(
            local_files_only=local_files_only, force_download=force_download, **kwargs
        )
    except (hub_errors.RepositoryNotFoundError, hub_errors.GatedRepoError) as err:
        raise ArtifactNotFoundError(
            f"hub repo {where} was not found or is not accessible ({type(err).__name__}); "
            "check the name, or pass token=... for a private or gated repo"
        ) from err
    except hub_errors.RevisionNotFoundError as err:
        raise ArtifactNotFoundError(
            f"revision {revision!r} does not exist in hub repo {repo_id!r}; check the branch, tag "
            "or commit"
        ) from err
    except (hub_errors.LocalEntryNotFoundError, hub_errors.IncompleteSnapshotError) as err:
        # huggingface_hub already fell back to the cache (unreachable hub, HF_HUB_OFFLINE=1 or
        # local_files_only=True) and the cache does not hold this artifact completely
        reason = (
            "local_files_only=True"
            if local_files_only
            else "the Hugging Face Hub cannot be reached (or HF_HUB_OFFLINE=1 is set)"
        )
        raise HubUnavailableError(
            f"{reason} and the local cache does not hold {where} completely; {ways_out}"
        ) from err
    except (hub_errors.HfHubHTTPError, OSError) as err:
        raise HubUnavailableError(
            f"downloading {where} from the Hugging Face Hub failed ({err}); {ways_out}"
        ) from err
    folder_path = Path(folder)
    if not (folder_path / CONFIG_NAME).is_file():
        raise ArtifactNotFoundError(
            f"hub repo {where} has no {CONFIG_NAME}: it is not a MoGenTS artifact"
        )
    return folder_path
