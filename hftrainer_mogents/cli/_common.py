"""What every front-end shares: our typed errors become a one-line message and an exit status,
never a traceback (``click.ClickException`` for the ``mogents`` commands, status 2 for the
argparse scripts)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hftrainer_mogents.errors import MoGenTSError

__all__ = ["user_errors", "script_status", "script_logging"]

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn our typed errors into ``click.ClickException`` at the command boundary."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MoGenTSError as err:
            raise click.ClickException(f"{type(err).__name__}: {err}") from err

    return wrapper  # type: ignore[return-value]


def script_status(run: Callable[[], int], *, prefix: str = "") -> int:
    """Run a script's job; one of our errors is printed to stderr (after ``prefix``) as one line
    and gives exit status 2."""
    try:
        return run()
    except MoGenTSError as err:
        print(f"{prefix}{type(err).__name__}: {err}", file=sys.stderr)
        return 2


def script_logging() -> None:
    """The scripts' log format: level, logger, message."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
