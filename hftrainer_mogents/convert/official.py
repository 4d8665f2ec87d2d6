"""Official MoGenTS checkpoints (+ CLIP weights) -> a safetensors artifact, and its verification.

The official release is a ``logs/<dataset>/`` folder (``pretrain_vq``, ``pretrain_mtrans``,
``pretrain_rtrans``, each with ``opt.txt`` and ``model/net_best_fid.tar``; ``pretrain_vq/meta``
holds ``mean.npy``/``std.npy``) plus ``checkpoints/<dataset>/length_estimator/model/finest.tar``
and OpenAI's CLIP ViT-B/32. The ``.tar`` files are read with ``torch.load(weights_only=True)`` and a
numpy-scalar allow-list: no pickled code runs. ``opt.txt`` values are cross-checked against the
tensor shapes. The artifact is written into a temporary folder and renamed into place.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hftrainer_mogents import artifact
from hftrainer_mogents.config import (
    LengthEstimatorConfig,
    MaskTransformerConfig,
    MoGenTSConfig,
    ResidualTransformerConfig,
    TextEncoderConfig,
    VQConfig,
)
from hftrainer_mogents.convert.official_opts import (
    parse_opt_txt,
    select_vq_state_dict,
    vq_config_from_opt,
)
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError
from hftrainer_mogents.utils.io import atomic_dir, check_state_dict
from hftrainer_mogents.utils.safe_pickle import torch_load_weights_only

__all__ = [
    "OfficialLayout",
    "ConversionResult",
    "VerifyRow",
    "transformer_config_from_opt",
    "load_official_bundle",
    "convert_official",
    "verify_artifact",
    "format_verify_table",
]

logger = logging.getLogger(__name__)

_LAYER_RE = re.compile(r"seqTransEncoder\.layers\.(\d+)\.")


@dataclass
class OfficialLayout:
    """Where the official files are (names as in the zoo's converter and the official demo)."""

    weights_root: Path
    length_root: Path = Path("checkpoints")
    dataset_name: str = "humanml3d"
    vq_name: str | None = None  # default: the mtrans opt.txt's vq_name
    mtrans_name: str = "pretrain_mtrans"
    rtrans_name: str = "pretrain_rtrans"
    len_name: str = "length_estimator"
    vq_ckpt_name: str = "net_best_fid.tar"
    mask_ckpt_name: str = "net_best_fid.tar"
    res_ckpt_name: str = "net_best_fid.tar"
    len_ckpt_name: str = "finest.tar"

    def run_dir(self, name: str) -> Path:
        return Path(self.weights_root) / self.dataset_name / name

    @property
    def length_ckpt(self) -> Path:
        return (
            Path(self.length_root)
            / self.dataset_name
            / self.len_name
            / "model"
            / self.len_ckpt_name
        )


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ArtifactNotFoundError(
            f"{what} not found: {path}. Expected the official layout "
            "logs/<dataset>/{pretrain_vq,pretrain_mtrans,pretrain_rtrans}/{opt.txt,model/net_best_fid.tar}, "
            "logs/<dataset>/pretrain_vq/meta/{mean,std}.npy and "
            "checkpoints/<dataset>/length_estimator/model/finest.tar (--weights_root / --length_root)"
        )
    return path


def _state(checkpoint: Mapping[str, Any], key: str, source: Path) -> dict[str, torch.Tensor]:
    value = checkpoint.get(key)
    if not isinstance(value, Mapping):
        raise ArtifactFormatError(
            f"{source}: no state dict under {key!r}; the file holds {sorted(map(str, checkpoint))}"
        )
    clip_keys = [k for k in value if str(k).startswith("clip_model.")]
    if clip_keys:  # upstream deletes them before saving; tolerate files that kept them
        logger.warning("%s[%r]: ignoring %d clip_model.* keys", source, key, len(clip_keys))
    return {k: v for k, v in value.items() if not str(k).startswith("clip_model.")}


def _opt_check(opt: Mapping[str, Any], name: str, value: Any, evidence: str, source: str) -> None:
    if name in opt and opt[name] != value:
        raise ArtifactFormatError(
            f"{source}: option {name}: {opt[name]!r} disagrees with the weights ({evidence})"
        )


def transformer_config_from_opt(
    opt: Mapping[str, Any],
    aux: Mapping[str, torch.Tensor],
    ts: Mapping[str, torch.Tensor],
    *,
    residual: bool,
    source: str = "opt.txt",
) -> MaskTransformerConfig | ResidualTransformerConfig:
    """The transformer config of an official mtrans / rtrans run, checked against its two state
    dicts (latent_dim and clip_dim from ``cond_emb``, n_layers from the layer indices, ff_size
    from ``linear1``, attnj/attnt from ``seqTransEncoder2/3`` in the ts model, share_weight from
    ``embed_proj_shared_weight``).

    Raises:
        ArtifactFormatError: an option disagrees with the tensors (option, value and evidence named)
            or the head count does not divide the width.
    """
    cls = ResidualTransformerConfig if residual else MaskTransformerConfig
    d, clip_dim = (int(n) for n in aux["cond_emb.weight"].shape)
    n_layers = 1 + max(int(m.group(1)) for k in aux if (m := _LAYER_RE.match(k)))
    ff_size = int(aux["seqTransEncoder.layers.0.linear1.weight"].shape[0])
    attnj = any(k.startswith("seqTransEncoder2.") for k in ts)
    attnt = any(k.startswith("seqTransEncoder3.") for k in ts)
    derived: dict[str, tuple[Any, str]] = {
        "latent_dim": (d, f"cond_emb.weight has shape {tuple(aux['cond_emb.weight'].shape)}"),
        "clip_dim": (clip_dim, f"cond_emb.weight has shape {tuple(aux['cond_emb.weight'].shape)}"),
        "n_layers": (n_layers, f"the aux model has seqTransEncoder.layers.0..{n_layers - 1}"),
        "ff_size": (ff_size, f"linear1.weight has {ff_size} rows"),
        "attnj": (attnj, "the ts model " + ("has" if attnj else "lacks") + " seqTransEncoder2"),
        "attnt": (attnt, "the ts model " + ("has" if attnt else "lacks") + " seqTransEncoder3"),
    }
    if residual:
        share = "embed_proj_shared_weight" in aux
        derived["share_weight"] = (
            share,
            "the weights " + ("have" if share else "lack") + " embed_proj_shared_weight",
        )
    for name, (value, evidence) in derived.items():
        _opt_check(opt, name, value, evidence, source)
    values = {name: value for name, (value, _) in derived.items()}
    for name in ("n_heads", "dropout", "cond_drop_prob"):
        if name in opt:
            values[name] = opt[name]
    config = cls(**values)
    if config.latent_dim % config.n_heads:
        raise ArtifactFormatError(
            f"{source}: n_heads {config.n_heads} does not divide latent_dim {config.latent_dim}"
        )
    return config


@dataclass
class VerifyRow:
    """One line of the verification table."""

    component: str
    tensors: int
    max_tensor_diff: float
    max_output_diff: float

    @property
    def ok(self) -> bool:
        return self.max_tensor_diff == 0 and self.max_output_diff == 0


@dataclass
class ConversionResult:
    """What :func:`convert_official` wrote (and verified)."""

    out_dir: Path
    config: MoGenTSConfig
    files: list[str]
    verify: list[VerifyRow] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.verify) and all(row.ok for row in self.verify)


def load_official_bundle(
    layout: OfficialLayout,
    *,
    clip: str | os.PathLike[str] | None = None,
    load_length_estimator: bool = True,
    text_encoder_dtype: str = "float16",
) -> tuple[Any, dict[str, dict[str, torch.Tensor]]]:
    """Build a :class:`~hftrainer_mogents.bundle.MoGenTSBundle` straight from the official files.

    Returns:
        ``(bundle, raw)``: the bundle (CPU, float32, eval) and the raw state dicts it was loaded
        from, by component (``clip`` is the full OpenAI-layout state dict).
    """
    from hftrainer_mogents.bundle import MoGenTSBundle
    from hftrainer_mogents.convert.clip import load_openai_clip_state_dict
    from hftrainer_mogents.modeling.text_encoder import select_text_state_dict

    mtrans_dir = layout.run_dir(layout.mtrans_name)
    rtrans_dir = layout.run_dir(layout.rtrans_name)
    mtrans_opt = parse_opt_txt(_require(mtrans_dir / "opt.txt", "mask-transformer options"))
    rtrans_opt = parse_opt_txt(_require(rtrans_dir / "opt.txt", "residual-transformer options"))
    vq_name = layout.vq_name or str(mtrans_opt.get("vq_name", "pretrain_vq"))
    if str(rtrans_opt.get("vq_name", vq_name)) != vq_name:
        raise ArtifactFormatError(
            f"{rtrans_dir / 'opt.txt'}: vq_name {rtrans_opt.get('vq_name')!r} differs from the "
            f"mask transformer's {vq_name!r}; both must use the same VQ-VAE"
        )
    vq_dir = layout.run_dir(vq_name)
    vq_opt = parse_opt_txt(_require(vq_dir / "opt.txt", "VQ options"))

    vq_path = _require(vq_dir / "model" / layout.vq_ckpt_name, "VQ checkpoint")
    mask_path = _require(
        mtrans_dir / "model" / layout.mask_ckpt_name, "mask-transformer checkpoint"
    )
    res_path = _require(
        rtrans_dir / "model" / layout.res_ckpt_name, "residual-transformer checkpoint"
    )
    vq_sd = dict(select_vq_state_dict(torch_load_weights_only(vq_path), source=str(vq_path)))
    mask_ckpt = torch_load_weights_only(mask_path)
    res_ckpt = torch_load_weights_only(res_path)
    raw: dict[str, dict[str, torch.Tensor]] = {
        "vq": vq_sd,
        "mask_aux": _state(mask_ckpt, "t2m_transformer_aux", mask_path),
        "mask_ts": _state(mask_ckpt, "t2m_transformer_ts", mask_path),
        "res_aux": _state(res_ckpt, "res_transformer_aux", res_path),
        "res_ts": _state(res_ckpt, "res_transformer_ts", res_path),
    }
    vq_config: VQConfig = vq_config_from_opt(vq_opt, vq_sd, source=str(vq_dir / "opt.txt"))
    mask_config = transformer_config_from_opt(
        mtrans_opt,
        raw["mask_aux"],
        raw["mask_ts"],
        residual=False,
        source=str(mtrans_dir / "opt.txt"),
    )
    res_config = transformer_config_from_opt(
        rtrans_opt, raw["res_aux"], raw["res_ts"], residual=True, source=str(rtrans_dir / "opt.txt")
    )
    length_config = None
    if load_length_estimator:
        len_path = layout.length_ckpt
        if not len_path.is_file():
            raise ArtifactNotFoundError(
                f"length estimator not found: {len_path} (--length_root / --len_name); pass "
                "--no_length_estimator to convert without it (generation then needs lengths)"
            )
        raw["length_estimator"] = _state(torch_load_weights_only(len_path), "estimator", len_path)
        weight = raw["length_estimator"]["output.0.weight"]
        head = raw["length_estimator"]["output.11.weight"]
        length_config = LengthEstimatorConfig(
            input_size=int(weight.shape[1]), output_size=int(head.shape[0])
        )

    clip_sd = load_openai_clip_state_dict(clip)
    raw["clip"] = clip_sd
    text = select_text_state_dict(clip_sd)
    text_config = TextEncoderConfig.from_state_dict(text, dtype=text_encoder_dtype)
    config = MoGenTSConfig(
        vq=vq_config,
        mask=mask_config,
        res=res_config,
        length=length_config,
        text_encoder=text_config,
    )
    with torch.device("meta"):
        bundle = MoGenTSBundle(config)
    for name, module in bundle.components():
        state = text if name == "clip" else raw[name]
        check_state_dict(module, state, source=f"{name} weights")
        module.load_state_dict(state, strict=True, assign=True)
    width = vq_config.input_width
    bundle.mean = torch.from_numpy(
        artifact.load_stat(_require(vq_dir / "meta" / "mean.npy", "VQ mean"), width)
    )
    bundle.std = torch.from_numpy(
        artifact.load_stat(_require(vq_dir / "meta" / "std.npy", "VQ std"), width, positive=True)
    )
    bundle._finish_loading()
    bundle._clip_extra = {k: v for k, v in clip_sd.items() if k not in text}
    bundle.source = str(layout.weights_root)
    return bundle, raw


def convert_official(
    layout: OfficialLayout,
    out_dir: str | os.PathLike[str],
    *,
    clip: str | os.PathLike[str] | None = None,
    load_length_estimator: bool = True,
    overwrite: bool = False,
    verify: bool = False,
    include_clip: bool = True,
) -> ConversionResult:
    """Convert the official release into an artifact folder (written whole, then renamed).

    Args:
        layout: where the official files are.
        out_dir: the artifact folder to create.
        clip: OpenAI's ``ViT-B-32.pt`` TorchScript archive or an OpenAI-layout state dict
            (``.pt``/``.safetensors``); default: the usual CLIP cache location.
        load_length_estimator: False converts without the length estimator.
        overwrite: replace an existing ``out_dir``.
        verify: reload the artifact and compare every tensor and every module's outputs with the
            raw checkpoints (:func:`verify_artifact`).
        include_clip: False writes the artifact without ``clip.safetensors`` (the zoo's
            ``--no_clip``, a "legacy export"). This package's pipeline encodes text with the
            artifact's own CLIP, so such an artifact does not load for generation: loading it
            fails with a message saying so (re-convert without ``--no_clip``). The CLIP weights are
            still read here, to check the text encoder the artifact was converted with.

    Raises:
        ArtifactNotFoundError / ArtifactFormatError: a missing or inconsistent official file.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
    """
    bundle, raw = load_official_bundle(
        layout, clip=clip, load_length_estimator=load_length_estimator
    )
    out_dir = Path(out_dir)
    rows = None
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        bundle.save_pretrained(tmp)
        if verify:  # before CLIP is dropped: the check reloads the whole artifact
            rows = verify_artifact(tmp, raw)
        if not include_clip:
            artifact.drop_clip(tmp)
        files = sorted(p.name for p in tmp.iterdir())
    result = ConversionResult(out_dir=out_dir, config=bundle.config, files=files)
    result.verify = rows or []
    return result


@torch.no_grad()
def verify_artifact(
    folder: str | os.PathLike[str], raw: Mapping[str, Mapping[str, torch.Tensor]], *, seed: int = 0
) -> list[VerifyRow]:
    """Reload the artifact and compare it with the raw official state dicts: every tensor
    (bit-equal, dtype aside) and every module's outputs on the same seeded inputs (the raw side is
    built from the official tensors directly).

    Returns:
        One :class:`VerifyRow` per component (plus the statistics).
    """
    from hftrainer_mogents.bundle import MoGenTSBundle
    from hftrainer_mogents.modeling.text_encoder import select_text_state_dict

    loaded = MoGenTSBundle.from_pretrained(folder, device="cpu")
    rows = []
    for name, module in loaded.components():
        state = raw[name]
        if name == "clip":
            state = select_text_state_dict(state)
        with torch.device("meta"):
            reference = type(module)(module.config, **_ctor_kwargs(name, loaded.config))
        reference.load_state_dict(
            {k: v.clone() for k, v in state.items()}, strict=True, assign=True
        )
        reference.requires_grad_(False)  # as the runtime modules: kernels differ otherwise
        if name == "clip":
            reference.set_numerics(module.config.dtype)
        reference.eval()
        mine = module.state_dict()
        theirs = reference.state_dict()
        tensor_diff = max(
            (float((mine[k].double() - theirs[k].double()).abs().max()) if mine[k].numel() else 0.0)
            for k in theirs
        )
        outputs_a = _probe(name, module, loaded.config, seed)
        outputs_b = _probe(name, reference, loaded.config, seed)
        output_diff = max(float((a - b).abs().max()) for a, b in zip(outputs_a, outputs_b))
        rows.append(VerifyRow(name, len(theirs), tensor_diff, output_diff))
    return rows


def _ctor_kwargs(name: str, config: MoGenTSConfig) -> dict[str, Any]:
    vq = config.vq
    q = vq.num_quantizers
    return {
        "vq": {},
        "mask_aux": {"code_dim": vq.code_dim1d, "num_tokens": vq.nb_code1d},
        "mask_ts": {"code_dim": vq.code_dim2d, "num_tokens": vq.nb_code2d},
        "res_aux": {"code_dim": vq.code_dim1d, "num_tokens": vq.nb_code1d, "num_quantizers": q},
        "res_ts": {"code_dim": vq.code_dim2d, "num_tokens": vq.nb_code2d, "num_quantizers": q},
        "length_estimator": {},
        "clip": {},
    }[name]


def _probe(
    name: str, module: torch.nn.Module, config: MoGenTSConfig, seed: int
) -> list[torch.Tensor]:
    """Deterministic outputs of one module (the same seeded inputs for both sides)."""
    g = torch.Generator().manual_seed(seed)
    vq = config.vq
    b, t = 2, 5
    pad = torch.tensor([[False] * t, [False] * 3 + [True] * (t - 3)])
    cond = torch.randn(b, config.mask.clip_dim, generator=g)
    if name == "vq":
        ids_aux = torch.randint(-1, vq.nb_code1d, (b, t, vq.num_quantizers), generator=g)
        ids_ts = torch.randint(-1, vq.nb_code2d, (b, t, 6, vq.num_quantizers), generator=g)
        return list(module.forward_decoder(ids_aux, ids_ts))
    if name == "mask_aux":
        ids = torch.randint(0, vq.nb_code1d + 2, (b, t), generator=g)
        return [module.forward_with_cond_scale(ids, cond, pad, 4.0, batched=False)]
    if name == "mask_ts":
        ids = torch.randint(0, vq.nb_code2d + 2, (b, t, 6), generator=g)
        return [module.forward_with_cond_scale(ids, cond, pad, 4.0, batched=False)]
    if name in ("res_aux", "res_ts"):
        n = t if name == "res_aux" else t * 6
        hist = torch.randn(b, n, module.code_dim, generator=g)
        return [
            module.forward_with_cond_scale(hist, layer, cond, pad, 5.0, batched=False)
            for layer in range(1, vq.num_quantizers)
        ]
    if name == "length_estimator":
        return [module(cond)]
    if name == "clip":
        vocab = module.config.vocab_size
        ids = torch.randint(1, vocab - 2, (b, module.config.context_length), generator=g)
        ids[:, 10] = vocab - 1  # end token: the pooling position
        return [module(ids)]
    raise KeyError(name)


def format_verify_table(rows: list[VerifyRow]) -> str:
    """The verification table as text."""
    header = f"{'component':<18}{'tensors':>8}{'max |dW|':>12}{'max |dy|':>12}  status"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.component:<18}{row.tensors:>8}{row.max_tensor_diff:>12.3g}"
            f"{row.max_output_diff:>12.3g}  {'OK' if row.ok else 'MISMATCH'}"
        )
    return "\n".join(lines)
