"""The ``mogents`` command.

Each subcommand imports torch and model code inside its body, so ``mogents --help`` is instant.
Library errors (:class:`~hftrainer_mogents.errors.MoGenTSError`) become a one-line message and a
non-zero exit, without a traceback.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hftrainer_mogents._version import __version__
from hftrainer_mogents.errors import MoGenTSError

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(fn: F) -> F:
    """Turn our typed errors into ``click.ClickException`` at the command boundary."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MoGenTSError as err:
            raise click.ClickException(f"{type(err).__name__}: {err}") from err

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mogents")
def cli() -> None:
    """MoGenTS text-to-motion: generate, convert, evaluate and bridge HumanML3D-263 motions."""


def _torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a core dependency
        return {"installed": False, "error": str(err)}
    info: dict[str, Any] = {
        "installed": True,
        "version": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "num_threads": torch.get_num_threads(),
    }
    if info["cuda_available"]:
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


@cli.command()
@_user_errors
def info() -> None:
    """Print versions, devices, installed plugins and what they provide, as JSON."""
    from hftrainer_mogents.zoo import host, loader

    report: dict[str, Any] = {
        "hftrainer_mogents": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": _torch_info(),
        "host": {"installed": host.host_installed(), "version": host.host_version()},
        "plugins": loader.plugin_info(),
    }
    try:
        report["models"] = [
            {
                "name": spec.name,
                "plugin": spec.plugin,
                "task": spec.task,
                "representation": spec.representation,
                "fps": spec.fps,
                "default_artifact": spec.default_artifact,
                "pipeline": spec.pipeline,
                "bundle": spec.bundle,
                "evaluators": list(spec.evaluators),
            }
            for spec in loader.list_models()
        ]
    except MoGenTSError as err:  # a name clash must not hide the rest of the report
        report["models_error"] = str(err)
    report["evaluators"] = [
        {"name": s.name, "plugin": s.plugin, "representation": s.representation, "cls": s.cls}
        for s in loader.list_evaluators()
    ]
    report["converters"] = [
        {"edge": s.name, "plugin": s.plugin, "fn": s.fn} for s in loader.list_converters()
    ]
    report["benchmarks"] = [
        {"name": s.name, "plugin": s.plugin, "model": s.model, "evaluator": s.evaluator}
        for s in loader.list_benchmarks()
    ]
    click.echo(json.dumps(report, indent=2, sort_keys=False))


def main() -> None:  # pragma: no cover - console entry for `python -m hftrainer_mogents`
    cli(prog_name="mogents")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
