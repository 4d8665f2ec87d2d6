"""This package's hook implementations: the MoGenTS entry of the hftrainer zoo.

The manifest imports the library, never the other way round (the loader registers it by name, as
llm registers its ``default_plugins``). It imports only the standard library, the spec
dataclasses and plain data (the published numbers live with their benchmark,
:mod:`hftrainer_mogents.evaluation.hml263.published`), so discovery stays cheap; classes are named
by import string and imported when used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hftrainer_mogents.config import DEFAULT_REPO_ID, FPS
from hftrainer_mogents.evaluation.hml263.published import PUBLISHED_HML263
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.zoo.hookspecs import hookimpl
from hftrainer_mogents.zoo.specs import BenchmarkSpec, ConverterSpec, EvaluatorSpec, ModelSpec

PLUGIN_NAME = "mogents"
DEFAULT_ARTIFACT = DEFAULT_REPO_ID

# MoGenTS' official evaluation settings (eval_res.py): the GenerationConfig defaults
HML263_GENERATION_KWARGS: dict[str, Any] = GenerationConfig().to_dict()
# PUBLISHED_HML263 (imported above from its benchmark's torch-free module) stays importable from
# here for one release
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="mogents",
        task="t2m",
        representation="hml263",
        fps=FPS,
        default_artifact=DEFAULT_ARTIFACT,
        pipeline="hftrainer_mogents.pipeline:MoGenTSPipeline",
        bundle="hftrainer_mogents.bundle:MoGenTSBundle",
        generation_kwargs=HML263_GENERATION_KWARGS,
        evaluators=("hml263", "ms272"),
        description="MoGenTS (NeurIPS 2024): spatial-temporal joint modeling, HumanML3D-263",
    ),
)
EVALUATORS: tuple[EvaluatorSpec, ...] = (
    EvaluatorSpec(
        name="hml263",
        representation="hml263",
        cls="hftrainer_mogents.evaluation.hml263:HumanML263Evaluator",
        metrics=(
            "fid",
            "r_precision",
            "matching_score",
            "diversity",
            "multimodality",
            "r_precision_real",
            "matching_score_real",
            "diversity_real",
        ),
        description="HumanML3D-263 evaluator of Guo et al. (2022), official 20-repeat protocol",
    ),
    EvaluatorSpec(
        name="ms272",
        representation="ms272",
        cls="hftrainer_mogents.evaluation.ms272:MotionStreamer272Evaluator",
        metrics=(
            "fid",
            "r_precision_pred",
            "matching_score_pred",
            "diversity_pred",
            "r_precision_real",
            "matching_score_real",
            "diversity_real",
        ),
        description="MotionStreamer-272 evaluator (TMR-style, DistilBERT text encoder); "
        "score MoGenTS through the hml263 -> smpl135 -> ms272 bridge",
    ),
)
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
    ConverterSpec(
        src="ms272",
        dst="joints22",
        fn="hftrainer_mogents.motion.ms272:ms272_to_joints22",
        description="MotionStreamer-272 -> 22 joint positions (same frame rate, 30 fps)",
    ),
    ConverterSpec(
        src="ms272",
        dst="smpl135",
        fn="hftrainer_mogents.motion.ms272:ms272_to_smpl135",
        description="MotionStreamer-272 -> SMPL motion_135 (stored rotations, transl = pelvis - "
        "rest pelvis; 30 fps); needs model_dir= (SMPL neutral)",
    ),
    ConverterSpec(
        src="ms272",
        dst="hml263",
        fn="hftrainer_mogents.motion.ms272:ms272_to_hml263",
        description="MotionStreamer-272 (30 fps) -> HumanML3D-263 (20 fps) through joints: "
        "recovered joints, linearly resampled, HumanML3D-encoded",
    ),
)
# what a host that can train (TRAINERS, DATASETS, HOOKS) gets besides: (registry, import string)
TRAINING: tuple[tuple[str, str], ...] = (
    ("MODEL_BUNDLES", "hftrainer_mogents.training.host.bundle:MoGenTSTrainingBundle"),
    ("TRAINERS", "hftrainer_mogents.training.host.trainer:MoGenTSTrainer"),
    ("DATASETS", "hftrainer_mogents.training.host.datasets:HumanML3DTrainDataset"),
    ("DATASETS", "hftrainer_mogents.training.host.datasets:HumanML3DEvalDataset"),
    ("HOOKS", "hftrainer_mogents.training.host.hooks:BestCheckpointHook"),
    ("HOOKS", "hftrainer_mogents.training.host.hooks:DataEpochHook"),
)
BENCHMARKS: tuple[BenchmarkSpec, ...] = (
    BenchmarkSpec(
        name="mogents-humanml3d-test",
        model="mogents",
        dataset="humanml3d",
        split="test",
        evaluator="hml263",
        generation_kwargs=HML263_GENERATION_KWARGS,
        seed=0,
        batch_size=32,
        reference=PUBLISHED_HML263,
        entry="hftrainer_mogents.evaluation.hml263.benchmark:run_from_spec",
    ),
)


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
def hftrainer_register(registries: Mapping[str, Any]) -> list[str]:
    """Register our bundle, pipeline and evaluator classes (and, in a host that can train, the
    training bundle, trainer and dataset) into the host's registries; returns
    ``"REGISTRY:ClassName"`` for each class newly registered."""
    from hftrainer_mogents.zoo.host import register_specs

    return register_specs(
        registries, models=MODELS, evaluators=EVALUATORS, training=TRAINING, plugin=PLUGIN_NAME
    )
