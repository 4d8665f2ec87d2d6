"""``MoGenTSBundle``: the six MoGenTS networks, the CLIP text tower and the normalisation
statistics, loaded from (and saved to) the artifact layout of :mod:`hftrainer_mogents.artifact`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hftrainer_mogents import artifact
from hftrainer_mogents._version import __version__
from hftrainer_mogents.config import MoGenTSConfig, TextEncoderConfig
from hftrainer_mogents.errors import ArtifactFormatError, InvalidInputError
from hftrainer_mogents.host_compat import HostBundleMixin
from hftrainer_mogents.modeling.length_estimator import LengthEstimator
from hftrainer_mogents.modeling.mask_transformer import MaskTransformer, MaskTransformer2D
from hftrainer_mogents.modeling.residual_transformer import (
    ResidualTransformer,
    ResidualTransformer2D,
)
from hftrainer_mogents.modeling.rvq_vae import RVQVAE
from hftrainer_mogents.modeling.text_encoder import CLIPTextEncoder, select_text_state_dict
from hftrainer_mogents.utils.device import resolve_device
from hftrainer_mogents.utils.io import (
    atomic_save_npy,
    atomic_write_json,
    check_dtypes,
    check_state_dict,
    load_safetensors,
    safetensors_shapes,
    save_safetensors,
)
from hftrainer_mogents.utils.precision import CPU_BF16_EMULATED_WARNING, cpu_bf16_instructions

__all__ = [
    "MoGenTSBundle",
    "COMPONENT_ATTRIBUTES",
    "resolve_dtype",
    "dtype_name",
    "check_runtime_device",
]

logger = logging.getLogger(__name__)

# artifact component -> bundle attribute (the zoo's attribute names)
COMPONENT_ATTRIBUTES: dict[str, str] = {
    "vq": "vq_model",
    "mask_aux": "mask_transformer_aux",
    "mask_ts": "mask_transformer_ts",
    "res_aux": "res_transformer_aux",
    "res_ts": "res_transformer_ts",
    "length_estimator": "length_estimator",
    "clip": "text_encoder",
}
# networks that follow the bundle's compute dtype (the text tower has its own, the length
# estimator and the statistics stay float32)
_COMPUTE_COMPONENTS = ("vq", "mask_aux", "mask_ts", "res_aux", "res_ts")

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype | None, *, name: str = "dtype") -> torch.dtype:
    """``None`` -> float32; names such as ``"bf16"`` / ``"bfloat16"`` -> the torch dtype. The one
    dtype-name parser of the package: ``dtype`` and ``text_encoder_dtype`` accept the same
    spellings.

    Args:
        dtype: a torch floating dtype, a name (``float32``/``fp32``, ``float16``/``fp16``/
            ``half``, ``bfloat16``/``bf16``, with or without ``torch.``) or None.
        name: the argument's name, for the message.

    Raises:
        InvalidInputError: an unknown name or a non-floating dtype.
    """
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise InvalidInputError(f"{name} must be a floating type, got {dtype}")
        return dtype
    key = str(dtype).replace("torch.", "").lower() if isinstance(dtype, str) else None
    if key not in _DTYPES:
        raise InvalidInputError(f"unknown {name} {dtype!r}; use one of {sorted(set(_DTYPES))}")
    return _DTYPES[key]


def dtype_name(dtype: str | torch.dtype, *, name: str = "dtype") -> str:
    """The canonical name (``"float32"``, ``"float16"``, ``"bfloat16"``) of any spelling
    :func:`resolve_dtype` accepts."""
    return str(resolve_dtype(dtype, name=name)).removeprefix("torch.")


def _text_encoder_dtype(dtype: str | torch.dtype) -> str:
    """``text_encoder_dtype`` in any spelling of :func:`resolve_dtype` -> the text tower's
    numerics name (``float16``, ``float32`` or ``bfloat16``)."""
    canonical = dtype_name(dtype, name="text_encoder_dtype")
    if canonical not in ("float16", "float32", "bfloat16"):
        raise InvalidInputError(
            f"text_encoder_dtype must be float16, float32 or bfloat16, got {dtype!r}"
        )
    return canonical


def check_runtime_device(
    device: str | torch.device | None, *, allow_none: bool = False
) -> torch.device | None:
    """``device`` resolved (:func:`~hftrainer_mogents.utils.device.resolve_device`: None or
    ``"auto"`` picks CUDA when available) and able to hold weights.

    Raises:
        InvalidInputError: not a device, not available, or ``meta`` (shapes only, no values).
    """
    if device is None and allow_none:
        return None
    dev = resolve_device(device)
    if dev.type == "meta":
        raise InvalidInputError(
            f"device {str(device)!r} cannot hold weights (the meta device keeps shapes only); "
            "use 'cpu' or 'cuda' (CLI --device, keyword device=)"
        )
    return dev


def _stored_dtypes(name: str, module: nn.Module) -> dict[str, tuple[torch.dtype, ...]]:
    """Key -> the dtypes an artifact file stores for ``module``'s tensors: float32 for every
    floating tensor of the generation networks and the length estimator (a compute dtype is a
    cast at load), float16 or float32 for the CLIP tower's (OpenAI's archive is float16, converted
    files float32), and the module's own dtype for integer and bool buffers."""
    out = {}
    for key, tensor in module.state_dict().items():
        if not tensor.is_floating_point():
            out[key] = (tensor.dtype,)
        elif name == "clip":
            out[key] = (torch.float16, torch.float32)
        else:
            out[key] = (torch.float32,)
    return out


def _as_config(config: MoGenTSConfig | Mapping[str, Any] | None) -> MoGenTSConfig:
    """``None`` -> the released HumanML3D sizes; a mapping is a ``mogents_config.json`` document
    or just its ``"config"`` block."""
    if config is None:
        return MoGenTSConfig()
    if isinstance(config, MoGenTSConfig):
        return config
    if isinstance(config, Mapping):
        doc = dict(config)
        if "config" not in doc:
            doc = {"config": doc}
        return MoGenTSConfig.from_json_dict(doc, source="config dict")
    raise InvalidInputError(
        f"config must be a MoGenTSConfig, a mogents_config.json dict or None, got "
        f"{type(config).__name__}"
    )


class MoGenTSBundle(HostBundleMixin, nn.Module):
    """The MoGenTS networks and statistics.

    It also offers what the hftrainer host's ``ModelBundle`` gives its subclasses
    (:class:`~hftrainer_mogents.host_compat.HostBundleMixin`): ``trainable_parameters``,
    ``state_dict_to_save``, ``load_state_dict_selective``, ``checkpoint_metadata``, ... The
    generation networks (and the length estimator) are the trainable modules, the CLIP text tower
    is frozen; all of them are saved, so a host checkpoint restores the whole bundle.

    Attributes:
        config: the :class:`~hftrainer_mogents.config.MoGenTSConfig`.
        vq_model: dual-stream RVQ-VAE.
        mask_transformer_aux, mask_transformer_ts: 1D / 2D mask transformers.
        res_transformer_aux, res_transformer_ts: 1D / 2D residual transformers.
        length_estimator: the length estimator, or None.
        text_encoder: the CLIP text tower.
        mean, std: (263,) float32 buffers (physical = normalised * std + mean).

    Examples:
        >>> bundle = MoGenTSBundle.from_pretrained("checkpoints/mogents/humanml3d")  # doctest: +SKIP
        >>> bundle.encode_text(["a person walks forward"]).shape  # doctest: +SKIP
        torch.Size([1, 512])
    """

    def __init__(self, config: MoGenTSConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        config = _as_config(config)
        self.config = config
        vq = config.vq
        q = vq.num_quantizers
        self.vq_model = RVQVAE(vq)
        self.mask_transformer_aux = MaskTransformer(config.mask, vq.code_dim1d, vq.nb_code1d)
        self.mask_transformer_ts = MaskTransformer2D(config.mask, vq.code_dim2d, vq.nb_code2d)
        self.res_transformer_aux = ResidualTransformer(config.res, vq.code_dim1d, vq.nb_code1d, q)
        self.res_transformer_ts = ResidualTransformer2D(config.res, vq.code_dim2d, vq.nb_code2d, q)
        self.length_estimator = (
            LengthEstimator(config.length) if config.length is not None else None
        )
        self.text_encoder = CLIPTextEncoder(config.text_encoder)
        width = vq.input_width
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        # where the non-text CLIP weights (visual tower, logit scale) live, to carry them over on
        # save without holding them in memory
        self._clip_extra_source: Path | None = None
        self._clip_extra: dict[str, torch.Tensor] | None = None
        self.source: str | None = None
        self.revision: str | None = None
        networks = [COMPONENT_ATTRIBUTES[n] for n, _ in self.components() if n != "clip"]
        self._set_module_roles(
            trainable=networks,
            frozen=[COMPONENT_ATTRIBUTES["clip"]],
            save=[*networks, COMPONENT_ATTRIBUTES["clip"]],
        )

    # ------------------------------------------------------------------ components

    def components(self) -> Iterator[tuple[str, nn.Module]]:
        """``(component, module)`` for every network present, in artifact order."""
        for name, attr in COMPONENT_ATTRIBUTES.items():
            module = getattr(self, attr)
            if module is not None:
                yield name, module

    @property
    def device(self) -> torch.device:
        """Device of the statistics (all modules live there)."""
        return self.mean.device

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the generation networks."""
        return self.vq_model.linear_out.weight.dtype

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (..., 263) -> physical units (``x * std + mean``, float32)."""
        return x.float() * self.std + self.mean

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Physical (..., 263) -> normalised (float32)."""
        return (x.float() - self.mean) / self.std

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP text features of ``texts``: (B, 512) float32 on the bundle's device."""
        return self.text_encoder.encode(list(texts)).float()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "MoGenTSBundle holds the networks; generate with MoGenTSPipeline(bundle).infer_t2m(...)"
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(
        cls, cfg: MoGenTSConfig | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> MoGenTSBundle:
        """Untrained networks of a config (default: the released HumanML3D sizes); no disk
        access, in eval mode.

        ``cfg`` is a :class:`MoGenTSConfig`, a ``mogents_config.json`` document, or the host's
        bundle config: a dict with ``"type"`` (this class's name, or another registered bundle,
        then built through the host's ``MODEL_BUNDLES``) and the constructor's arguments
        (``config``). ``kwargs`` are constructor arguments (``config=``), merged into the host's
        form.

        Raises:
            InvalidInputError: a config of the wrong kind, a config given twice, or a ``type``
                naming another bundle.
            HostNotInstalledError: ``type`` names another bundle and the host is not installed.
            ArtifactFormatError: a malformed ``mogents_config.json`` document.
        """
        if isinstance(cfg, Mapping) and "type" in cfg:
            merged = {**cfg, **kwargs}
            kind = merged.pop("type")
            if not cls._is_own_type(kind):
                from hftrainer_mogents.zoo.host import host_registries

                return host_registries()["MODEL_BUNDLES"].build({"type": kind, **merged})
            return cls(**merged).eval()
        if cfg is not None:
            if "config" in kwargs:
                raise InvalidInputError(
                    "from_config got a config twice (positionally and as config=); give one"
                )
            kwargs = {"config": cfg, **kwargs}
        return cls(**kwargs).eval()

    @classmethod
    def from_cfg(
        cls, cfg: MoGenTSConfig | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> MoGenTSBundle:
        """:meth:`from_config` under the host's mmengine-style alias."""
        return cls.from_config(cfg, **kwargs)

    @classmethod
    def _is_own_type(cls, kind: Any) -> bool:
        return kind is cls or kind in (
            cls.__name__,
            f"{cls.__module__}.{cls.__qualname__}",
            f"{cls.__module__}:{cls.__qualname__}",
        )

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | os.PathLike[str] | None = artifact.DEFAULT_REPO_ID,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        force_download: bool = False,
        device: str | torch.device | None = "cpu",
        dtype: str | torch.dtype | None = None,
        text_encoder_dtype: str | None = None,
        load_length_estimator: bool = True,
        verify_checksums: bool = True,
    ) -> MoGenTSBundle:
        """Load an artifact from a local folder or a hub repo (only the artifact files are
        downloaded).

        Args:
            path_or_repo_id: artifact folder or hub repo id (default, and None: the published
                ``ZeyuLing/hftrainer-mogents-humanml3d``).
            revision: the hub revision (branch, tag or commit) to download.
            cache_dir: the hub cache folder (default: huggingface_hub's).
            local_files_only: use the hub cache only, never the network.
            token: the hub token, for private repos.
            force_download: download again even when the cache has the files.
            device: where to put the networks (None or ``"auto"``: CUDA when available; not
                ``"meta"``).
            dtype: compute dtype of the generation networks (float32 default; ``torch.bfloat16``
                casts them once, here).
            text_encoder_dtype: ``"float16"`` (the official CLIP numerics), ``"float32"`` or
                ``"bfloat16"``, in any spelling ``dtype`` accepts; default: the artifact's config.
            load_length_estimator: skip the length estimator when False.
            verify_checksums: check each file's sha256 against ``model_index.json`` (a missing
                ``model_index.json`` is an error; ``False`` is the only way to load files
                unverified). The zoo's own published index records no checksums: such an
                artifact loads with a warning.

        Raises:
            InvalidInputError: a bad ``device``, ``dtype`` or ``text_encoder_dtype`` (before
                anything is read or downloaded).
            ArtifactNotFoundError: missing folder, repo or file.
            ArtifactFormatError: bad config, missing/unexpected keys, wrong shapes or dtypes,
                truncated file.
            ChecksumMismatchError: a file differs from its recorded sha256.
            HubUnavailableError: the hub cannot be reached and the cache cannot serve the request.
        """
        # what can be checked without the artifact is checked before it is fetched
        device = check_runtime_device(device, allow_none=True)
        dtype = None if dtype is None else resolve_dtype(dtype)
        if text_encoder_dtype is not None:
            text_encoder_dtype = _text_encoder_dtype(text_encoder_dtype)
        if path_or_repo_id is None:
            path_or_repo_id = artifact.DEFAULT_REPO_ID
        folder = artifact.resolve_artifact(
            path_or_repo_id,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
            force_download=force_download,
        )
        config = MoGenTSConfig.from_json_dict(
            artifact.read_json(folder / artifact.CONFIG_NAME),
            source=str(folder / artifact.CONFIG_NAME),
        )
        if not load_length_estimator:
            config = config.replace(length=None)
        files = artifact.component_files(config.length is not None)
        needed = [*files.values(), artifact.MEAN_NAME, artifact.STD_NAME]
        artifact.require_artifact_files(folder, needed)
        if verify_checksums:
            artifact.verify_artifact_files(folder, needed)

        clip_path = folder / files["clip"]
        clip_shapes = safetensors_shapes(clip_path)
        text_cfg = TextEncoderConfig.from_state_dict(
            {k: torch.empty(shape, device="meta") for k, (shape, _) in clip_shapes.items()},
            dtype=text_encoder_dtype or config.text_encoder.dtype,
        )
        config = config.replace(text_encoder=text_cfg)

        with torch.device("meta"):
            bundle = cls(config)
        for name, module in bundle.components():
            path = folder / files[name]
            if name == "clip":
                keys = list(select_text_state_dict(dict.fromkeys(clip_shapes)))
                state = load_safetensors(path, keys=keys)
            else:
                state = load_safetensors(path)
            check_state_dict(module, state, source=str(path))
            check_dtypes(state, _stored_dtypes(name, module), source=str(path))
            module.load_state_dict(state, strict=True, assign=True)
        width = config.vq.input_width
        bundle.mean = torch.from_numpy(artifact.load_stat(folder / artifact.MEAN_NAME, width))
        bundle.std = torch.from_numpy(artifact.load_stat(folder / artifact.STD_NAME, width))
        bundle._finish_loading()
        bundle._clip_extra_source = clip_path if len(clip_shapes) > len(keys) else None
        bundle.source = str(path_or_repo_id)
        bundle.revision = revision
        return bundle.to_runtime(device=device, dtype=dtype)

    def _finish_loading(self) -> None:
        """Prepare the text tower's numerics and check nothing is left on the meta device."""
        self.text_encoder.set_numerics(self.config.text_encoder.dtype)
        leftover = [n for n, t in [*self.named_parameters(), *self.named_buffers()] if t.is_meta]
        if leftover:
            raise ArtifactFormatError(f"tensors were not loaded: {leftover[:5]}")
        self.requires_grad_(False)
        self.eval()

    def to_runtime(
        self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None
    ) -> MoGenTSBundle:
        """Move to ``device`` and cast the generation networks to ``dtype`` (once)."""
        if device is not None:
            device = check_runtime_device(device, allow_none=True)
            try:
                self.to(device)
            except (RuntimeError, AssertionError) as err:
                raise InvalidInputError(
                    f"device {device!r} is not available ({err}); use 'cpu' or a visible GPU"
                ) from err
        if dtype is not None:
            target = resolve_dtype(dtype)
            for name, module in self.components():
                if name in _COMPUTE_COMPONENTS:
                    module.to(target)
            emulated = self.device.type == "cpu" and cpu_bf16_instructions() is None
            if target == torch.bfloat16 and emulated:
                logger.warning(CPU_BF16_EMULATED_WARNING)
        return self

    # ------------------------------------------------------------------ saving

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """Component -> the state dict written to its artifact file, in the dtypes the artifact
        format stores (a bundle cast to a compute dtype is saved as float32 again)."""
        out = {}
        for name, module in self.components():
            state = module.state_dict()
            stored = _stored_dtypes(name, module)
            out[name] = {
                key: value if value.dtype in stored[key] else value.float()
                for key, value in state.items()
            }
        return out

    def save_pretrained(self, save_directory: str | os.PathLike[str]) -> Path:
        """Write the artifact into ``save_directory`` (created if needed): safetensors, ``.npy``
        and JSON only, each through a temporary name; ``model_index.json`` (with sha256
        checksums) is written last.

        Returns:
            The folder.

        Raises:
            InvalidInputError: ``save_directory`` is an existing file.
        """
        folder = Path(save_directory)
        if folder.is_file():
            raise InvalidInputError(f"save_directory {folder} is a file; give a folder")
        folder.mkdir(parents=True, exist_ok=True)
        written: list[str] = []
        meta = {"format": "pt", "library": "hftrainer-mogents", "version": __version__}
        for name, state in self.state_dicts().items():
            if name == "clip":
                state = {**self._clip_extra_tensors(), **state}
            file = artifact.COMPONENT_FILES[name]
            save_safetensors(folder / file, state, metadata=meta)
            written.append(file)
        for file, stat in ((artifact.MEAN_NAME, self.mean), (artifact.STD_NAME, self.std)):
            atomic_save_npy(folder / file, stat.detach().cpu().numpy().astype(np.float32))
            written.append(file)
        if self.length_estimator is None:
            stale = folder / artifact.COMPONENT_FILES["length_estimator"]
            stale.unlink(missing_ok=True)
        components = {
            "clip": {
                "name": self.config.clip_version,
                "stored_in_artifact": True,
                "path": artifact.COMPONENT_FILES["clip"],
            }
        }
        atomic_write_json(folder / artifact.CONFIG_NAME, self.config.to_json_dict(components))
        written.append(artifact.CONFIG_NAME)
        index = artifact.build_model_index(
            folder, written, has_length_estimator=self.length_estimator is not None
        )
        atomic_write_json(folder / artifact.INDEX_NAME, index)
        return folder

    def _clip_extra_tensors(self) -> dict[str, torch.Tensor]:
        """The non-text CLIP weights of the artifact this bundle was loaded from (empty when it
        had none or the file is gone)."""
        if self._clip_extra is not None:
            return dict(self._clip_extra)
        source = self._clip_extra_source
        if source is None:
            return {}
        if not source.is_file():
            logger.warning("%s is gone: saving the CLIP text tower only", source)
            return {}
        own = set(self.text_encoder.state_dict())
        keys = [k for k in safetensors_shapes(source) if k not in own]
        return load_safetensors(source, keys=keys)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        revision: str | None = None,
        commit_message: str = "Upload MoGenTS artifact",
        create_pr: bool = False,
        card_fields: dict[str, Any] | None = None,
        extra_files: Sequence[str | os.PathLike[str]] = (),
    ) -> str:
        """Save the artifact with a model card (``README.md`` rendered from
        ``artifacts/model_card_template.md``) and upload it to ``repo_id``.

        ``card_fields`` go to :func:`~hftrainer_mogents.model_card.render_model_card`;
        ``extra_files`` (a fine-tuned artifact's ``finetune.json``) are uploaded beside the
        artifact's own files.

        Returns:
            The URL of the commit.
        """
        from huggingface_hub import HfApi

        from hftrainer_mogents.model_card import render_model_card

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory(prefix="mogents-push-") as tmp:
            folder = self.save_pretrained(tmp)
            for extra in extra_files:
                shutil.copyfile(extra, folder / Path(extra).name)
            (folder / "README.md").write_text(
                render_model_card(self, repo_id=repo_id, **(card_fields or {})), encoding="utf-8"
            )
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                revision=revision,
                commit_message=commit_message,
                create_pr=create_pr,
            )
        return str(getattr(info, "commit_url", info))
