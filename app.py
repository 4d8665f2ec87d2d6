"""The web demo as a Hugging Face Space (or any host that runs ``python app.py``).

Settings come from environment variables (a Space's "Variables and secrets"):

- ``MOGENTS_MODEL``: the artifact, a hub repo id or a folder (default: the published release);
- ``MOGENTS_DEVICE``: ``cpu`` or ``cuda`` (default: cuda when available);
- ``MOGENTS_DTYPE``: ``float32`` (default) or ``bfloat16``;
- ``MOGENTS_SMPL_DIR``: an SMPL neutral model (folder or file) for the SMPL body and ``.npz``;
- ``MOGENTS_CONCURRENCY``: requests generated at once (default 1);
- ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``: where to listen (a Space sets them; default
  0.0.0.0:7860).

The page and its requests are ``hftrainer_mogents.demo`` (the same as ``mogents demo``).
"""

from __future__ import annotations

import os

from hftrainer_mogents.config import DEFAULT_REPO_ID
from hftrainer_mogents.demo.app import launch, require_gradio
from hftrainer_mogents.demo.backend import DemoBackend


def main() -> None:
    """Load the model named by the environment once and serve the page."""
    require_gradio()
    backend = DemoBackend.load(
        os.environ.get("MOGENTS_MODEL", DEFAULT_REPO_ID),
        device=os.environ.get("MOGENTS_DEVICE") or None,
        dtype=os.environ.get("MOGENTS_DTYPE", "float32"),
        model_dir=os.environ.get("MOGENTS_SMPL_DIR") or None,
    )
    launch(
        backend,
        host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        concurrency=int(os.environ.get("MOGENTS_CONCURRENCY", "1")),
    )


if __name__ == "__main__":
    main()
