"""The hftrainer plugin contract (pluggy project name ``"hftrainer"``).

A plugin is a module (or object) with ``@hookimpl`` functions, exposed through an entry point in
the ``hftrainer.plugins`` group. Every hook is called with keyword arguments only; a hook may be
left out. Hooks that describe things return lists of the frozen specs in
:mod:`hftrainer_mogents.zoo.specs` and must not import heavy libraries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from hftrainer_mogents.zoo.specs import BenchmarkSpec, ConverterSpec, EvaluatorSpec, ModelSpec

PROJECT_NAME = "hftrainer"
ENTRY_POINT_GROUP = "hftrainer.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def hftrainer_models() -> list[ModelSpec]:
    """Called when the zoo lists or loads models. Return a list of ModelSpec."""


@hookspec
def hftrainer_evaluators() -> list[EvaluatorSpec]:
    """Called when the zoo lists evaluators. Return a list of EvaluatorSpec."""


@hookspec
def hftrainer_converters() -> list[ConverterSpec]:
    """Called when the zoo builds its representation graph. Return a list of ConverterSpec
    (one per ``src -> dst`` edge)."""


@hookspec
def hftrainer_benchmarks() -> list[BenchmarkSpec]:
    """Called by the zoo-wide benchmark runner. Return a list of BenchmarkSpec."""


@hookspec
def hftrainer_register(registries: Mapping[str, Any]) -> list[str] | None:
    """Called once the hftrainer host is importable, with its registries by name
    (``"MODEL_BUNDLES"``, ``"PIPELINES"``, ``"EVALUATORS"``: mmengine ``Registry`` objects).
    Register your classes there; calling it twice must change nothing, and a name already held
    by another class must be reported (warning or error), not overwritten. May return
    ``"REGISTRY:ClassName"`` for each class newly registered. Import heavy modules here, not at
    discovery."""
