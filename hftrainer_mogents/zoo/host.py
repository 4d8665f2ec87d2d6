"""The real ``hftrainer`` host's registries, and registering spec-named classes into them.

The host keeps mmengine ``Registry`` objects (``MODEL_BUNDLES``, ``PIPELINES``, ``EVALUATORS``)
in ``hftrainer.registry``; :func:`host_registries` finds them when the host is installed.
:func:`register_specs` is the generic helper a plugin calls from its ``hftrainer_register`` hook.
Registration is idempotent: a class already registered under its name is left alone, and a
*different* class holding the name (for example the host's own ``MoGenTSBundle``) is kept, with a
warning, unless ``force=True``.

A class registered into ``PIPELINES`` or ``EVALUATORS`` that has the host base class's abstract
method (``__call__``, ``compute``) is also registered as a virtual subclass of the host's
``BasePipeline`` / ``BaseEvaluator`` (both are ABCs), so ``isinstance`` checks against them hold
without our classes importing the host.

This module knows nothing of plugins (it imports only the specs and the errors); walking the
installed plugins and calling their hooks is the loader's job
(:func:`hftrainer_mogents.zoo.loader.register`).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from hftrainer_mogents.errors import HostNotInstalledError, PluginError
from hftrainer_mogents.zoo.specs import EvaluatorSpec, ModelSpec, resolve

__all__ = [
    "REGISTRY_NAMES",
    "TRAINING_REGISTRY_NAMES",
    "HOST_BASES",
    "host_installed",
    "host_running",
    "host_version",
    "host_registries",
    "register_specs",
]

logger = logging.getLogger(__name__)

HOST_PACKAGE = "hftrainer"
REGISTRY_MODULE = "hftrainer.registry"
REGISTRY_NAMES = ("MODEL_BUNDLES", "PIPELINES", "EVALUATORS")
# a host that can train also has these; training classes are registered only where all exist
TRAINING_REGISTRY_NAMES = ("TRAINERS", "DATASETS", "HOOKS")
# registry -> (module, ABC of the host, the abstract method a class must have to be adopted)
HOST_BASES: dict[str, tuple[str, str, str]] = {
    "PIPELINES": ("hftrainer.pipelines.base_pipeline", "BasePipeline", "__call__"),
    "EVALUATORS": ("hftrainer.evaluation.base_evaluator", "BaseEvaluator", "compute"),
    "TRAINERS": ("hftrainer.trainers.base_trainer", "BaseTrainer", "train_step"),
}


def host_installed() -> bool:
    """Whether ``import hftrainer`` can work (checked without importing it)."""
    return importlib.util.find_spec(HOST_PACKAGE) is not None


def host_running() -> bool:
    """Whether the host's registries exist in this process already (``hftrainer.registry`` was
    imported): registering then costs no import of the host."""
    return sys.modules.get(REGISTRY_MODULE) is not None


def host_version() -> str | None:
    """The installed host's distribution version, or ``None``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(HOST_PACKAGE)
    except PackageNotFoundError:
        return None


def host_registries() -> dict[str, Any]:
    """The host's registries by name (``TRAINERS``, ``DATASETS`` and ``HOOKS`` too where it has
    them).

    Raises:
        HostNotInstalledError: ``hftrainer`` (or its ``registry`` module) is not importable.
    """
    try:
        module = importlib.import_module(REGISTRY_MODULE)
    except ImportError as err:
        raise HostNotInstalledError(
            f"the hftrainer host is not installed ({err}); install it to use its registries, "
            "or use hftrainer_mogents.load(...) which works without it"
        ) from err
    missing = [name for name in REGISTRY_NAMES if not hasattr(module, name)]
    if missing:
        raise HostNotInstalledError(
            f"{REGISTRY_MODULE} has no {', '.join(missing)}; this hftrainer version is too old"
        )
    names = [*REGISTRY_NAMES, *(n for n in TRAINING_REGISTRY_NAMES if hasattr(module, n))]
    return {name: getattr(module, name) for name in names}


def _registered(registry: Any, name: str) -> Any:
    module_dict = getattr(registry, "module_dict", None)
    if isinstance(module_dict, Mapping):
        return module_dict.get(name)
    return registry.get(name)


def _adopt_host_base(registry_name: str, cls: Any) -> None:
    """Register ``cls`` as a virtual subclass of the host's ABC for ``registry_name``, when the
    host is loaded and ``cls`` has the ABC's abstract method."""
    if registry_name not in HOST_BASES or sys.modules.get(HOST_PACKAGE) is None:
        return
    module_name, base_name, method = HOST_BASES[registry_name]
    try:
        base = getattr(importlib.import_module(module_name), base_name)
    except (ImportError, AttributeError):  # an older or stand-in host without that base
        return
    fits = isinstance(cls, type) and callable(getattr(cls, method, None))
    if fits and hasattr(base, "register") and not issubclass(cls, base):
        base.register(cls)


def _register_one(registry: Any, registry_name: str, cls: Any, force: bool) -> bool:
    name = cls.__name__
    current = _registered(registry, name)
    if current is cls:
        _adopt_host_base(registry_name, cls)
        return False
    if current is not None and not force:
        logger.warning(
            "%s already holds %r from %s; keeping it (pass force=True to replace it with %s.%s)",
            registry_name,
            name,
            getattr(current, "__module__", "?"),
            cls.__module__,
            cls.__qualname__,
        )
        return False
    registry.register_module(name=name, module=cls, force=force)
    _adopt_host_base(registry_name, cls)
    return True


def register_specs(
    registries: Mapping[str, Any],
    *,
    models: Iterable[ModelSpec] = (),
    evaluators: Iterable[EvaluatorSpec] = (),
    training: Iterable[tuple[str, str]] = (),
    plugin: str | None = None,
    force: bool = False,
) -> list[str]:
    """Register the classes named by ``models`` (bundle -> MODEL_BUNDLES, pipeline -> PIPELINES)
    and ``evaluators`` (-> EVALUATORS) into ``registries``; ``training`` pairs
    ``(registry name, import string)`` (trainers, datasets, hooks, a training bundle) are
    registered only when ``registries`` has ``TRAINERS``, ``DATASETS`` and ``HOOKS`` (a host that
    can train).

    Returns:
        ``"REGISTRY:ClassName"`` for each class newly registered (empty on a repeated call).

    Raises:
        PluginError: a needed registry is missing, or an import string does not resolve.
    """
    todo: list[tuple[str, str]] = []
    for spec in models:
        if spec.bundle:
            todo.append(("MODEL_BUNDLES", spec.bundle))
        if spec.pipeline:
            todo.append(("PIPELINES", spec.pipeline))
    todo.extend(("EVALUATORS", spec.cls) for spec in evaluators)
    if all(name in registries for name in TRAINING_REGISTRY_NAMES):
        todo.extend(training)

    done = []
    for registry_name, import_string in todo:
        registry = registries.get(registry_name)
        if registry is None:
            raise PluginError(
                f"plugin {plugin!r} needs the host registry {registry_name!r}; "
                f"got only {sorted(registries)}"
            )
        cls = resolve(import_string)
        if _register_one(registry, registry_name, cls, force):
            done.append(f"{registry_name}:{cls.__name__}")
    return done
