"""hftrainer-mogents: MoGenTS text-to-motion as an hftrainer model-zoo plugin.

Public names are resolved lazily (PEP 562), so ``import hftrainer_mogents`` is cheap and imports
neither torch nor transformers until a model class is touched.

Examples:
    >>> import hftrainer_mogents
    >>> [spec.name for spec in hftrainer_mogents.list_models()]  # doctest: +SKIP
    ['mogents']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hftrainer_mogents._version import __version__

# public name -> module that defines it
_import_structure: dict[str, str] = {
    "MoGenTSBundle": "hftrainer_mogents.bundle",
    "MoGenTSPipeline": "hftrainer_mogents.pipeline",
    "MoGenTSOutput": "hftrainer_mogents.pipeline",
    "MoGenTSConfig": "hftrainer_mogents.config",
    "load": "hftrainer_mogents.zoo.loader",
    "list_models": "hftrainer_mogents.zoo.loader",
    "load_plugins": "hftrainer_mogents.zoo.loader",
    "errors": "hftrainer_mogents.errors",
}

__all__ = ["__version__", *_import_structure]

if TYPE_CHECKING:  # pragma: no cover
    from hftrainer_mogents import errors  # noqa: F401
    from hftrainer_mogents.bundle import MoGenTSBundle  # noqa: F401
    from hftrainer_mogents.config import MoGenTSConfig  # noqa: F401
    from hftrainer_mogents.pipeline import MoGenTSOutput, MoGenTSPipeline  # noqa: F401
    from hftrainer_mogents.zoo.loader import list_models, load, load_plugins  # noqa: F401


def __getattr__(name: str) -> Any:
    module_name = _import_structure.get(name)
    if module_name is None:
        raise AttributeError(f"module 'hftrainer_mogents' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.rsplit(".", 1)[-1] == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
