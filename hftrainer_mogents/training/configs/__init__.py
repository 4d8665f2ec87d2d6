"""Host-style training configs (mmengine ``.py`` files) shipped with the package, one per stage
plus ``mogents_tiny.py`` for smoke tests, each adding its stage's settings to what
``_mogents_base.py`` holds for all (mmengine's ``_base_``); run them with the host's ``tools/train.py``, its
``tools/dist_train.sh`` / ``accelerate launch``, or ``mogents finetune``.

They read two environment variables (mmengine substitutes ``{{$NAME:default}}`` while loading):
``MOGENTS_ARTIFACT`` (the artifact to fine-tune, default the published HumanML3D one) and
``MOGENTS_DATA`` (the HumanML3D-format folder, default ``data/HumanML3D``). Their
``custom_imports`` registers this package's classes into the host
(:mod:`hftrainer_mogents.training.host.setup`). :func:`config_path` gives a file's path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["CONFIG_NAMES", "config_path"]

CONFIG_NAMES = ("vq", "mask", "res", "length", "tiny")


def config_path(name: str) -> Path:
    """The path of a shipped config: ``vq``, ``mask``, ``res``, ``length`` or ``tiny``.

    Raises:
        InvalidInputError: an unknown name.
    """
    if name not in CONFIG_NAMES:
        raise InvalidInputError(
            f"no shipped config {name!r}; choose one of {', '.join(CONFIG_NAMES)}"
        )
    return Path(str(resources.files(__name__) / f"mogents_{name}.py"))
