"""``mogents publish``: verify an artifact folder and upload it to the Hugging Face Hub."""

from __future__ import annotations

import click

from hftrainer_mogents.cli._common import user_errors

__all__ = ["publish"]


@click.command()
@click.argument("artifact_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--repo-id", required=True, help="Hub repo to publish to, e.g. you/mogents-humanml3d."
)
@click.option("--token", default=None, help="Hub token (default: the logged-in one).")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--revision", default=None, help="Branch to push to.")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of pushing.")
@click.option("--message", default="Upload MoGenTS artifact", show_default=True)
@user_errors
def publish(
    artifact_dir: str,
    repo_id: str,
    token: str | None,
    private: bool,
    revision: str | None,
    create_pr: bool,
    message: str,
) -> None:
    """Verify an artifact folder and upload it to the Hugging Face Hub with a model card."""
    from hftrainer_mogents.bundle import MoGenTSBundle

    bundle = MoGenTSBundle.from_pretrained(artifact_dir, device="cpu")  # checks files and checksums
    url = bundle.push_to_hub(
        repo_id,
        token=token,
        private=private or None,
        revision=revision,
        commit_message=message,
        create_pr=create_pr,
    )
    click.echo(f"published {artifact_dir} to {repo_id}: {url}")
