"""Official ``opt.txt`` options: reading them, and turning them into config dataclasses
cross-checked against the weights.

The official run folders store their hyper-parameters in ``opt.txt`` (read with
:func:`parse_opt_txt`, typed as upstream does with :func:`opt_value`). Those values and the
tensors of the checkpoint must agree; where a size can be read from a tensor shape it is checked,
so a wrong or mismatched options file is caught here with a message naming the option, its value
and the tensor, not later as a shape error deep inside ``load_state_dict``. Apart from
:func:`parse_opt_txt`, pure functions: no file access.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from hftrainer_mogents.config import VQConfig
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError

__all__ = [
    "parse_opt_txt",
    "opt_value",
    "VQ_STATE_DICT_KEYS",
    "select_vq_state_dict",
    "vq_sizes_from_state_dict",
    "vq_config_from_opt",
]

logger = logging.getLogger(__name__)

VQ_STATE_DICT_KEYS = ("vq_model", "net")  # where official VQ checkpoints keep the weights, in order
_NO_NORM = ("None", "none", "")  # opt.txt writes vq_norm None as the string 'None'
_ACTIVATIONS = ("relu", "silu", "gelu")

_FLOAT_RE = re.compile(r"^[-+]?[0-9]+\.[0-9]+$")
_OPT_HEADER = "------------ Options -------------"
_OPT_FOOTER = "-------------- End ----------------"


def opt_value(text: str) -> Any:
    """Type one opt.txt value with the upstream rules: ``True``/``False`` -> bool, ``d+.d+`` ->
    float, digits -> int, anything else stays a string (so ``None`` is the string ``'None'``)."""
    if text in ("True", "False"):
        return text == "True"
    if _FLOAT_RE.match(text):
        return float(text)
    if text.isdigit():
        return int(text)
    return text


def parse_opt_txt(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an official ``opt.txt`` (``key: value`` lines between the Options/End banners).

    Raises:
        ArtifactNotFoundError: the file does not exist.
        ArtifactFormatError: no ``key: value`` line could be read.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(f"options file not found: {path}")
    options: dict[str, Any] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line in (_OPT_HEADER, _OPT_FOOTER) or ": " not in line:
            continue
        key, value = line.split(": ", 1)
        options[key.strip()] = opt_value(value.strip())
    if not options:
        raise ArtifactFormatError(f"{path}: no 'key: value' option lines found")
    return options


def select_vq_state_dict(
    checkpoint: Mapping[str, Any], *, source: str = "checkpoint"
) -> Mapping[str, Any]:
    """The VQ weights of an official checkpoint: ``checkpoint['vq_model']``, else
    ``checkpoint['net']`` (as the official loaders do).

    Raises:
        ArtifactFormatError: neither key holds a state dict (the message lists the keys found).
    """
    for key in VQ_STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    raise ArtifactFormatError(
        f"{source}: no VQ weights under {' or '.join(map(repr, VQ_STATE_DICT_KEYS))}; the file "
        f"has {sorted(map(str, checkpoint))} (expected pretrain_vq/model/net_best_fid.tar)"
    )


def _shape(state_dict: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
    try:
        return tuple(int(n) for n in state_dict[key].shape)
    except KeyError:
        raise ArtifactFormatError(
            f"{source}: key {key!r} is missing; this is not an official MoGenTS VQ state dict "
            "(ckpt['vq_model'] or ckpt['net'])"
        ) from None


def _count(state_dict: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state_dict if (m := regex.fullmatch(k))})


def vq_sizes_from_state_dict(
    state_dict: Mapping[str, Any], *, source: str = "vq_model"
) -> dict[str, tuple[Any, str]]:
    """Every :class:`VQConfig` field that the tensor shapes determine.

    Args:
        state_dict: the official VQ state dict (values need only a ``shape``).
        source: name of the weights, for messages.

    Returns:
        field name -> (value, evidence), the evidence naming the tensor and its shape.

    Raises:
        ArtifactFormatError: a key every VQ state dict has is missing, or the two streams disagree
            on the number of quantizer layers.
    """
    sizes: dict[str, tuple[Any, str]] = {}
    for stream in ("1d", "2d"):
        key = f"quantizer{stream}.layers.0.codebook"
        nb_code, code_dim = _shape(state_dict, key, source)
        sizes[f"nb_code{stream}"] = (nb_code, f"{key} has shape {(nb_code, code_dim)}")
        sizes[f"code_dim{stream}"] = (code_dim, f"{key} has shape {(nb_code, code_dim)}")
    layers = {
        s: _count(state_dict, rf"quantizer{s}\.layers\.(\d+)\.codebook") for s in ("1d", "2d")
    }
    if layers["1d"] != layers["2d"]:
        raise ArtifactFormatError(
            f"{source}: {layers['1d']} aux codebooks (quantizer1d.layers.*) but {layers['2d']} "
            "ts codebooks (quantizer2d.layers.*); both streams must have num_quantizers layers"
        )
    sizes["num_quantizers"] = (
        layers["1d"],
        f"the checkpoint has {layers['1d']} tensors quantizer1d.layers.{{i}}.codebook",
    )
    key = "encoder1d.model.0.weight"
    shape = _shape(state_dict, key, source)
    sizes["width"] = (shape[0], f"{key} has shape {shape}")
    down_t = _count(state_dict, r"encoder1d\.model\.(\d+)\.0\.weight")
    sizes["down_t"] = (
        down_t,
        f"the checkpoint has {down_t} strided stages encoder1d.model.{{s}}.0.weight",
    )
    key = "encoder1d.model.2.0.weight"
    shape = _shape(state_dict, key, source)
    sizes["stride_t"] = (shape[-1] // 2, f"{key} has shape {shape} (kernel = 2 * stride_t)")
    depth = _count(state_dict, r"encoder1d\.model\.2\.1\.model\.(\d+)\.conv1\.weight")
    sizes["depth"] = (
        depth,
        f"the checkpoint has {depth} blocks encoder1d.model.2.1.model.{{k}}.conv1.weight",
    )
    return sizes


def vq_config_from_opt(
    opt: Mapping[str, Any], state_dict: Mapping[str, Any], *, source: str = "opt.txt"
) -> VQConfig:
    """Build the :class:`VQConfig` of an official VQ run and check it against its weights.

    Options missing from ``opt`` are taken from the tensor shapes where those determine them,
    otherwise from the defaults (with a warning). ``vq_norm: None`` (the string ``'None'`` in
    opt.txt) becomes ``None``.

    Args:
        opt: the parsed ``pretrain_vq/opt.txt`` (:func:`parse_opt_txt`).
        state_dict: the checkpoint's ``vq_model`` (or ``net``) state dict.
        source: the options file's name, for messages.

    Returns:
        The config whose :class:`~hftrainer_mogents.modeling.rvq_vae.RVQVAE` has exactly the
        checkpoint's shapes.

    Raises:
        ArtifactFormatError: an option disagrees with a tensor shape (the message names the option,
            its opt.txt value and the tensor with its shape), has the wrong type, or names an
            unsupported normalisation or activation.
    """
    values: dict[str, Any] = {}
    missing = []
    for f in fields(VQConfig):
        if f.name in opt:
            values[f.name] = opt[f.name]
        else:
            missing.append(f.name)

    norm = values.get("vq_norm")
    if norm is not None and norm not in _NO_NORM:
        raise ArtifactFormatError(
            f"{source}: vq_norm: {norm!r} is not supported; the MoGenTS VQ-VAE is built without "
            "normalisation (vq_norm: None)"
        )
    values["vq_norm"] = None
    if values.get("vq_act", "relu") not in _ACTIVATIONS:
        raise ArtifactFormatError(
            f"{source}: vq_act: {values['vq_act']!r} is not one of {list(_ACTIVATIONS)}"
        )
    defaults = VQConfig()
    for name, value in values.items():
        expected = type(getattr(defaults, name))
        if name == "vq_norm":
            continue
        if expected is float and type(value) is int:  # opt.txt writes e.g. "mu: 1"
            values[name] = value = float(value)
        if type(value) is not expected:  # also refuses True for an int option
            raise ArtifactFormatError(
                f"{source}: option {name}: {value!r} should be a {expected.__name__}"
            )

    # The feature width fixes the skeleton, not the dataset's name (motionx has 263 dims too).
    key = "encoder1d.model.0.weight"
    shape = _shape(state_dict, key, "vq_model")
    if "dataset_name" not in values:
        values["dataset_name"] = (
            "kit" if shape[1] == VQConfig(dataset_name="kit").input_width else "humanml3d"
        )
        missing.remove("dataset_name")
    if VQConfig(dataset_name=values["dataset_name"]).input_width != shape[1]:
        raise ArtifactFormatError(
            f"{source}: option dataset_name: {values['dataset_name']!r} disagrees with the "
            f"checkpoint: {key} has shape {shape}, i.e. {shape[1]} input features, but "
            f"{values['dataset_name']!r} motions have "
            f"{VQConfig(dataset_name=values['dataset_name']).input_width}"
        )
    for name, (derived, evidence) in vq_sizes_from_state_dict(state_dict).items():
        if name not in values:
            values[name] = derived
            missing.remove(name)
        elif values[name] != derived:
            raise ArtifactFormatError(
                f"{source}: option {name}: {values[name]!r} disagrees with the checkpoint: "
                f"{evidence}, which means {name} = {derived!r}"
            )
    missing = [name for name in missing if name != "vq_norm"]
    if missing:
        logger.warning("%s: options %s missing, using the defaults", source, missing)
    return VQConfig(**values)
