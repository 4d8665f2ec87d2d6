"""Imported by the shipped configs' ``custom_imports``: importing it imports the hftrainer host,
works around its runner defect and registers the installed plugins
(:func:`~hftrainer_mogents.training.host.runtime.ensure_host`), so the host's unchanged
``tools/train.py`` builds our bundle, trainer and datasets from a config file.

Raises ``HostNotInstalledError`` (with the install line) at import when the host is missing.
"""

from __future__ import annotations

from hftrainer_mogents.training.host.runtime import ensure_host

__all__: list[str] = []

ensure_host()
