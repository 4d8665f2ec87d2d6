"""One-time conversion of the published HumanML3D-263 evaluator to safetensors, npy and json.

Reads, without running any pickled code:

- ``<checkpoints>/<t2m|humanml3d>/Comp_v6_KLD005/opt.txt`` (options) and its ``meta/mean.npy``,
  ``meta/std.npy`` (the evaluator's normalisation);
- the weights it points to, ``<checkpoints>/<dataset_name>/text_mot_match/model/finest.tar``
  (``dataset_name`` from that ``opt.txt``), through ``torch.load(weights_only=True)``, or our
  restricted unpickler when that refuses a global;
- the GloVe files ``our_vab_data.npy``, ``our_vab_words.pkl``, ``our_vab_idx.pkl`` through a
  restricted unpickler (builtin containers and scalars only).

Writes the folder :class:`~hftrainer_mogents.evaluation.hml263.HumanML263Evaluator` loads (see
:mod:`hftrainer_mogents.evaluation.hml263.evaluator`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.convert.official_opts import parse_opt_txt
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError
from hftrainer_mogents.utils.io import atomic_dir, load_state_dict_strict, sha256_file

__all__ = [
    "EvaluatorSources",
    "find_evaluator_sources",
    "read_evaluator_checkpoint",
    "read_glove",
    "convert_hml263_evaluator",
    "DEFAULT_OUT_SUBDIR",
]

logger = logging.getLogger(__name__)

OPT_RUN = "Comp_v6_KLD005"
DATASET_DIRS = ("t2m", "humanml3d")  # MoMask and MoGenTS layouts
WEIGHTS_SUBPATH = Path("text_mot_match") / "model" / "finest.tar"
GLOVE_PREFIX = "our_vab"
DEFAULT_OUT_SUBDIR = Path("evaluators") / "hml263"
NETWORK_KEYS = ("movement_encoder", "text_encoder", "motion_encoder")


@dataclass(frozen=True)
class EvaluatorSources:
    """Where the official evaluator files are.

    Attributes:
        opt_path: ``Comp_v6_KLD005/opt.txt``.
        meta_dir: its ``meta/`` folder (``mean.npy``, ``std.npy``).
        weights_path: ``text_mot_match/model/finest.tar``.
        glove_dir: folder of ``our_vab_*`` files.
    """

    opt_path: Path
    meta_dir: Path
    weights_path: Path
    glove_dir: Path


def _first_existing(candidates: list[Path], what: str, hint: str) -> Path:
    for path in candidates:
        if path.exists():
            return path
    tried = "\n  ".join(str(p) for p in candidates)
    raise ArtifactNotFoundError(f"{what} not found; tried:\n  {tried}\n{hint}")


def find_evaluator_sources(
    checkpoints: str | os.PathLike[str], *, glove_dir: str | os.PathLike[str] | None = None
) -> EvaluatorSources:
    """Locate the official evaluator files under a ``checkpoints`` folder.

    Args:
        checkpoints: the folder the official evaluator zip was unpacked into (holding
            ``t2m/Comp_v6_KLD005/`` or ``humanml3d/Comp_v6_KLD005/``).
        glove_dir: the GloVe folder (default: ``<checkpoints>/glove``, then
            ``<checkpoints>/../glove``).

    Raises:
        ArtifactNotFoundError: a file is missing (every path tried is listed).
    """
    root = Path(checkpoints)
    hint = (
        "Expected layout (MoMask's prepare/download_evaluator.sh and download_glove.sh):\n"
        "  checkpoints/t2m/Comp_v6_KLD005/opt.txt, meta/mean.npy, meta/std.npy\n"
        "  checkpoints/t2m/text_mot_match/model/finest.tar\n"
        "  glove/our_vab_data.npy, our_vab_words.pkl, our_vab_idx.pkl (or checkpoints/glove/)"
    )
    opt_path = _first_existing(
        [root / d / OPT_RUN / "opt.txt" for d in DATASET_DIRS], f"{OPT_RUN}/opt.txt", hint
    )
    opt = parse_opt_txt(opt_path)
    dataset_name = str(opt.get("dataset_name", "t2m"))
    weights_path = _first_existing(
        [root / dataset_name / WEIGHTS_SUBPATH, opt_path.parent.parent / WEIGHTS_SUBPATH],
        "evaluator weights (text_mot_match/model/finest.tar)",
        hint,
    )
    meta_dir = opt_path.parent / "meta"
    for name in ("mean.npy", "std.npy"):
        _first_existing([meta_dir / name], f"evaluator normalisation {name}", hint)
    glove_candidates = (
        [Path(glove_dir)] if glove_dir is not None else [root / "glove", root.parent / "glove"]
    )
    glove = _first_existing(
        [g / f"{GLOVE_PREFIX}_data.npy" for g in glove_candidates], "GloVe vectors", hint
    ).parent
    for suffix in ("words.pkl", "idx.pkl"):
        _first_existing([glove / f"{GLOVE_PREFIX}_{suffix}"], f"GloVe {suffix}", hint)
    return EvaluatorSources(opt_path, meta_dir, weights_path, glove)


def read_evaluator_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The three state dicts and the bookkeeping of ``finest.tar``, read safely.

    Returns:
        ``{"movement_encoder": {...}, "text_encoder": {...}, "motion_encoder": {...},
        "epoch": int | None, "iter": int | None}`` (CPU tensors).

    Raises:
        ArtifactFormatError: unreadable, or a network's state dict is missing.
    """
    import torch

    from hftrainer_mogents.utils.safe_pickle import (
        find_state_dicts,
        read_torch_zip,
        torch_load_weights_only,
    )

    try:
        ckpt = torch_load_weights_only(path)
    except ArtifactFormatError as err:
        if "refused" not in str(err):
            raise
        # a global outside torch's allow-list: our unpickler rebuilds the tensors and stubs the
        # rest, running nothing
        logger.warning("%s; reading it with the restricted unpickler instead", err)
        ckpt = read_torch_zip(path, stub_unknown=True)
    if not isinstance(ckpt, Mapping):
        raise ArtifactFormatError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    out: dict[str, Any] = {}
    for key in NETWORK_KEYS:
        sd = ckpt.get(key)
        if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            found = sorted(find_state_dicts(ckpt))
            raise ArtifactFormatError(
                f"{path}: no {key!r} state dict (found: {found}); is this "
                "text_mot_match/model/finest.tar?"
            )
        out[key] = {k: v.detach().clone().float() for k, v in sd.items()}
    for key in ("epoch", "iter"):
        value = ckpt.get(key)
        out[key] = int(value) if isinstance(value, (int, np.integer)) else None
    return out


def read_glove(glove_dir: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, int]]:
    """The GloVe vectors and vocabulary, read without running pickled code.

    Returns:
        ``vectors`` ``(V, W)`` float32 and ``word_to_row`` (the words of ``our_vab_words.pkl``
        mapped through ``our_vab_idx.pkl``).

    Raises:
        ArtifactFormatError: malformed files, or a listed word without an index.
    """
    from hftrainer_mogents.utils.safe_pickle import restricted_pickle_load

    glove_dir = Path(glove_dir)
    data_path = glove_dir / f"{GLOVE_PREFIX}_data.npy"
    try:
        vectors = np.load(data_path, allow_pickle=False)
    except ValueError as err:
        raise ArtifactFormatError(f"{data_path}: not a plain numeric .npy ({err})") from err
    if vectors.ndim != 2:
        raise ArtifactFormatError(f"{data_path}: shape {vectors.shape}, expected (V, 300)")
    words = restricted_pickle_load(glove_dir / f"{GLOVE_PREFIX}_words.pkl", allow_numpy=True)
    index = restricted_pickle_load(glove_dir / f"{GLOVE_PREFIX}_idx.pkl", allow_numpy=True)
    if not isinstance(index, Mapping):
        raise ArtifactFormatError(f"{GLOVE_PREFIX}_idx.pkl holds {type(index).__name__}, not dict")
    try:
        word_list = [str(w) for w in words]
    except TypeError as err:
        raise ArtifactFormatError(f"{GLOVE_PREFIX}_words.pkl is not a list of words") from err
    missing = [w for w in word_list if w not in index]
    if missing:
        raise ArtifactFormatError(
            f"{len(missing)} words of {GLOVE_PREFIX}_words.pkl have no row in "
            f"{GLOVE_PREFIX}_idx.pkl (first: {missing[:5]})"
        )
    word_to_row = {w: int(index[w]) for w in word_list}
    return vectors.astype(np.float32), word_to_row


def convert_hml263_evaluator(
    checkpoints: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    glove_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert the official evaluator (weights, normalisation, GloVe) once.

    Args:
        checkpoints: folder holding ``t2m/Comp_v6_KLD005`` (see :func:`find_evaluator_sources`).
        out_dir: target folder (default ``<checkpoints>/evaluators/hml263``).
        glove_dir: GloVe folder (default: searched beside ``checkpoints``).
        overwrite: replace an existing ``out_dir``.

    Returns:
        The written folder (complete, or not there at all: it is written under a temporary
        name and renamed).

    Raises:
        ArtifactNotFoundError, ArtifactFormatError: missing or malformed sources.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
    """
    from hftrainer_mogents.evaluation.hml263.evaluator import HumanML263Evaluator
    from hftrainer_mogents.evaluation.hml263.networks import (
        HML263EvaluatorNetworks,
        config_from_state_dicts,
    )
    from hftrainer_mogents.evaluation.hml263.word_vectors import WordVectorizer

    sources = find_evaluator_sources(checkpoints, glove_dir=glove_dir)
    out = Path(out_dir) if out_dir is not None else Path(checkpoints) / DEFAULT_OUT_SUBDIR
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    opt = parse_opt_txt(sources.opt_path)
    ckpt = read_evaluator_checkpoint(sources.weights_path)
    config = config_from_state_dicts(
        ckpt,
        unit_length=int(opt.get("unit_length", 4)),
        max_text_len=int(opt.get("max_text_len", 20)),
    )
    networks = HML263EvaluatorNetworks(config)
    for key in NETWORK_KEYS:
        load_state_dict_strict(
            getattr(networks, key), ckpt[key], source=f"{sources.weights_path} {key}"
        )
    vectors, word_to_row = read_glove(sources.glove_dir)
    mean = np.load(sources.meta_dir / "mean.npy", allow_pickle=False)
    std = np.load(sources.meta_dir / "std.npy", allow_pickle=False)
    evaluator = HumanML263Evaluator(networks, WordVectorizer(vectors, word_to_row), mean, std)
    provenance = {
        "converted_from": {
            "opt": str(sources.opt_path),
            "weights": str(sources.weights_path),
            "meta": str(sources.meta_dir),
            "glove": str(sources.glove_dir),
        },
        "sha256": {
            "finest.tar": sha256_file(sources.weights_path),
            "mean.npy": sha256_file(sources.meta_dir / "mean.npy"),
            "std.npy": sha256_file(sources.meta_dir / "std.npy"),
            **{
                f"{GLOVE_PREFIX}_{s}": sha256_file(sources.glove_dir / f"{GLOVE_PREFIX}_{s}")
                for s in ("data.npy", "words.pkl", "idx.pkl")
            },
        },
        "epoch": ckpt["epoch"],
        "iter": ckpt["iter"],
        "vocab_size": len(word_to_row),
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        evaluator.save_pretrained(tmp, provenance=provenance)
    logger.info("HumanML3D-263 evaluator written to %s", out)
    return out
