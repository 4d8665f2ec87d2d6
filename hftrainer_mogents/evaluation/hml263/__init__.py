"""The HumanML3D-263 text-to-motion evaluator (Guo et al., 2022) and the official test protocol.

- :mod:`.networks`: the three evaluator networks (weight-compatible with ``finest.tar``);
- :mod:`.word_vectors`: GloVe vectors and POS one-hots of caption tokens;
- :mod:`.dataset`: the HumanML3D test-split reader (sub-clips, length limits);
- :mod:`.draws`: the random draws of one pass of the evaluation loader;
- :mod:`.encoders`: text and motion encoding with the evaluator networks;
- :mod:`.predictions`: checked predictions, prediction folders (``mm/``, ``generation.json``);
- :mod:`.protocol`: the 20-pass test protocol (entries, draws, embeddings, metrics, report);
- :mod:`.cache`: the real-motion embedding cache;
- :mod:`.evaluator`: :class:`HumanML263Evaluator`, which wires them (``encode_text``,
  ``encode_motion``, ``evaluate``, ``evaluate_dir``);
- :mod:`.split_generation`: generation of the test split with any text-to-motion generator;
- :mod:`.report`: the JSON and markdown reports beside the published numbers;
- :mod:`.benchmark`: the whole job (generate, evaluate, write the reports) that every front-end
  and the zoo's benchmark runner call.

Names are resolved lazily, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_import_structure = {
    "HumanML263Evaluator": "hftrainer_mogents.evaluation.hml263.evaluator",
    "PUBLISHED": "hftrainer_mogents.evaluation.hml263.evaluator",
    "read_test_split": "hftrainer_mogents.evaluation.hml263.dataset",
    "generate_test_split": "hftrainer_mogents.evaluation.hml263.split_generation",
    "run_benchmark": "hftrainer_mogents.evaluation.hml263.benchmark",
}

__all__ = list(_import_structure)

if TYPE_CHECKING:  # pragma: no cover
    from hftrainer_mogents.evaluation.hml263.benchmark import run_benchmark  # noqa: F401
    from hftrainer_mogents.evaluation.hml263.dataset import read_test_split  # noqa: F401
    from hftrainer_mogents.evaluation.hml263.evaluator import (  # noqa: F401
        PUBLISHED,
        HumanML263Evaluator,
    )
    from hftrainer_mogents.evaluation.hml263.split_generation import (  # noqa: F401
        generate_test_split,
    )


def __getattr__(name: str) -> Any:
    module_name = _import_structure.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
