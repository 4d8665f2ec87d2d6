"""``mogents publish``: verify an artifact folder and upload it to the Hugging Face Hub.

The repo id is checked before the artifact loads; huggingface_hub's errors (offline, no
connection, no such repo or no write access, an HTTP error, no token) come back as our typed
errors naming the flag to change (:func:`hub_error`), never as a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from hftrainer_mogents.cli._common import user_errors
from hftrainer_mogents.errors import HubUnavailableError, InvalidInputError, MoGenTSError

__all__ = ["check_repo_id", "hub_error", "publish"]

# the modules whose exceptions mean the hub could not be reached (huggingface_hub's HTTP clients)
_TRANSPORT_MODULES = ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def check_repo_id(repo_id: str) -> None:
    """Refuse a repo id the hub would refuse, before any work.

    Raises:
        InvalidInputError: naming ``--repo-id`` and the form expected.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise InvalidInputError(
            f"--repo-id {repo_id!r} is not a hub repo id ({err}); give 'owner/name', e.g. "
            "you/mogents-humanml3d"
        ) from err


def hub_error(err: BaseException, repo_id: str) -> MoGenTSError | None:
    """Our typed error for an exception raised by huggingface_hub while publishing (``None``
    when it is not a hub or network error)."""
    from huggingface_hub import errors as hub_errors

    if isinstance(err, hub_errors.HFValidationError):
        return InvalidInputError(f"--repo-id {repo_id!r} was refused by the hub client ({err})")
    if isinstance(err, hub_errors.OfflineModeIsEnabled):
        return HubUnavailableError(
            "HF_HUB_OFFLINE is set: publishing needs the Hugging Face Hub; unset HF_HUB_OFFLINE "
            "and retry when online"
        )
    if isinstance(err, hub_errors.LocalTokenNotFoundError):
        return InvalidInputError(
            "no Hugging Face token: log in (`hf auth login`) or pass --token with write access"
        )
    if isinstance(err, hub_errors.RepositoryNotFoundError):  # also GatedRepoError
        return InvalidInputError(
            f"hub repo {repo_id!r} was not found or cannot be written with this token "
            f"({type(err).__name__}); check --repo-id (owner/name, an owner you can write to) "
            "and --token"
        )
    if isinstance(err, hub_errors.RevisionNotFoundError):
        return InvalidInputError(
            f"--revision does not exist in hub repo {repo_id!r}; create the branch first or "
            "leave --revision out"
        )
    if isinstance(err, hub_errors.HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            return InvalidInputError(
                f"the hub refused the upload to {repo_id!r} (HTTP {status}): pass --token with "
                "write access to that repo (or log in with `hf auth login`)"
            )
        return HubUnavailableError(
            f"the Hugging Face Hub answered an error while publishing to {repo_id!r} "
            f"(HTTP {status}: {err}); retry later"
        )
    transport = type(err).__module__.split(".")[0] in _TRANSPORT_MODULES
    if transport or isinstance(err, (ConnectionError, TimeoutError)):
        return HubUnavailableError(
            f"the Hugging Face Hub cannot be reached ({type(err).__name__}: {err}); check the "
            "network (or a proxy) and retry; nothing was published"
        )
    return None


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
    """Verify an artifact folder and upload it to the Hugging Face Hub with a model card.

    A fine-tuned artifact (``mogents export``) keeps its Fine-tuning section: its
    ``finetune.json`` is rendered on the card and uploaded with it.
    """
    from hftrainer_mogents.artifact import FINETUNE_NAME, read_finetune_record
    from hftrainer_mogents.bundle import MoGenTSBundle

    check_repo_id(repo_id)
    bundle = MoGenTSBundle.from_pretrained(artifact_dir, device="cpu")  # checks files and checksums
    record = read_finetune_record(Path(artifact_dir))
    extra = (
        {}
        if record is None
        else {
            "card_fields": {"finetune": record},
            "extra_files": [Path(artifact_dir) / FINETUNE_NAME],
        }
    )
    try:
        url = bundle.push_to_hub(
            repo_id,
            token=token,
            private=private or None,
            revision=revision,
            commit_message=message,
            create_pr=create_pr,
            **extra,
        )
    except MoGenTSError:
        raise
    except Exception as err:
        typed = hub_error(err, repo_id)
        if typed is None:
            raise
        raise typed from err
    click.echo(f"published {artifact_dir} to {repo_id}: {url}")
