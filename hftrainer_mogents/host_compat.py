"""What the hftrainer host's base classes give their subclasses, provided here without the host.

The host's generic code (its runner, ``tools/infer.py``, ``BasePipeline.from_checkpoint``) drives a
bundle through ``trainable_parameters``, ``state_dict_to_save``, ``load_state_dict_selective``,
``checkpoint_metadata`` and the ``_trainable_modules`` / ``_save_ckpt_modules`` lists, a pipeline
through its calling conventions (``from_pretrained(bundle_cls, path)``, ``from_config``,
``from_checkpoint``), and an evaluator through ``reset`` / ``process`` / ``compute``. These mixins
(``HostBundleMixin``, ``HostPipelineMixin``, ``HostEvaluatorMixin``) implement that contract
(same names, arguments and checkpoint layout) in this package, so our classes behave the same
with and without the host installed and CI tests them without it. Importing the host just to
inherit its classes would cost every process that imports our bundle the host's whole import
(accelerate, diffusers, peft: ~8 s measured), CLI included; see the documentation's "Zoo and host" page.

Checkpoint layout (the host's): ``{"__hftrainer_meta__": {"format_version": 2, "modules": {...}},
<module attribute>: <its state dict>, ..., "__bundle_params__": {<bundle-level tensors>}}``.
"""

from __future__ import annotations

import inspect
import logging
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from hftrainer_mogents.errors import ArtifactFormatError, InvalidInputError

if TYPE_CHECKING:
    from hftrainer_mogents.config import MoGenTSConfig

__all__ = [
    "META_KEY",
    "BUNDLE_PARAMS_KEY",
    "CHECKPOINT_FORMAT_VERSION",
    "HostBundleMixin",
    "HostPipelineMixin",
    "HostEvaluatorMixin",
    "flatten_metrics",
    "load_host_checkpoint",
]

logger = logging.getLogger(__name__)

META_KEY = "__hftrainer_meta__"
BUNDLE_PARAMS_KEY = "__bundle_params__"
CHECKPOINT_FORMAT_VERSION = 2


class HostBundleMixin:
    """The host ``ModelBundle``'s methods for an ``nn.Module`` bundle whose networks are plain
    attributes. Call :meth:`_set_module_roles` at the end of ``__init__``.

    Roles: *trainable* modules give :meth:`trainable_parameters` (those of their parameters that
    require grad); *frozen* ones stay in eval mode under ``train()``; *saved* ones go into
    :meth:`state_dict_to_save`. There are no LoRA modules (every module's format is ``"full"``).
    """

    _trainable_modules: list[str]
    _frozen_modules: list[str]
    _save_ckpt_modules: list[str]
    _lora_modules: list[str]
    _module_checkpoint_formats: dict[str, str]
    _module_build_configs: dict[str, dict[str, Any]]
    _extra_attributes: dict[str, Any]

    def _set_module_roles(
        self, *, trainable: Sequence[str], frozen: Sequence[str], save: Sequence[str]
    ) -> None:
        """Record which attributes are trainable, frozen and saved (the host runner reads the
        lists directly)."""
        # object.__setattr__: plain lists, not registered as anything by nn.Module
        object.__setattr__(self, "_trainable_modules", list(trainable))
        object.__setattr__(self, "_frozen_modules", list(frozen))
        object.__setattr__(self, "_save_ckpt_modules", list(save))
        object.__setattr__(self, "_lora_modules", [])
        object.__setattr__(
            self, "_module_checkpoint_formats", dict.fromkeys([*trainable, *frozen], "full")
        )
        object.__setattr__(self, "_module_build_configs", {})
        object.__setattr__(self, "_extra_attributes", {})

    # ------------------------------------------------------------------ metadata

    def get_module_checkpoint_format(self, name: str) -> str:
        """``"full"`` (this bundle has no LoRA modules)."""
        return self._module_checkpoint_formats.get(name, "full")

    def is_lora_module(self, name: str) -> bool:
        """Whether ``name`` carries LoRA adapters (never, here)."""
        return name in self._lora_modules

    def get_module_build_cfg(self, name: str) -> dict[str, Any]:
        """The config a module was built from through the host's ``HF_MODELS`` (none here)."""
        return dict(self._module_build_configs.get(name, {}))

    def get_module_pretrained_path(self, name: str) -> str | None:
        """Where a module's ``from_pretrained`` weights came from (none per module here)."""
        return (
            self.get_module_build_cfg(name)
            .get("from_pretrained", {})
            .get("pretrained_model_name_or_path")
        )

    def checkpoint_metadata(self) -> dict[str, Any]:
        """``{"format_version": 2, "modules": {name: {checkpoint_format, is_lora, trainable}}}``
        for every saved module."""
        return {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "modules": {
                name: {
                    "checkpoint_format": self.get_module_checkpoint_format(name),
                    "is_lora": self.is_lora_module(name),
                    "trainable": name in self._trainable_modules,
                }
                for name in self._save_ckpt_modules
            },
        }

    # ------------------------------------------------------------------ parameters

    def _module(self, name: str) -> nn.Module | None:
        module = getattr(self, name, None)
        return module if isinstance(module, nn.Module) else None

    def trainable_named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of the trainable modules' parameters that require grad, then
        of the bundle's own parameters that do."""
        for mod_name in self._trainable_modules:
            module = self._module(mod_name)
            if module is None:
                continue
            for name, param in module.named_parameters():
                if param.requires_grad:
                    yield f"{mod_name}.{name}", param
        for name, param in self.named_parameters(recurse=False):  # type: ignore[attr-defined]
            if param.requires_grad:
                yield name, param

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the host's optimizer trains (see :meth:`trainable_named_parameters`)."""
        return [param for _, param in self.trainable_named_parameters()]

    def get_module_parameters(self, *names: str) -> list[nn.Parameter]:
        """The parameters that require grad of the named modules (per-optimizer groups).

        Raises:
            InvalidInputError: a name is not a module of this bundle.
        """
        params: list[nn.Parameter] = []
        for name in names:
            module = self._module(name)
            if module is None:
                known = [*self._trainable_modules, *self._frozen_modules]
                raise InvalidInputError(f"{name!r} is not a module of this bundle; known: {known}")
            params.extend(p for p in module.parameters() if p.requires_grad)
        return params

    def merge_lora_weights(self, module_names: Iterable[str] | None = None) -> None:
        """Nothing to merge: this bundle has no LoRA modules.

        Raises:
            InvalidInputError: a named module does not exist.
        """
        for name in module_names or ():
            if self._module(name) is None:
                raise InvalidInputError(f"{name!r} is not a module of this bundle")

    def train(self, mode: bool = True) -> Any:
        """``nn.Module.train``, keeping the frozen modules in eval mode."""
        super().train(mode)  # type: ignore[misc]
        if mode:
            for name in self._frozen_modules:
                module = self._module(name)
                if module is not None:
                    module.eval()
        return self

    # ------------------------------------------------------------------ checkpoints

    def state_dict_to_save(self) -> dict[str, Any]:
        """The host's checkpoint: metadata, each saved module's state dict (wrappers such as
        DDP unwrapped) and the bundle's own parameters and buffers (e.g. ``mean``/``std``)."""
        out: dict[str, Any] = {}
        meta = self.checkpoint_metadata()
        if meta["modules"]:
            out[META_KEY] = meta
        for name in self._save_ckpt_modules:
            module = self._module(name)
            if module is None:
                continue
            while isinstance(getattr(module, "module", None), nn.Module):
                module = module.module
            out[name] = module.state_dict()
        own = {n: p.detach().clone() for n, p in self.named_parameters(recurse=False)}  # type: ignore[attr-defined]
        own.update({n: b.detach().clone() for n, b in self.named_buffers(recurse=False)})  # type: ignore[attr-defined]
        if own:
            out[BUNDLE_PARAMS_KEY] = own
        return out

    def load_state_dict_selective(
        self,
        state_dict: Mapping[str, Any],
        strict: bool = False,
        exclude_bundle_keys: Iterable[str] | None = None,
    ) -> None:
        """Load the modules present in ``state_dict`` and leave the others as they are.

        Accepts the host's nested checkpoint (:meth:`state_dict_to_save`) or a flat one
        (``"<module>.<key>"``, e.g. ``bundle.state_dict()`` or a flattened safetensors file).
        ``state_dict`` is not modified.

        Args:
            state_dict: the checkpoint.
            strict: raise on missing, unexpected or mis-shaped keys instead of warning (and
                skipping mis-shaped tensors).
            exclude_bundle_keys: bundle-level tensors to keep as they are (the seed configs keep
                ``["mean", "std"]`` from the artifact).

        Raises:
            InvalidInputError: the checkpoint holds LoRA adapters (this bundle has none).
            ArtifactFormatError: ``strict`` and a key is missing, unexpected or mis-shaped.
        """
        if not state_dict:
            return
        state = dict(state_dict)
        meta = state.pop(META_KEY, None)
        formats = (meta or {}).get("modules", {}) if isinstance(meta, Mapping) else {}
        lora = sorted(n for n, m in formats.items() if (m or {}).get("checkpoint_format") == "lora")
        if lora:
            raise InvalidInputError(
                f"the checkpoint holds LoRA adapters for {lora}; this bundle has no LoRA modules: "
                "merge the adapters before saving (bundle.merge_lora_weights()) or load it into "
                "the bundle that trained them"
            )
        own: dict[str, Any] = dict(state.pop(BUNDLE_PARAMS_KEY, None) or {})
        nested: dict[str, dict[str, Any]] = {}
        for key, value in state.items():
            if isinstance(value, Mapping):
                nested.setdefault(key, {}).update(value)
                continue
            head, _, rest = key.partition(".")
            if head == BUNDLE_PARAMS_KEY and rest:
                own[rest] = value
            elif rest and self._module(head) is not None:
                nested.setdefault(head, {})[rest] = value
            else:  # a flat key without a module: a bundle-level tensor (mean, std, ...)
                own[key] = value
        excluded = set(exclude_bundle_keys or ())
        self._load_bundle_tensors(
            {k: v for k, v in own.items() if k not in excluded}, strict=strict
        )
        for name, module_state in nested.items():
            module = self._module(name)
            if module is None:
                self._mismatch(f"checkpoint module {name!r} is not a module of this bundle", strict)
                continue
            self._load_module(name, module, module_state, strict=strict)

    def _load_bundle_tensors(self, tensors: Mapping[str, Any], *, strict: bool) -> None:
        targets = {
            **dict(self.named_parameters(recurse=False)),  # type: ignore[attr-defined]
            **dict(self.named_buffers(recurse=False)),  # type: ignore[attr-defined]
        }
        for name, value in tensors.items():
            target = targets.get(name)
            if target is None:
                self._mismatch(f"checkpoint tensor {name!r} is not a tensor of this bundle", strict)
            elif tuple(target.shape) != tuple(value.shape):
                self._mismatch(
                    f"bundle tensor {name!r}: checkpoint {tuple(value.shape)}, bundle "
                    f"{tuple(target.shape)}; skipped",
                    strict,
                )
            else:
                with torch.no_grad():
                    target.copy_(value)

    def _load_module(
        self, name: str, module: nn.Module, state: Mapping[str, Any], *, strict: bool
    ) -> None:
        # checkpoints of a DDP-wrapped module prefix every key with "module."
        if state and all(k.startswith("module.") for k in state):
            state = {k[len("module.") :]: v for k, v in state.items()}
        own = module.state_dict()
        fitting = {}
        for key, value in state.items():
            if key in own and tuple(own[key].shape) != tuple(value.shape):
                self._mismatch(
                    f"{name}.{key}: checkpoint {tuple(value.shape)}, module "
                    f"{tuple(own[key].shape)}; skipped",
                    strict,
                )
            else:
                fitting[key] = value
        missing = sorted(set(own) - set(fitting))
        unexpected = sorted(set(fitting) - set(own))
        if strict and (missing or unexpected):
            raise ArtifactFormatError(
                f"checkpoint of module {name!r}: missing {missing[:5]}, unexpected "
                f"{unexpected[:5]}; load with strict=False to keep the module's own values"
            )
        if missing:
            logger.warning(
                "module %r: %d keys not in the checkpoint kept (%s...)",
                name,
                len(missing),
                missing[:5],
            )
        if unexpected:
            logger.warning(
                "module %r: %d unexpected checkpoint keys ignored (%s...)",
                name,
                len(unexpected),
                unexpected[:5],
            )
        module.load_state_dict(fitting, strict=False)

    @staticmethod
    def _mismatch(message: str, strict: bool) -> None:
        if strict:
            raise ArtifactFormatError(message + " (strict=True)")
        logger.warning("%s", message)


_Pipeline = TypeVar("_Pipeline", bound="HostPipelineMixin")


class HostPipelineMixin:
    """The host ``BasePipeline``'s class-method conventions, for a pipeline built as
    ``cls(bundle, **kwargs)`` whose default bundle class is ``BUNDLE_CLS``:
    ``from_pretrained(bundle_cls, path, bundle_kwargs=...)`` (through
    :meth:`_host_from_pretrained`), ``from_config(bundle_cls, bundle_cfg, **kwargs)`` and
    ``from_checkpoint(bundle_cls, bundle_cfg, ckpt_path, ...)``. The host's registry builds the
    pipeline as ``PIPELINES.build({"type": ..., "bundle": bundle})``, i.e. ``cls(bundle)``.
    """

    # the bundle class of our one-argument from_pretrained and of a host call that gives none
    BUNDLE_CLS: type

    @classmethod
    def _host_from_pretrained(
        cls: type[_Pipeline],
        path_or_repo_id: Any,
        pretrained_model_name_or_path: Any,
        bundle_cls: type | None,
        options: Mapping[str, Any],
        bundle_kwargs: Mapping[str, Any] | None,
        **pipeline_kwargs: Any,
    ) -> _Pipeline | None:
        """The host's ``from_pretrained(bundle_cls, path, bundle_kwargs=None, ...)`` when the
        arguments take its form (a bundle class first, or ``bundle_cls=``): the bundle is
        ``bundle_cls.from_pretrained(path, **given, **bundle_kwargs)``, where ``given`` are the
        ``options`` (bundle options of the pipeline's ``from_pretrained``) that the caller set
        away from their defaults; ``pipeline_kwargs`` go to the pipeline. Returns None for our
        form (one artifact), once its arguments are checked.

        Raises:
            InvalidInputError: an option given both in ``options`` and in ``bundle_kwargs``
                (either form), the bundle class given twice, no artifact after the bundle class,
                or a second positional argument without a bundle class first.
        """
        # the defaults are read from from_pretrained's own signature and compared by identity:
        # a value that is not the default object was given by the caller
        defaults = inspect.signature(cls.from_pretrained).parameters  # type: ignore[attr-defined]
        given = {k: v for k, v in options.items() if v is not defaults[k].default}
        clash = sorted(set(given) & set(bundle_kwargs or {}))
        if clash:
            raise InvalidInputError(
                f"{clash} given both as arguments and in bundle_kwargs; give each once"
            )
        if bundle_cls is not None:  # the host's convention, by keyword
            if isinstance(path_or_repo_id, type):
                raise InvalidInputError("the bundle class is given twice; give it once")
            if pretrained_model_name_or_path is None:
                pretrained_model_name_or_path = path_or_repo_id
            path_or_repo_id = bundle_cls
        if isinstance(path_or_repo_id, type):  # the host's convention
            if pretrained_model_name_or_path is None:
                raise InvalidInputError(
                    f"from_pretrained({path_or_repo_id.__name__}, path): the artifact path is "
                    "missing after the bundle class"
                )
            bundle = path_or_repo_id.from_pretrained(
                pretrained_model_name_or_path, **given, **dict(bundle_kwargs or {})
            )
            bundle.eval()
            return cls(bundle, **pipeline_kwargs)
        if pretrained_model_name_or_path is not None:
            raise InvalidInputError(
                "a second positional argument is the artifact only when the first is a bundle "
                f"class (the host's form); got {path_or_repo_id!r} and "
                f"{pretrained_model_name_or_path!r}: pass one artifact"
            )
        return None

    @classmethod
    def from_config(
        cls: type[_Pipeline],
        bundle_cls: type | MoGenTSConfig | Mapping[str, Any] | None = None,
        bundle_cfg: MoGenTSConfig | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> _Pipeline:
        """A pipeline around ``bundle_cls.from_config(bundle_cfg)`` (untrained networks): the
        host's ``from_config(bundle_cls, bundle_cfg, **kwargs)``; ``bundle_cls`` defaults to
        :attr:`BUNDLE_CLS`, and a config alone may come first. ``kwargs`` go to the pipeline."""
        if not isinstance(bundle_cls, type) and bundle_cls is not None:
            if bundle_cfg is not None:
                raise InvalidInputError(
                    f"from_config(bundle_cls, bundle_cfg): {bundle_cls!r} is not a bundle class"
                )
            bundle_cls, bundle_cfg = None, bundle_cls
        bundle = (bundle_cls or cls.BUNDLE_CLS).from_config(bundle_cfg)
        bundle.eval()
        return cls(bundle, **kwargs)

    @classmethod
    def from_checkpoint(
        cls: type[_Pipeline],
        bundle_cls: type | None,
        bundle_cfg: MoGenTSConfig | Mapping[str, Any] | None,
        ckpt_path: str | os.PathLike[str],
        *,
        exclude_bundle_keys: Sequence[str] | None = None,
        strict: bool = False,
        **kwargs: Any,
    ) -> _Pipeline:
        """The host's convention: ``bundle_cls.from_config(bundle_cfg)``, then the host checkpoint
        at ``ckpt_path`` (a ``model.pt`` / ``.safetensors`` file or the host's checkpoint folder)
        through ``load_state_dict_selective``. ``kwargs`` go to the pipeline.

        Raises:
            ArtifactNotFoundError: no checkpoint at ``ckpt_path``.
        """
        bundle = (bundle_cls or cls.BUNDLE_CLS).from_config(bundle_cfg)
        state = load_host_checkpoint(ckpt_path)
        options: dict[str, Any] = {"strict": strict} if strict else {}
        if exclude_bundle_keys is not None:
            options["exclude_bundle_keys"] = list(exclude_bundle_keys)
        bundle.load_state_dict_selective(state, **options)
        bundle.eval()
        return cls(bundle, **kwargs)


def load_host_checkpoint(path: Any) -> dict[str, Any]:
    """Read a host checkpoint: a ``.safetensors`` file, a ``torch.save`` file, or a folder
    holding ``model.pt``, ``model.safetensors`` or ``pytorch_model.bin`` (the host's order).
    Pickled files are read with ``weights_only=True`` (tensors and plain containers only).

    Raises:
        ArtifactNotFoundError: no checkpoint there.
    """
    from pathlib import Path

    from hftrainer_mogents.errors import ArtifactNotFoundError
    from hftrainer_mogents.utils.io import load_safetensors

    path = Path(path)
    if path.is_dir():
        found = [path / n for n in ("model.pt", "model.safetensors", "pytorch_model.bin")]
        found = [p for p in found if p.is_file()]
        if not found:
            raise ArtifactNotFoundError(
                f"{path} holds no model.pt, model.safetensors or pytorch_model.bin; "
                "give the checkpoint file or the host's checkpoint folder"
            )
        path = found[0]
    if not path.is_file():
        raise ArtifactNotFoundError(f"checkpoint {path} not found")
    if path.suffix == ".safetensors":
        return dict(load_safetensors(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def flatten_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """A protocol report -> the flat ``{name: float}`` the host runner logs.

    Numbers keep their key; ``{"mean": m, <stat>: s, ...}`` gives ``key`` = m and
    ``key_<stat>`` = s; a list of numbers (top-1/2/3 R-precision) gives ``key_top1`` ...
    Text, ``None`` and nested blocks without a ``mean`` (``config``, ``repeats``) are left out.
    """
    flat: dict[str, float] = {}

    def put(name: str, value: Any) -> None:
        if _number(value):
            flat[name] = float(value)
        elif isinstance(value, (list, tuple)) and value and all(_number(v) for v in value):
            for i, v in enumerate(value, start=1):
                flat[f"{name}_top{i}"] = float(v)

    for key, value in report.items():
        if isinstance(value, Mapping):
            if "mean" not in value:
                continue
            put(key, value["mean"])
            for stat, stat_value in value.items():
                if stat != "mean":
                    put(f"{key}_{stat}", stat_value)
        else:
            put(key, value)
    return flat


class HostEvaluatorMixin:
    """The host ``BaseEvaluator``'s loop: :meth:`reset` at the start of validation,
    :meth:`process` per (gathered) batch, ``compute()`` at the end.

    A batch output is a mapping with ``"keys"`` (the test-split keys of the generated motions)
    and ``"motions"`` (one ``(T, D)`` array or tensor per key, physical units, or a padded
    ``(B, T, D)`` array/tensor with ``"lengths"``); other entries are kept for ``compute()``.
    """

    _results: list[Mapping[str, Any]]
    # the full protocol report of the last ``compute()``
    last_report: dict[str, Any] | None = None

    def reset(self) -> None:
        """Forget the gathered outputs."""
        self._results = []

    def process(self, output: Mapping[str, Any]) -> None:
        """Gather one batch output (checked now, so a bad batch is named where it happens).

        Raises:
            InvalidInputError: not a mapping, no ``keys``/``motions``, or different counts.
        """
        if not isinstance(output, Mapping):
            raise InvalidInputError(
                f"process() takes the val_step output dict, got {type(output).__name__}"
            )
        missing = [k for k in ("keys", "motions") if k not in output]
        if missing:
            raise InvalidInputError(
                f"the batch output lacks {missing}; give 'keys' (test-split keys) and "
                "'motions' (generated motions in physical units), got keys "
                f"{sorted(map(str, output))}"
            )
        keys = list(output["keys"])
        motions = _split_motions(output["motions"], output.get("lengths"))
        if len(keys) != len(motions):
            raise InvalidInputError(
                f"the batch output has {len(keys)} keys and {len(motions)} motions; give one "
                "motion per key"
            )
        if not hasattr(self, "_results"):
            self.reset()
        self._results.append({**output, "keys": keys, "motions": motions})

    def compute_from_outputs(self, outputs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
        """:meth:`reset`, :meth:`process` each output, then ``compute()``."""
        self.reset()
        for output in outputs:
            self.process(output)
        return self.compute()  # type: ignore[attr-defined]

    def _gathered(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(motion by key, {extra entry: value by key})`` of everything processed.

        Raises:
            InvalidInputError: nothing was processed, or a key came twice.
        """
        results = getattr(self, "_results", [])
        if not results:
            raise InvalidInputError(
                "compute() has nothing to score: process() received no batch output since reset()"
            )
        motions: dict[str, Any] = {}
        extras: dict[str, dict[str, Any]] = {}
        for output in results:
            for i, key in enumerate(output["keys"]):
                key = str(key)
                if key in motions:
                    raise InvalidInputError(
                        f"key {key!r} was processed twice; each test item is scored once "
                        "(reset() between validation rounds)"
                    )
                motions[key] = output["motions"][i]
                for name, values in output.items():
                    if name in ("keys", "motions", "lengths"):
                        continue
                    per_key = isinstance(values, Sequence) and not isinstance(values, str)
                    if per_key and len(values) == len(output["keys"]):
                        extras.setdefault(name, {})[key] = values[i]
        return motions, extras


def _to_numpy(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _split_motions(motions: Any, lengths: Any) -> list[Any]:
    """One float32 ``(T_i, D)`` array per sample from a list or a padded ``(B, T, D)`` batch."""
    if isinstance(motions, (list, tuple)):
        items = [_to_numpy(m) for m in motions]
    else:
        batch = _to_numpy(motions)
        if batch.ndim != 3:
            raise InvalidInputError(
                f"'motions' must be a list of (T, D) motions or a (B, T, D) batch, got shape "
                f"{tuple(batch.shape)}"
            )
        items = list(batch)
    if lengths is not None:
        lengths = [int(n) for n in (_to_numpy(lengths).reshape(-1))]
        if len(lengths) != len(items):
            raise InvalidInputError(
                f"{len(lengths)} lengths for {len(items)} motions; give one length per motion"
            )
        items = [m[:n] for m, n in zip(items, lengths)]
    for i, m in enumerate(items):
        if m.ndim != 2:
            raise InvalidInputError(f"motion {i} has shape {tuple(m.shape)}, expected (T, D)")
    return items
