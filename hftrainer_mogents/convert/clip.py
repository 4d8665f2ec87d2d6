"""Reading OpenAI CLIP weights (ViT-B/32) into an OpenAI-layout state dict, without unpickling code.

Accepted files:

- OpenAI's TorchScript archive (``ViT-B-32.pt``, what ``clip.load("ViT-B/32")`` downloads): read
  with :func:`~hftrainer_mogents.utils.safe_pickle.read_torch_zip`; the module tree comes back as
  inert records whose tensor attributes are flattened into ``CLIP.state_dict()`` keys.
- an OpenAI-layout state dict saved with ``torch.save`` (``.pt`` / ``.pth``; read with
  ``weights_only=True``), possibly nested in a checkpoint dict or under a prefix such as
  ``module.``;
- ``.safetensors``.

Tensors keep their stored dtype (OpenAI's archives are float16, the usual converted files
float32): the caller decides. Every official value is fp16-representable, so casting to float32
and back is exact.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError
from hftrainer_mogents.modeling.text_encoder import expected_text_keys
from hftrainer_mogents.utils.safe_pickle import (
    PickledObject,
    find_state_dicts,
    read_torch_zip,
    torch_load_weights_only,
)

__all__ = [
    "CLIP_VIT_B_32_URL",
    "CLIP_VIT_B_32_SHA256",
    "NON_PARAMETER_ATTRIBUTES",
    "default_clip_path",
    "is_torchscript_archive",
    "torchscript_state_dict",
    "load_openai_clip_state_dict",
    "check_text_state_dict",
]

# The file clip.load("ViT-B/32") downloads; the hex folder name is the file's sha256.
CLIP_VIT_B_32_SHA256 = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
CLIP_VIT_B_32_URL = (
    f"https://openaipublic.azureedge.net/clip/models/{CLIP_VIT_B_32_SHA256}/ViT-B-32.pt"
)

# Tensor attributes of the traced modules that are not parameters of clip.model.CLIP (the causal
# mask, and sizes stored as tensors on the top module); clip.build_model drops them too.
NON_PARAMETER_ATTRIBUTES = frozenset(
    {"attn_mask", "input_resolution", "context_length", "vocab_size"}
)


def default_clip_path() -> Path:
    """Where ``clip.load("ViT-B/32")`` keeps the weights: ``~/.cache/clip/ViT-B-32.pt``."""
    return Path(os.path.expanduser("~/.cache/clip")) / "ViT-B-32.pt"


def is_torchscript_archive(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a TorchScript zip archive (``torch.jit.save`` output) rather than a
    ``torch.save`` checkpoint: TorchScript archives carry ``constants.pkl`` and ``code/``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def torchscript_state_dict(root: PickledObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten the module records of a TorchScript archive into state-dict keys.

    Args:
        root: the top module record from ``read_torch_zip`` (its ``state`` maps attribute names to
            tensors, sub-module records and plain values).
        prefix: key prefix of ``root``'s entries.

    Returns:
        ``{"a.b.c": tensor}`` for every tensor attribute, in attribute order, except the
        non-parameter attributes in :data:`NON_PARAMETER_ATTRIBUTES`.
    """
    out: dict[str, torch.Tensor] = {}
    state = root.state if isinstance(root.state, Mapping) else {}
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            if name not in NON_PARAMETER_ATTRIBUTES:
                out[prefix + name] = value.contiguous()
        elif isinstance(value, PickledObject):
            out.update(torchscript_state_dict(value, f"{prefix}{name}."))
    return out


def _strip_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Remove a wrapper prefix (``module.``, ``clip_model.``, ...) found before
    ``text_projection``."""
    key = next((k for k in state_dict if k.endswith("text_projection")), None)
    prefix = key[: -len("text_projection")] if key else ""
    if not prefix:
        return dict(state_dict)
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def _from_torch_checkpoint(path: Path) -> dict[str, Any]:
    obj = torch_load_weights_only(path)
    candidates = find_state_dicts(obj)
    for found in candidates.values():
        if any(k.endswith("text_projection") for k in found):
            return _strip_prefix(found)
    listing = {where: len(sd) for where, sd in candidates.items()} or "no tensor dict"
    raise ArtifactFormatError(
        f"{path}: no CLIP state dict inside (looked for a dict of tensors with a "
        f"'text_projection' key; found {listing})"
    )


def check_text_state_dict(state_dict: Mapping[str, Any], *, source: str = "") -> None:
    """Check that an OpenAI-layout state dict holds a complete text tower.

    Args:
        state_dict: ``CLIP.state_dict()`` layout.
        source: file name for the message.

    Raises:
        ArtifactFormatError: a text-tower key is missing or not a tensor (all of them named).
    """
    where = f"{source}: " if source else ""
    blocks = {k.split(".")[2] for k in state_dict if k.startswith("transformer.resblocks.")}
    layers = max(len(blocks), 1)
    missing = [k for k in expected_text_keys(layers) if k not in state_dict]
    if missing:
        raise ArtifactFormatError(
            f"{where}not an OpenAI CLIP checkpoint: missing text-tower keys {missing}"
        )
    bad = [k for k in expected_text_keys(layers) if not isinstance(state_dict[k], torch.Tensor)]
    if bad:
        raise ArtifactFormatError(f"{where}entries {bad} are not tensors")


def load_openai_clip_state_dict(
    path: str | os.PathLike[str] | None = None,
) -> dict[str, torch.Tensor]:
    """OpenAI CLIP weights as a ``CLIP.state_dict()``-layout dict.

    Args:
        path: a TorchScript archive (OpenAI's ``ViT-B-32.pt``), a torch-saved state dict
            (``.pt``/``.pth``) or a ``.safetensors`` file; ``None`` means :func:`default_clip_path`.

    Returns:
        ``{key: tensor}`` with the stored dtypes (float16 for OpenAI's archive) and every key the
        file holds (``visual.*`` and ``logit_scale`` too); use
        ``modeling.text_encoder.select_text_state_dict`` for the text tower.

    Raises:
        ArtifactNotFoundError: the file does not exist (the message says where to get it).
        ArtifactFormatError: unreadable, or a text-tower key is missing (named).
    """
    if path is None:
        path = default_clip_path()
        if not path.is_file():
            raise ArtifactNotFoundError(
                f"CLIP ViT-B/32 weights not found at {path} (the default location of "
                f'clip.load("ViT-B/32")). Download {CLIP_VIT_B_32_URL} (sha256 '
                f"{CLIP_VIT_B_32_SHA256}) to that path, or pass the file's path with --clip PATH "
                "(a TorchScript .pt, a state-dict .pt/.pth or a .safetensors file)."
            )
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(
            f"CLIP weights not found: {path} (pass an existing file with --clip PATH; OpenAI's "
            f"ViT-B/32 file is {CLIP_VIT_B_32_URL})"
        )
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state_dict: dict[str, Any] = _strip_prefix(load_file(path))
        except (SafetensorError, OSError) as err:
            raise ArtifactFormatError(f"{path}: not a readable safetensors file ({err})") from err
    elif is_torchscript_archive(path):
        root = read_torch_zip(path)
        if not isinstance(root, PickledObject):
            raise ArtifactFormatError(
                f"{path}: TorchScript archive without a module at its root ({type(root).__name__})"
            )
        state_dict = torchscript_state_dict(root)
    else:
        state_dict = _from_torch_checkpoint(path)
    check_text_state_dict(state_dict, source=str(path))
    return state_dict
