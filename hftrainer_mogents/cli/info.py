"""``mogents info``: versions, devices, installed plugins and what they provide."""

from __future__ import annotations

import json
import platform
from typing import Any

import click

from hftrainer_mogents._version import __version__
from hftrainer_mogents.cli._common import user_errors
from hftrainer_mogents.errors import MoGenTSError

__all__ = ["info"]


def _torch_info() -> dict[str, Any]:
    try:
        import torch

        from hftrainer_mogents.utils.precision import cpu_bf16_instructions
    except ImportError as err:  # pragma: no cover - torch is a core dependency
        return {"installed": False, "error": str(err)}
    info: dict[str, Any] = {
        "installed": True,
        "version": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "num_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        # bf16 is fast only with these; elsewhere it is emulated (dtype=None is faster there)
        "cpu_bf16": cpu_bf16_instructions() or "emulated (no AMX or AVX512-BF16)",
    }
    if info["cuda_available"]:
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


@click.command()
@user_errors
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
    converters = loader.list_converters()
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
                "converters": [c.name for c in converters if c.src == spec.representation],
            }
            for spec in loader.list_models()
        ]
    except MoGenTSError as err:  # a name clash must not hide the rest of the report
        report["models_error"] = str(err)
    report["evaluators"] = [
        {"name": s.name, "plugin": s.plugin, "representation": s.representation, "cls": s.cls}
        for s in loader.list_evaluators()
    ]
    report["converters"] = [{"edge": s.name, "plugin": s.plugin, "fn": s.fn} for s in converters]
    report["benchmarks"] = [
        {"name": s.name, "plugin": s.plugin, "model": s.model, "evaluator": s.evaluator}
        for s in loader.list_benchmarks()
    ]
    click.echo(json.dumps(report, indent=2, sort_keys=False))
