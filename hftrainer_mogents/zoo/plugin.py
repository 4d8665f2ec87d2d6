"""This package's hook implementations: the MoGenTS entry of the hftrainer zoo.

Imports only the standard library and the spec dataclasses, so discovery stays cheap; classes are
named by import string and imported when used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hftrainer_mogents.zoo.hookspecs import hookimpl
from hftrainer_mogents.zoo.specs import BenchmarkSpec, ConverterSpec, EvaluatorSpec, ModelSpec

PLUGIN_NAME = "mogents"
DEFAULT_ARTIFACT = "ZeyuLing/hftrainer-mogents-humanml3d"

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="mogents",
        task="t2m",
        representation="hml263",
        fps=20,
        default_artifact=DEFAULT_ARTIFACT,
        pipeline="hftrainer_mogents.pipeline:MoGenTSPipeline",
        bundle="hftrainer_mogents.bundle:MoGenTSBundle",
        generation_kwargs={
            "time_steps": 10,
            "cond_scale": 4.0,
            "res_cond_scale": 5.0,
            "topkr": 0.9,
            "temperature": 1.0,
            "res_temperature": 1.0,
            "gumbel_sample": False,
        },
        description="MoGenTS (NeurIPS 2024): spatial-temporal joint modeling, HumanML3D-263",
    ),
)
EVALUATORS: tuple[EvaluatorSpec, ...] = ()
CONVERTERS: tuple[ConverterSpec, ...] = ()
BENCHMARKS: tuple[BenchmarkSpec, ...] = ()


@hookimpl
def hftrainer_models() -> list[ModelSpec]:
    """The MoGenTS model spec."""
    return list(MODELS)


@hookimpl
def hftrainer_evaluators() -> list[EvaluatorSpec]:
    """The evaluators this package ships."""
    return list(EVALUATORS)


@hookimpl
def hftrainer_converters() -> list[ConverterSpec]:
    """The representation converters this package ships."""
    return list(CONVERTERS)


@hookimpl
def hftrainer_benchmarks() -> list[BenchmarkSpec]:
    """The benchmarks the zoo-wide runner can run for MoGenTS."""
    return list(BENCHMARKS)


@hookimpl
def hftrainer_register(registries: Mapping[str, Any]) -> None:
    """Register our bundle, pipeline and evaluator classes into the host's registries."""
    from hftrainer_mogents.zoo.host import register_specs

    register_specs(registries, models=MODELS, evaluators=EVALUATORS, plugin=PLUGIN_NAME)
