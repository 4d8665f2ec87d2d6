"""Generic model resolution through the ``hftrainer.plugins`` entry points, and registration of
every installed plugin into the host.

Nothing here is MoGenTS-specific: any installed plugin in the group is discovered, and the host
can adopt this module unchanged.

Registration into the host: the host calls :func:`load_plugins` once; and whenever a user reaches
the zoo through this module (``list_*``, ``get_model_spec``, ``load``, importing
``hftrainer_mogents.zoo``) while the host is running (its registry module imported), every
installed plugin is registered without a call (:func:`register_with_running_host`). Nothing
imports the host for that: without a running host those calls stay as light as before.
"""

from __future__ import annotations

import importlib
import logging
import threading
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

import pluggy

from hftrainer_mogents.errors import DuplicateModelError, PluginError, UnknownModelError
from hftrainer_mogents.zoo import hookspecs, host
from hftrainer_mogents.zoo.specs import (
    BenchmarkSpec,
    ConverterSpec,
    EvaluatorSpec,
    ModelSpec,
    resolve,
)

__all__ = [
    "get_plugin_manager",
    "list_models",
    "list_evaluators",
    "list_converters",
    "list_benchmarks",
    "get_model_spec",
    "load",
    "plugin_info",
    "load_plugins",
    "register",
    "register_with_running_host",
]

logger = logging.getLogger(__name__)

# This package's own plugin, registered by name as llm registers its default_plugins: the
# manifest imports the library, and nothing in the library imports the manifest.
OWN_PLUGIN = "hftrainer_mogents.zoo.plugin"

_pm: pluggy.PluginManager | None = None
_lock = threading.Lock()
# the host registries (by identity) every installed plugin was registered into automatically
_auto_registered: set[tuple[int, ...]] = set()
_auto_lock = threading.RLock()

SpecT = TypeVar("SpecT", ModelSpec, EvaluatorSpec, ConverterSpec, BenchmarkSpec)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every installed plugin loaded once.

    Entry points of the ``hftrainer.plugins`` group are loaded first; this package's own plugin
    module is registered afterwards if no entry point brought it (a development checkout that is
    not installed still works).
    """
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            pm.add_hookspecs(hookspecs)
            pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
            own_plugin = importlib.import_module(OWN_PLUGIN)
            if not pm.is_registered(own_plugin):
                name = own_plugin.PLUGIN_NAME
                pm.register(own_plugin, name=name if pm.get_plugin(name) is None else None)
            pm.check_pending()
            _pm = pm
        return _pm


def _call_describing_hook(
    hook_name: str, expected: type[SpecT], pm: pluggy.PluginManager
) -> list[SpecT]:
    """Call one describing hook on every plugin and tag each spec with its plugin's name (and
    register the installed plugins into a running host, once)."""
    register_with_running_host()
    specs: list[SpecT] = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        result = impl.function()
        if result is None:
            continue
        for spec in result:
            if not isinstance(spec, expected):
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: {hook_name}() returned {type(spec).__name__}, "
                    f"expected {expected.__name__}"
                )
            specs.append(replace(spec, plugin=impl.plugin_name))
    return specs


def _by_name(specs: list[SpecT]) -> dict[str, list[SpecT]]:
    grouped: dict[str, list[SpecT]] = {}
    for spec in specs:
        grouped.setdefault(spec.name, []).append(spec)
    return grouped


def _unique(grouped: dict[str, list[SpecT]], kind: str) -> dict[str, SpecT]:
    clashes = {name: specs for name, specs in grouped.items() if len(specs) > 1}
    if clashes:
        lines = [
            f"{kind} {name!r} is provided by plugins " + ", ".join(repr(s.plugin) for s in specs)
            for name, specs in sorted(clashes.items())
        ]
        raise DuplicateModelError(
            "; ".join(lines)
            + ". Uninstall one of them, or pass plugin=<name> to choose (e.g. load(name, plugin=...))."
        )
    return {name: specs[0] for name, specs in grouped.items()}


def list_models(*, pm: pluggy.PluginManager | None = None) -> list[ModelSpec]:
    """Every model of every installed plugin, sorted by name.

    Raises:
        DuplicateModelError: two plugins claim the same model name (both are named).
    """
    pm = pm or get_plugin_manager()
    grouped = _by_name(_call_describing_hook("hftrainer_models", ModelSpec, pm))
    return sorted(_unique(grouped, "model").values(), key=lambda s: s.name)


def list_evaluators(*, pm: pluggy.PluginManager | None = None) -> list[EvaluatorSpec]:
    """Every evaluator of every installed plugin, sorted by name."""
    pm = pm or get_plugin_manager()
    grouped = _by_name(_call_describing_hook("hftrainer_evaluators", EvaluatorSpec, pm))
    return sorted(_unique(grouped, "evaluator").values(), key=lambda s: s.name)


def list_converters(*, pm: pluggy.PluginManager | None = None) -> list[ConverterSpec]:
    """Every representation converter edge of every installed plugin (duplicates kept: several
    plugins may serve the same edge; the converter registry chooses)."""
    pm = pm or get_plugin_manager()
    return sorted(
        _call_describing_hook("hftrainer_converters", ConverterSpec, pm), key=lambda s: s.name
    )


def list_benchmarks(*, pm: pluggy.PluginManager | None = None) -> list[BenchmarkSpec]:
    """Every benchmark of every installed plugin, sorted by name."""
    pm = pm or get_plugin_manager()
    grouped = _by_name(_call_describing_hook("hftrainer_benchmarks", BenchmarkSpec, pm))
    return sorted(_unique(grouped, "benchmark").values(), key=lambda s: s.name)


def get_model_spec(
    name: str, *, plugin: str | None = None, pm: pluggy.PluginManager | None = None
) -> ModelSpec:
    """The spec of model ``name``.

    Args:
        name: zoo model name.
        plugin: choose among plugins that provide the same name.

    Raises:
        UnknownModelError: no plugin provides ``name`` (the known names are listed).
        DuplicateModelError: several plugins provide ``name`` and ``plugin`` was not given.
    """
    pm = pm or get_plugin_manager()
    grouped = _by_name(_call_describing_hook("hftrainer_models", ModelSpec, pm))
    candidates = grouped.get(name, [])
    if plugin is not None:
        candidates = [s for s in candidates if s.plugin == plugin]
    if not candidates:
        known = ", ".join(sorted(grouped)) or "(none: no plugin installed)"
        where = f" from plugin {plugin!r}" if plugin else ""
        raise UnknownModelError(
            f"unknown model {name!r}{where}; known models: {known}. "
            "Install the plugin that provides it, or check the spelling."
        )
    return _unique({name: candidates}, "model")[name]


def load(
    name: str,
    path_or_repo: str | None = None,
    *,
    plugin: str | None = None,
    pm: pluggy.PluginManager | None = None,
    **kwargs: Any,
) -> Any:
    """Load zoo model ``name``: resolve its pipeline class through the entry points and call
    ``from_pretrained(path_or_repo or spec.default_artifact, **kwargs)``.

    Raises:
        UnknownModelError: no plugin provides ``name``.
        DuplicateModelError: several plugins provide ``name`` and ``plugin`` was not given.
        PluginError: the spec has no pipeline, or its import string does not resolve.

    Examples:
        >>> pipe = load("mogents", "checkpoints/mogents/humanml3d", device="cpu")  # doctest: +SKIP
    """
    spec = get_model_spec(name, plugin=plugin, pm=pm)
    if spec.pipeline is None:
        raise PluginError(
            f"model {name!r} (plugin {spec.plugin!r}) declares no pipeline; "
            "upgrade the plugin or use its bundle directly"
        )
    pipeline_cls = resolve(spec.pipeline)
    return pipeline_cls.from_pretrained(path_or_repo or spec.default_artifact, **kwargs)


_DESCRIBING_HOOKS = {
    "hftrainer_models": "models",
    "hftrainer_evaluators": "evaluators",
    "hftrainer_converters": "converters",
    "hftrainer_benchmarks": "benchmarks",
}


def plugin_info(*, pm: pluggy.PluginManager | None = None) -> list[dict[str, Any]]:
    """One dict per registered plugin: its name, distribution, version and hooks, and what it
    provides."""
    pm = pm or get_plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: str(item[0])):
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        entry: dict[str, Any] = {
            "name": name,
            "module": getattr(plugin, "__name__", type(plugin).__name__),
            "distribution": dist.project_name if dist is not None else None,
            "version": dist.version if dist is not None else None,
            "hooks": hooks,
        }
        for caller in pm.get_hookcallers(plugin) or []:
            key = _DESCRIBING_HOOKS.get(caller.name)
            if key is None:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    entry[key] = [spec.name for spec in impl.function() or []]
        out.append(entry)
    return out


def load_plugins(
    registries: Mapping[str, Any] | None = None,
    *,
    pm: pluggy.PluginManager | None = None,
) -> list[str]:
    """The host's one call: register every installed plugin (the ``hftrainer.plugins`` entry
    points) into its registries, through each plugin's ``hftrainer_register`` hook.

    Idempotent: a class already registered under its name is left as it is. A name held by a
    *different* class (e.g. the host's own ``MoGenTSBundle``) is kept and reported with a
    warning naming both (``register_specs(..., force=True)`` replaces it).

    Args:
        registries: registries by name (``MODEL_BUNDLES``, ``PIPELINES``, ``EVALUATORS``);
            default: those of the installed host (imports it).
        pm: a plugin manager (default: the process-wide one).

    Returns:
        ``"REGISTRY:ClassName"`` for each class newly registered, sorted (empty on a repeated
        call).

    Raises:
        HostNotInstalledError: no registries were given and the host is not installed.
        PluginError: a plugin names a class that cannot be imported, or a registry is missing.

    Examples:
        >>> from hftrainer_mogents.zoo import load_plugins
        >>> load_plugins()  # doctest: +SKIP
        ['EVALUATORS:HumanML263Evaluator', ..., 'PIPELINES:MoGenTSPipeline']
    """
    if registries is None:
        registries = host.host_registries()
    results = (pm or get_plugin_manager()).hook.hftrainer_register(registries=registries)
    return sorted(name for names in results if names for name in names)


# the name this module's first version used (kept: hosts may call it)
register = load_plugins


def register_with_running_host() -> list[str]:
    """Register every installed plugin into the host's registries when the host is running in
    this process (``hftrainer.registry`` imported); otherwise do nothing (the host is not
    imported for it). Done once per set of registries; a failure is a warning, since this runs
    on the way to something else (call :func:`load_plugins` to see the error raised).

    Returns:
        What :func:`load_plugins` registered (empty when there was nothing to do).
    """
    if not host.host_running():
        return []
    with _auto_lock:
        try:
            registries = host.host_registries()
            key = tuple(id(registries[name]) for name in host.REGISTRY_NAMES)
            if key in _auto_registered:
                return []
            # marked first: a plugin whose registration reaches the zoo again does not recurse
            _auto_registered.add(key)
            return load_plugins(registries)
        except Exception as err:  # noqa: BLE001 - reported, and the caller's own call goes on
            warnings.warn(
                f"could not register the installed hftrainer plugins into the running host "
                f"({type(err).__name__}: {err}); call hftrainer_mogents.zoo.load_plugins() to "
                "see the error",
                RuntimeWarning,
                stacklevel=2,
            )
            return []
