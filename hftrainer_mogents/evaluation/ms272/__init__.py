"""MotionStreamer-272 evaluator (TMR-style motion encoder + DistilBERT text encoder).

- :mod:`.networks`: the encoders, with the official parameter names.
- :mod:`.dataset`: the ``humanml3d_272`` test split reader.
- :mod:`.encoders`: text and motion encoding with the networks.
- :mod:`.protocol`: pairing of entries and predictions, metrics over passes, the zoo's keys.
- :mod:`.evaluator`: :class:`MotionStreamer272Evaluator` (``evaluate``, ``evaluate_dir``).
- :mod:`.report`: ``verify_ms272.json`` / ``.md``.
- :mod:`.benchmark`: the whole job (evaluate a prediction folder, write the reports) that every
  front-end calls.

Importing this package imports nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_import_structure = {
    "MotionStreamer272Evaluator": "hftrainer_mogents.evaluation.ms272.evaluator",
    "read_ms272_split": "hftrainer_mogents.evaluation.ms272.dataset",
    "write_ms272_report": "hftrainer_mogents.evaluation.ms272.report",
    "run_benchmark": "hftrainer_mogents.evaluation.ms272.benchmark",
}

__all__ = list(_import_structure)

if TYPE_CHECKING:  # pragma: no cover
    from hftrainer_mogents.evaluation.ms272.benchmark import run_benchmark  # noqa: F401
    from hftrainer_mogents.evaluation.ms272.dataset import read_ms272_split  # noqa: F401
    from hftrainer_mogents.evaluation.ms272.evaluator import MotionStreamer272Evaluator  # noqa: F401
    from hftrainer_mogents.evaluation.ms272.report import write_ms272_report  # noqa: F401


def __getattr__(name: str) -> Any:
    module_name = _import_structure.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
