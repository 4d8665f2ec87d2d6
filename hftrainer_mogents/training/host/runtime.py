"""Running fine-tuning through the hftrainer host: its registries filled, its runner started.

The shipped configs (:mod:`hftrainer_mogents.training.configs`) name this module in
``custom_imports``, so the host's own ``tools/train.py`` (and ``accelerate launch`` of it) finds
our bundle, trainer and dataset classes with no hand call: mmengine imports the module while
reading the config, which imports the host and registers the installed plugins
(:func:`ensure_host`).

Known host defect worked around here: ``AccelerateRunner.from_cfg`` of the public host (commit
``29947be``) assigns ``self._orphan_trainable_params`` inside a class method, where ``self`` does
not exist, so every run ends in a ``NameError`` before the first step. :func:`patch_host_runner`
gives the runner module that name and the class an empty default list (the list of bundle-level
trainable parameters, which a MoGenTS bundle does not have), only when the defect is present.

:func:`train_config_file` does what ``tools/train.py`` does (``python -m
hftrainer_mogents.cli.host_train CONFIG`` is its command line, for ``accelerate launch -m``).
"""

from __future__ import annotations

import importlib
import inspect
import os
import types
from collections.abc import Mapping
from typing import Any

from hftrainer_mogents.errors import HostNotInstalledError

__all__ = [
    "HOST_INSTALL",
    "require_host",
    "patch_host_runner",
    "ensure_host",
    "run_config",
    "train_config_file",
]

# how a user gets the host (it is not on PyPI)
HOST_INSTALL = "pip install git+https://github.com/ZeyuLing/HFTrainer.git"
# the registries a training run needs besides the ones inference uses
TRAINING_REGISTRIES = ("TRAINERS", "DATASETS", "HOOKS")


def require_host() -> types.ModuleType:
    """Import the host, or say how to install it.

    Returns:
        The ``hftrainer`` package.

    Raises:
        HostNotInstalledError: ``hftrainer`` (or its training registries) cannot be imported.
    """
    try:
        host = importlib.import_module("hftrainer")
        registry = importlib.import_module("hftrainer.registry")
    except ImportError as err:
        raise HostNotInstalledError(
            f"fine-tuning runs inside the hftrainer host, which is not installed ({err}); "
            f"install it with `{HOST_INSTALL}` (the data and objectives of "
            "hftrainer_mogents.training work without it)"
        ) from err
    missing = [name for name in TRAINING_REGISTRIES if not hasattr(registry, name)]
    if missing:
        raise HostNotInstalledError(
            f"this hftrainer has no {', '.join(missing)} registry; upgrade it with `{HOST_INSTALL}`"
        )
    return host


def patch_host_runner() -> bool:
    """Work around the host runner's ``NameError`` in ``from_cfg`` (see the module docstring).

    Returns:
        True when the defect was found and worked around now, False when there was nothing to do.
    """
    module = importlib.import_module("hftrainer.runner.accelerate_runner")
    runner_cls = module.AccelerateRunner
    if "_orphan_trainable_params" in vars(runner_cls):
        return False
    try:
        source = inspect.getsource(runner_cls.from_cfg)
    except (OSError, TypeError):
        return False
    if "self._orphan_trainable_params" not in source or hasattr(module, "self"):
        return False
    # from_cfg's stray assignment lands on this placeholder; runner instances read the class
    # default, which is right for bundles without bundle-level trainable parameters
    module.self = types.SimpleNamespace()
    runner_cls._orphan_trainable_params = ()
    return True


def ensure_host() -> list[str]:
    """Import the host, work around its runner defect and register every installed plugin
    (this package's bundle, pipeline, evaluators, trainer and datasets) into its registries.

    Returns:
        ``"REGISTRY:ClassName"`` for each class newly registered.

    Raises:
        HostNotInstalledError: the host is not installed.
    """
    require_host()
    patch_host_runner()
    from hftrainer_mogents.zoo.loader import load_plugins

    return load_plugins()


def run_config(cfg: Any) -> Any:
    """Build the host's ``AccelerateRunner`` from ``cfg`` (an mmengine ``Config`` or a dict) and
    train.

    Returns:
        The runner, after training.

    Raises:
        HostNotInstalledError: the host is not installed.
    """
    ensure_host()
    from hftrainer import AccelerateRunner

    runner = AccelerateRunner.from_cfg(cfg)
    runner.train()
    return runner


def train_config_file(
    config: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    auto_resume: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """What the host's ``tools/train.py`` does: read the config file, apply ``work_dir`` /
    ``auto_resume`` and ``overrides`` (``Config.merge_from_dict``), train.

    Returns:
        The runner, after training.

    Raises:
        HostNotInstalledError: the host is not installed.
    """
    ensure_host()
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    if work_dir:
        cfg.work_dir = str(work_dir)
    if auto_resume:
        cfg.auto_resume = True
    if overrides:
        cfg.merge_from_dict(dict(overrides))
    return run_config(cfg)
