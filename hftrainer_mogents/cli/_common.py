"""What every front-end shares: our typed errors become a one-line message and an exit status,
never a traceback (``click.ClickException`` for the ``mogents`` commands, status 2 for the
argparse scripts), and the generation settings as options, built from
:class:`~hftrainer_mogents.generation_config.GenerationConfig` so no command restates them."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hftrainer_mogents.config import DEFAULT_REPO_ID
from hftrainer_mogents.errors import InvalidInputError, MoGenTSError
from hftrainer_mogents.generation_config import GENERATION_FIELDS, GenerationConfig

__all__ = [
    "user_errors",
    "script_status",
    "script_logging",
    "generation_options",
    "model_options",
    "add_generation_arguments",
    "generation_config_from_args",
]

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


def model_options(fn: F) -> F:
    """The options that say which model to load and how: ``--model`` (artifact folder or hub
    repo id), ``--revision``, ``--local-files-only``, ``--device``, ``--dtype``."""
    options = [
        click.option(
            "--model",
            default=DEFAULT_REPO_ID,
            show_default=True,
            help="Artifact folder or hub repo id.",
        ),
        click.option("--revision", default=None, help="Hub revision (branch, tag or commit)."),
        click.option(
            "--local-files-only", is_flag=True, help="Do not contact the hub; use the cache."
        ),
        click.option("--device", default=None, help="cpu or cuda (default: cuda when available)."),
        click.option(
            "--dtype",
            type=click.Choice(["float32", "bfloat16"]),
            default="float32",
            show_default=True,
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _option_names(name: str) -> tuple[str, str]:
    return f"--{name.replace('_', '-')}", f"--{name}"


def _click_names(name: str) -> tuple[str, ...]:
    hyphen = _option_names(name)[0]
    # `mogents generate --steps` predates the config; --time-steps is its field's spelling
    return ("--steps", hyphen) if name == "time_steps" else (hyphen,)


def generation_options(fn: F) -> F:
    """One click option per :class:`GenerationConfig` field (``--time-steps``, ``--cond-scale``,
    ...), default and help from the dataclass; the command receives them as one validated
    ``generation_config`` argument (a bad value is a usage error naming its option)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in GENERATION_FIELDS}
        try:
            config = GenerationConfig(**values)
        except InvalidInputError as err:
            bad = next((n for n in GENERATION_FIELDS if str(err).startswith(n)), None)
            hint = _click_names(bad)[0] if bad else None
            raise click.BadParameter(str(err), param_hint=hint) from err
        return fn(*args, generation_config=config, **kwargs)

    decorated: Callable[..., Any] = wrapper
    for spec in reversed(dataclasses.fields(GenerationConfig)):
        names = _click_names(spec.name)
        if spec.type in (bool, "bool"):
            option = click.option(*names, spec.name, is_flag=True, help=spec.metadata["help"])
        else:
            kind = int if spec.type in (int, "int") else float
            option = click.option(
                *names,
                spec.name,
                type=kind,
                default=spec.default,
                show_default=True,
                help=spec.metadata["help"],
            )
        decorated = option(decorated)
    return decorated  # type: ignore[return-value]


def add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    """One argument per :class:`GenerationConfig` field for the zoo's scripts: the underscore
    spelling (``--time_steps``) with the hyphenated one as an alias, defaults from the dataclass."""
    group = parser.add_argument_group("generation settings (GenerationConfig)")
    for spec in dataclasses.fields(GenerationConfig):
        underscore, hyphen = _option_names(spec.name)[1], _option_names(spec.name)[0]
        names = (underscore, hyphen) if underscore != hyphen else (underscore,)
        text = spec.metadata["help"].replace("%", "%%")  # argparse formats help with %
        if spec.type in (bool, "bool"):
            group.add_argument(*names, action="store_true", help=text)
        else:
            kind = int if spec.type in (int, "int") else float
            group.add_argument(
                *names, type=kind, default=spec.default, help=f"{text} (default: %(default)s)"
            )


def generation_config_from_args(args: argparse.Namespace) -> GenerationConfig:
    """The :class:`GenerationConfig` of parsed :func:`add_generation_arguments` arguments."""
    return GenerationConfig.from_dict({name: getattr(args, name) for name in GENERATION_FIELDS})
