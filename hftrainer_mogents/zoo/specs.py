"""Plain, frozen descriptions of what a plugin offers.

Specs hold *import strings* (``"package.module:Attribute"``), never the objects themselves, so that
discovering plugins imports nothing heavy (no torch, no transformers). :func:`resolve` turns an
import string into the object when it is actually needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hftrainer_mogents.errors import PluginError

__all__ = [
    "ModelSpec",
    "EvaluatorSpec",
    "ConverterSpec",
    "BenchmarkSpec",
    "BENCHMARK_ENTRY_ARGS",
    "BENCHMARK_REQUIRED_ARGS",
    "resolve",
]

# What a zoo runner passes to a benchmark entry, by keyword, after the spec itself:
#   entry(spec, *, dataset_root, evaluator_dir, out_dir, model_path=None, seed=None) -> dict
BENCHMARK_ENTRY_ARGS: tuple[str, ...] = (
    "dataset_root",  # the dataset folder (e.g. HumanML3D with new_joint_vecs/, texts/, test.txt)
    "evaluator_dir",  # the evaluator's weights folder (e.g. `mogents convert-evaluator` output)
    "out_dir",  # where predictions and the metric JSON go
    "model_path",  # the model artifact (local folder or hub id); None: the model's default
    "seed",  # the run's seed; None: the spec's
)
BENCHMARK_REQUIRED_ARGS: tuple[str, ...] = ("dataset_root", "evaluator_dir", "out_dir")
_NOT_SAMPLING = ("seed", "batch_size")


def _freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ModelSpec:
    """A model of the zoo.

    Attributes:
        name: zoo name, e.g. ``"mogents"`` (what ``load(name)`` takes).
        task: ``"t2m"`` (text to motion), ...
        representation: motion representation of the outputs, e.g. ``"hml263"``.
        fps: frame rate of the outputs.
        default_artifact: hub repo id or local path loaded when none is given.
        pipeline: import string of the pipeline class (has ``from_pretrained``), or ``None`` while
            the package does not provide one.
        bundle: import string of the bundle class (``nn.Module`` with ``from_pretrained``,
            ``from_config``, ``save_pretrained``), or ``None``.
        evaluators: names of :class:`EvaluatorSpec` that score this model's outputs.
        generation_kwargs: default keyword arguments of the pipeline call.
        description: one line for listings.
        plugin: name of the plugin that provided the spec (filled in by the loader).
    """

    name: str
    task: str
    representation: str
    fps: float
    default_artifact: str
    pipeline: str | None = None
    bundle: str | None = None
    evaluators: tuple[str, ...] = ()
    generation_kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    plugin: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "evaluators", tuple(self.evaluators))
        object.__setattr__(self, "generation_kwargs", _freeze(self.generation_kwargs))

    def import_strings(self) -> dict[str, str]:
        """The import strings this spec holds, by role."""
        return {k: v for k, v in (("pipeline", self.pipeline), ("bundle", self.bundle)) if v}


@dataclass(frozen=True)
class EvaluatorSpec:
    """A metric suite in one motion representation.

    Attributes:
        name: e.g. ``"hml263"``.
        representation: the representation it scores.
        cls: import string of the evaluator class (``evaluate``, ``evaluate_dir``).
        metrics: names of the metrics it reports.
        description: one line for listings.
        plugin: filled in by the loader.
    """

    name: str
    representation: str
    cls: str
    metrics: tuple[str, ...] = ()
    description: str = ""
    plugin: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))

    def import_strings(self) -> dict[str, str]:
        """The import strings this spec holds, by role."""
        return {"cls": self.cls}


@dataclass(frozen=True)
class ConverterSpec:
    """One edge of the representation graph: a function ``fn(motion, **kw) -> motion``.

    Attributes:
        src: source representation, e.g. ``"hml263"``.
        dst: target representation, e.g. ``"smpl135"``.
        fn: import string of the function.
        description: one line for listings.
        plugin: filled in by the loader.
    """

    src: str
    dst: str
    fn: str
    description: str = ""
    plugin: str | None = None

    @property
    def name(self) -> str:
        """``"src->dst"``."""
        return f"{self.src}->{self.dst}"

    def import_strings(self) -> dict[str, str]:
        """The import strings this spec holds, by role."""
        return {"fn": self.fn}


@dataclass(frozen=True)
class BenchmarkSpec:
    """What the zoo-wide benchmark runner runs for a model.

    The calling convention: a runner knows the spec and supplies only what the spec cannot know,
    the :data:`BENCHMARK_ENTRY_ARGS`, by keyword::

        entry = resolve(spec.entry)
        entry(spec, dataset_root=..., evaluator_dir=..., out_dir=..., model_path=None, seed=None)

    (or ``spec.run(...)``, which does the same and checks the arguments first).
    ``dataset_root``, ``evaluator_dir`` and ``out_dir`` are required; ``model_path=None`` means
    the model's default artifact, ``seed=None`` the spec's :attr:`seed`. The entry takes every
    other setting from the spec (:attr:`generation_kwargs`, :attr:`seed`, :attr:`batch_size`) and
    adapts the protocol's sizes to a small split by itself; it returns a dict naming what it
    wrote (for MoGenTS: ``<out_dir>/<key>.npy`` predictions and
    ``<out_dir>/metrics/verify_<evaluator>.json``).

    Attributes:
        name: e.g. ``"mogents-humanml3d-test"``.
        model: the :class:`ModelSpec` name it generates with.
        dataset: dataset name, e.g. ``"humanml3d"``.
        split: e.g. ``"test"``.
        evaluator: the :class:`EvaluatorSpec` name that scores it.
        generation_kwargs: the sampling settings of the generation call only (for MoGenTS the
            ``GenerationConfig`` fields); the run's seed and batch size are fields of their own.
        reference: published numbers to print beside ours.
        entry: import string of the callable that runs the benchmark (see above), or ``None``.
        seed: the run's default seed.
        batch_size: generation batch size.
        plugin: filled in by the loader.

    Raises:
        PluginError: ``generation_kwargs`` holds ``seed`` or ``batch_size`` (use the fields).
    """

    name: str
    model: str
    dataset: str
    split: str
    evaluator: str
    generation_kwargs: Mapping[str, Any] = field(default_factory=dict)
    reference: Mapping[str, Any] = field(default_factory=dict)
    entry: str | None = None
    seed: int = 0
    batch_size: int = 32
    plugin: str | None = None

    def __post_init__(self) -> None:
        misplaced = [k for k in _NOT_SAMPLING if k in (self.generation_kwargs or {})]
        if misplaced:
            raise PluginError(
                f"benchmark {self.name!r}: generation_kwargs holds {misplaced}, which are not "
                "sampling settings; give them as BenchmarkSpec(seed=..., batch_size=...)"
            )
        object.__setattr__(self, "generation_kwargs", _freeze(self.generation_kwargs))
        object.__setattr__(self, "reference", _freeze(self.reference))

    def import_strings(self) -> dict[str, str]:
        """The import strings this spec holds, by role."""
        return {"entry": self.entry} if self.entry else {}

    def run(self, **kwargs: Any) -> Any:
        """Run the benchmark: ``resolve(entry)(self, **kwargs)``, ``kwargs`` being the
        :data:`BENCHMARK_ENTRY_ARGS` (``dataset_root``, ``evaluator_dir``, ``out_dir`` required).

        Raises:
            PluginError: no entry, an unknown argument or a missing required one.
        """
        if not self.entry:
            raise PluginError(f"benchmark {self.name!r} has no entry to run")
        unknown = sorted(set(kwargs) - set(BENCHMARK_ENTRY_ARGS))
        missing = [k for k in BENCHMARK_REQUIRED_ARGS if kwargs.get(k) is None]
        if unknown or missing:
            raise PluginError(
                f"benchmark {self.name!r}: "
                + (f"unknown argument(s) {unknown}; " if unknown else "")
                + (f"missing {missing}; " if missing else "")
                + f"a runner passes {list(BENCHMARK_ENTRY_ARGS)} "
                f"({list(BENCHMARK_REQUIRED_ARGS)} required)"
            )
        return resolve(self.entry)(self, **kwargs)


def resolve(import_string: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the object.

    Raises:
        PluginError: the string is malformed, the module does not import or lacks the attribute.
    """
    module_name, sep, attr_path = import_string.partition(":")
    if not sep or not module_name or not attr_path:
        raise PluginError(
            f"bad import string {import_string!r}: expected 'package.module:Attribute'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise PluginError(f"cannot import {module_name!r} for {import_string!r}: {err}") from err
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as err:
            raise PluginError(
                f"{import_string!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from err
    return obj
