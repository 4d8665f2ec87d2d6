"""The hftrainer plugin contract: hook specifications, spec dataclasses, the generic loader and
registration into the host. Importing this package imports neither torch nor transformers.

A host pulls in every installed plugin with one call, :func:`load_plugins`. When the host is
already running (``hftrainer.registry`` imported), importing this package registers them too.
"""

from hftrainer_mogents.zoo.hookspecs import hookimpl, hookspec
from hftrainer_mogents.zoo.loader import (
    get_model_spec,
    get_plugin_manager,
    list_benchmarks,
    list_converters,
    list_evaluators,
    list_models,
    load,
    load_plugins,
    register,
    register_with_running_host,
)
from hftrainer_mogents.zoo.specs import BenchmarkSpec, ConverterSpec, EvaluatorSpec, ModelSpec

__all__ = [
    "hookimpl",
    "hookspec",
    "get_plugin_manager",
    "get_model_spec",
    "list_models",
    "list_evaluators",
    "list_converters",
    "list_benchmarks",
    "load",
    "load_plugins",
    "register",
    "register_with_running_host",
    "ModelSpec",
    "EvaluatorSpec",
    "ConverterSpec",
    "BenchmarkSpec",
]

# no hand call inside a running host (a no-op, importing nothing, when no host is running)
register_with_running_host()
