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
        description="MoGenTS (NeurIPS 2024): spatial-temporal joint modeling, HumanML3D-263",
    ),
)
EVALUATORS: tuple[EvaluatorSpec, ...] = ()
CONVERTERS: tuple[ConverterSpec, ...] = (
    ConverterSpec(
        src="hml263",
        dst="smpl135",
        fn="hftrainer_mogents.motion.smpl135:hml263_to_smpl135",
        description="HumanML3D-263 (20 fps) -> SMPL motion_135 (30 fps) by batched IK; "
        "needs model_dir= (SMPL neutral)",
    ),
    ConverterSpec(
        src="joints22",
        dst="smpl135",
        fn="hftrainer_mogents.motion.smpl135:joints_to_smpl135",
        description="22 joint positions (20 fps) -> SMPL motion_135 (30 fps) by batched IK",
    ),
    ConverterSpec(
        src="smpl135",
        dst="ms272",
        fn="hftrainer_mogents.motion.ms272:smpl135_to_ms272",
        description="SMPL motion_135 -> MotionStreamer-272 (FK on SMPL neutral, betas 0)",
    ),
    ConverterSpec(
        src="hml263",
        dst="joints22",
        fn="hftrainer_mogents.motion.hml263:recover_from_ric",
        description="HumanML3D-263 -> 22 joint positions (same frame rate)",
    ),
)
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
