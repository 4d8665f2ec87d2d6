"""The hftrainer plugin contract: hook specifications, spec dataclasses, the generic loader and
registration into the host. Importing this package imports neither torch nor transformers."""

from hftrainer_mogents.zoo.hookspecs import hookimpl, hookspec
from hftrainer_mogents.zoo.loader import (
    get_model_spec,
    get_plugin_manager,
    list_benchmarks,
    list_converters,
    list_evaluators,
    list_models,
    load,
    register,
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
    "register",
    "ModelSpec",
    "EvaluatorSpec",
    "ConverterSpec",
    "BenchmarkSpec",
]
