"""``mogents demo``: the web demo (Gradio) on one loaded model."""

from __future__ import annotations

import click

from hftrainer_mogents.cli._common import smpl_model_option, user_errors
from hftrainer_mogents.config import DEFAULT_REPO_ID

__all__ = ["demo"]


@click.command()
@click.option(
    "--model", default=DEFAULT_REPO_ID, show_default=True, help="Artifact folder or hub repo id."
)
@click.option("--local-files-only", is_flag=True, help="Do not contact the hub; use the cache.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option(
    "--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True
)
@smpl_model_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface).",
)
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--share", is_flag=True, help="Also open a public gradio.live link.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Requests generated at once; the others wait in the queue.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where each request's folder goes (default: a new temporary folder).",
)
@user_errors
def demo(
    model: str,
    local_files_only: bool,
    device: str | None,
    dtype: str,
    smpl_model_dir: str | None,
    host: str,
    port: int,
    share: bool,
    concurrency: int,
    output_dir: str | None,
) -> None:
    """Serve the web demo: generate, edit and chain motions in the browser, with a 3D viewer
    and every download (needs the demo extra: pip install "hftrainer-mogents[demo]")."""
    from hftrainer_mogents.demo.app import launch, require_gradio
    from hftrainer_mogents.demo.backend import DemoBackend

    require_gradio()  # before the model loads
    backend = DemoBackend.load(
        model,
        device=device,
        dtype=dtype,
        model_dir=smpl_model_dir,
        out_root=output_dir,
        local_files_only=local_files_only,
    )
    click.echo(f"model loaded on {backend.pipe.device}; outputs go to {backend.out_root}")
    launch(backend, host=host, port=port, share=share, concurrency=concurrency)
