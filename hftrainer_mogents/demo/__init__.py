"""The web demo (``mogents demo``, the Space's ``app.py``): :mod:`.backend` answers the page's
requests as plain functions (no Gradio), :mod:`.app` builds the Gradio page over them.

Nothing here imports Gradio at import time; :func:`~hftrainer_mogents.demo.app.require_gradio`
names the extra that installs it (``pip install "hftrainer-mogents[demo]"``).
"""

from __future__ import annotations

from hftrainer_mogents.demo.backend import DemoBackend, DemoResult

__all__ = ["DemoBackend", "DemoResult"]
