"""The bundle as the host builds it for training: an artifact's weights, a stage preset, and the
host's per-module ``trainable`` / ``save_ckpt`` dicts.

The host's runner builds a bundle as ``MODEL_BUNDLES.build(cfg)``, i.e. ``cls(**cfg)``; the
inference bundle's constructor only builds untrained networks (no file access), so training
configs name this subclass instead::

    model = dict(
        type="MoGenTSTrainingBundle",
        pretrained="path/or/hub-id",           # the artifact fine-tuning starts from
        stage="mask",                          # trains both mask transformers, freezes the rest
        text_encoder=dict(trainable=False, save_ckpt=False),  # optional per-module overrides
    )

Module names are the bundle's attributes (``vq_model``, ``mask_transformer_aux``,
``mask_transformer_ts``, ``res_transformer_aux``, ``res_transformer_ts``, ``length_estimator``,
``text_encoder``). As in the host, ``save_ckpt`` defaults to True here (unlike the host's default
of ``trainable``), so a host checkpoint restores the whole bundle; set it False to keep a frozen
network out of the checkpoints (export then takes it from the base artifact).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from hftrainer_mogents.bundle import COMPONENT_ATTRIBUTES, MoGenTSBundle
from hftrainer_mogents.config import MoGenTSConfig
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.stages import apply_stage, stage_preset

__all__ = ["MoGenTSTrainingBundle", "MODULE_KEYS"]

# the per-module keys the host's bundles read (the others, such as ``type``/``from_pretrained``,
# describe how the host builds a module, which the artifact decides here)
MODULE_KEYS = ("trainable", "save_ckpt")


class MoGenTSTrainingBundle(MoGenTSBundle):
    """A :class:`~hftrainer_mogents.bundle.MoGenTSBundle` loaded from an artifact with training
    roles (see the module docstring).

    Args:
        config: a config for untrained networks (ignored when ``pretrained`` is given; it is
            what :meth:`from_pretrained` passes).
        pretrained: artifact folder or hub repo id to load the weights from.
        stage: ``vq``, ``mask``, ``res`` or ``length``: the stage preset
            (:func:`~hftrainer_mogents.training.stages.apply_stage`); None keeps the bundle's
            default roles.
        verify_checksums: check the artifact's files against its recorded sha256.
        **modules: ``<module attribute>=dict(trainable=bool, save_ckpt=bool)`` overrides.

    Attributes:
        stage: the stage, or None.
        pretrained: where the weights came from, or None.

    Raises:
        InvalidInputError: an unknown stage, module name or module key.
    """

    def __init__(
        self,
        config: MoGenTSConfig | Mapping[str, Any] | None = None,
        *,
        pretrained: str | os.PathLike[str] | None = None,
        stage: str | None = None,
        verify_checksums: bool = True,
        **modules: Mapping[str, Any],
    ) -> None:
        _check_modules(modules)
        if stage is not None:
            stage_preset(stage)  # an unknown stage is named before anything is read
        if pretrained is None:
            super().__init__(config)
        else:
            source = MoGenTSBundle.from_pretrained(
                pretrained, device="cpu", verify_checksums=verify_checksums
            )
            # the networks come from the loaded bundle: built on meta here, then replaced
            with torch.device("meta"):
                super().__init__(source.config)
            for attr in COMPONENT_ATTRIBUTES.values():
                setattr(self, attr, getattr(source, attr))
            self.mean = source.mean
            self.std = source.std
            self._clip_extra_source = source._clip_extra_source
            self._clip_extra = source._clip_extra
            self.source = source.source
            self.revision = source.revision
        self.stage = stage
        self.pretrained = None if pretrained is None else str(pretrained)
        if stage is not None or modules:
            self.set_roles(stage, modules)

    def set_roles(self, stage: str | None, modules: Mapping[str, Mapping[str, Any]]) -> None:
        """Apply ``stage``'s preset, then the per-module overrides; trainable modules require
        grad, the others do not (and stay in eval mode under ``train()``).

        Raises:
            InvalidInputError: an unknown stage, module or key, or a module the artifact lacks.
        """
        _check_modules(modules)
        if stage is not None:
            apply_stage(self, stage)
        present = [a for a in COMPONENT_ATTRIBUTES.values() if getattr(self, a) is not None]
        absent = sorted(set(modules) - set(present))
        if absent:
            raise InvalidInputError(
                f"per-module settings for {absent}, which this artifact does not have"
            )
        trainable = [n for n in present if n in self._trainable_modules]
        saved = [n for n in present if n in self._save_ckpt_modules]
        for name, settings in modules.items():
            if "trainable" in settings:
                wanted = bool(settings["trainable"])
                trainable = [n for n in trainable if n != name] + ([name] if wanted else [])
            if "save_ckpt" in settings:
                wanted = bool(settings["save_ckpt"])
                saved = [n for n in saved if n != name] + ([name] if wanted else [])
        trainable = [n for n in present if n in trainable]
        for name in present:
            getattr(self, name).requires_grad_(name in trainable)
        self._set_module_roles(
            trainable=trainable,
            frozen=[n for n in present if n not in trainable],
            save=[n for n in present if n in saved],
        )


def _check_modules(modules: Mapping[str, Any]) -> None:
    known = list(COMPONENT_ATTRIBUTES.values())
    for name, settings in modules.items():
        if name not in known:
            raise InvalidInputError(
                f"unknown bundle argument or module {name!r}; modules are {', '.join(known)}"
            )
        if not isinstance(settings, Mapping):
            raise InvalidInputError(
                f"{name} must be a dict such as dict(trainable=False, save_ckpt=True), got "
                f"{type(settings).__name__}"
            )
        extra = sorted(set(settings) - set(MODULE_KEYS))
        if extra:
            raise InvalidInputError(
                f"{name}: unknown keys {extra}; a module takes {', '.join(MODULE_KEYS)} (the "
                "artifact decides its architecture and weights)"
            )
