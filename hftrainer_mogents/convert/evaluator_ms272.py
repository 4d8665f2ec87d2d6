"""One-time, safe conversion of MotionStreamer's evaluator (``Evaluator_272/epoch=99.ckpt``, a
PyTorch Lightning checkpoint) to a folder that loads without unpickling anything.

The checkpoint is read with ``torch.load(weights_only=True)``; when it holds other objects (the
real Lightning file may: loops, callbacks, hyper-parameters) it is read again with our restricted
unpickler, which rebuilds tensors and turns every other object into an inert record. Only the
``textencoder.*`` and ``motionencoder.*`` weights are kept (selected by the first dotted
component; ``motiondecoder.*`` and a possible ``filter_model.*`` are dropped), loaded strictly into
our networks, and written by
:meth:`~hftrainer_mogents.evaluation.ms272.evaluator.MotionStreamer272Evaluator.save_pretrained`
(the folder layout is documented in :mod:`hftrainer_mogents.evaluation.ms272.evaluator`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    HubUnavailableError,
)
from hftrainer_mogents.evaluation.ms272.evaluator import PARTS, TEXT_MODEL_FILES
from hftrainer_mogents.utils.io import atomic_dir, load_state_dict_strict, sha256_file

__all__ = [
    "read_lightning_state_dict",
    "split_state_dict",
    "infer_config",
    "resolve_text_model_dir",
    "convert_ms272_evaluator",
]

logger = logging.getLogger(__name__)


def read_lightning_state_dict(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``state_dict`` of a Lightning checkpoint, read safely, and its scalar metadata.

    Returns:
        ``(state_dict, meta)``; ``meta`` holds ``epoch``, ``global_step``,
        ``pytorch-lightning_version`` and how the file was read.

    Raises:
        ArtifactNotFoundError: no such file.
        ArtifactFormatError: not a torch checkpoint, or no ``state_dict`` of tensors in it.
    """
    import torch

    from hftrainer_mogents.utils.safe_pickle import read_torch_zip, torch_load_weights_only

    try:
        ckpt = torch_load_weights_only(path)
        how = "torch.load(weights_only=True)"
    except ArtifactFormatError as err:
        logger.info(
            "%s: weights_only refused (%s); reading with the restricted unpickler", path, err
        )
        ckpt = read_torch_zip(path, stub_unknown=True)
        how = "restricted unpickler (non-tensor objects stubbed)"
    state = ckpt.get("state_dict") if isinstance(ckpt, Mapping) else None
    if (
        state is None
        and isinstance(ckpt, Mapping)
        and all(isinstance(v, torch.Tensor) for v in ckpt.values())
    ):
        state = ckpt
    if not isinstance(state, Mapping) or not state:
        keys = list(ckpt)[:10] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise ArtifactFormatError(f"{path}: no 'state_dict' of tensors (top level: {keys})")
    meta = {
        k: ckpt[k]
        for k in ("epoch", "global_step", "pytorch-lightning_version")
        if isinstance(ckpt, Mapping) and isinstance(ckpt.get(k), (int, str, float))
    }
    meta["read_with"] = how
    return dict(state), meta


def split_state_dict(state: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``{"textencoder": {...}, "motionencoder": {...}}`` by the first dotted component (prefix
    removed), and the other top-level components found (ignored)."""
    parts: dict[str, dict[str, Any]] = {p: {} for p in PARTS}
    ignored: set[str] = set()
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in parts:
            parts[head][rest] = value
        else:
            ignored.add(head)
    missing = [p for p in PARTS if not parts[p]]
    if missing:
        raise ArtifactFormatError(
            f"the checkpoint has no {' / '.join(m + '.*' for m in missing)} weights (found "
            f"components {sorted(ignored)}); is this MotionStreamer's Evaluator_272 checkpoint?"
        )
    return parts, sorted(ignored)


def infer_config(parts: Mapping[str, Mapping[str, Any]], *, num_heads: int = 4) -> Any:
    """The evaluator sizes from the weight shapes (heads cannot be inferred: given).

    Raises:
        ArtifactFormatError: a key the layout needs is missing.
    """
    from hftrainer_mogents.evaluation.ms272.networks import MS272EvaluatorConfig

    motion = parts["motionencoder"]
    try:
        latent, nfeats = motion["skel_embedding.weight"].shape
        ff = motion["seqTransEncoder.layers.0.linear1.weight"].shape[0]
        pe_len = motion["sequence_pos_encoding.pe"].shape[0]
    except KeyError as err:
        raise ArtifactFormatError(f"motionencoder weights lack {err}") from err
    layers = {k.split(".")[2] for k in motion if k.startswith("seqTransEncoder.layers.")}
    return MS272EvaluatorConfig(
        latent_dim=int(latent),
        ff_size=int(ff),
        num_layers=len(layers),
        num_heads=num_heads,
        nfeats=int(nfeats),
        pe_len=int(pe_len),
    )


def resolve_text_model_dir(
    text_model: str | os.PathLike[str], *, local_files_only: bool = False
) -> Path:
    """A local folder with the DistilBERT config and tokenizer: ``text_model`` itself, or the hub
    snapshot of that repo id (config and tokenizer files only).

    Raises:
        HubUnavailableError: not a folder and the hub (or cache) cannot serve it.
    """
    path = Path(text_model)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                str(text_model),
                allow_patterns=list(TEXT_MODEL_FILES),
                local_files_only=local_files_only,
            )
        )
    except Exception as err:  # noqa: BLE001 - any hub failure gets the same advice
        raise HubUnavailableError(
            f"cannot get the text model {text_model!r} from the Hugging Face Hub ({err}); pass a "
            "local folder holding its config.json and tokenizer files (e.g. a download of "
            "distilbert/distilbert-base-uncased)"
        ) from err


def convert_ms272_evaluator(
    ckpt: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    text_model: str | os.PathLike[str] = "distilbert-base-uncased",
    mean_std: str | os.PathLike[str] | None = None,
    num_heads: int = 4,
    overwrite: bool = False,
    local_files_only: bool = False,
) -> Path:
    """Convert ``epoch=99.ckpt`` (+ the DistilBERT tokenizer/config, + Mean/Std) to a folder.

    Args:
        ckpt: the Lightning checkpoint.
        out_dir: the folder to write (atomically, as a whole).
        text_model: a local DistilBERT folder, or its hub id (default the one upstream names).
        mean_std: a folder with ``Mean.npy``/``Std.npy`` (``humanml3d_272/mean_std``), optional.
        num_heads: attention heads (not stored in the checkpoint; 4 for the released one).
        overwrite: replace an existing folder.
        local_files_only: do not reach the hub for ``text_model``.

    Returns:
        ``out_dir``.
    """
    from transformers import AutoTokenizer

    from hftrainer_mogents.evaluation.ms272.dataset import load_mean_std
    from hftrainer_mogents.evaluation.ms272.evaluator import MotionStreamer272Evaluator
    from hftrainer_mogents.evaluation.ms272.networks import (
        MotionEncoder,
        TextEncoder,
        build_text_model,
    )

    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise ArtifactNotFoundError(
            f"evaluator checkpoint not found: {ckpt} (MotionStreamer's Evaluator_272/epoch=99.ckpt "
            "from the hub repo lxxiao/MotionStreamer)"
        )
    state, meta = read_lightning_state_dict(ckpt)
    parts, ignored = split_state_dict(state)
    config = infer_config(parts, num_heads=num_heads)
    text_dir = resolve_text_model_dir(text_model, local_files_only=local_files_only)
    if not (text_dir / "config.json").is_file():
        raise ArtifactNotFoundError(f"{text_dir}: no config.json of the text model")
    text_enc = TextEncoder(config, build_text_model(text_dir))
    motion_enc = MotionEncoder(config)
    load_state_dict_strict(text_enc, parts["textencoder"], source=f"{ckpt} textencoder")
    load_state_dict_strict(motion_enc, parts["motionencoder"], source=f"{ckpt} motionencoder")
    mean = std = None
    if mean_std is not None:
        mean, std = load_mean_std(mean_std)
    # the evaluator holds its tokenizer: loading it here also checks the text-model folder
    # before anything is written
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(text_dir), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ArtifactNotFoundError(
            f"{text_dir}: no usable tokenizer files of the text model ({err}); pass a folder "
            f"holding {', '.join(TEXT_MODEL_FILES)}"
        ) from err
    evaluator = MotionStreamer272Evaluator(
        text_enc,
        motion_enc,
        tokenizer,
        mean=mean,
        std=std,
        text_model=str(text_model),
        text_model_dir=text_dir,
    )
    provenance = {
        "checkpoint": str(ckpt),
        "sha256": sha256_file(ckpt),
        "ignored_components": ignored,
        **meta,
    }
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        evaluator.save_pretrained(tmp, provenance=provenance)
    return Path(out_dir)
