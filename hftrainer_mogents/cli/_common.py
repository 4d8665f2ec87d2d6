"""What every front-end shares: our typed errors become a one-line message and an exit status,
never a traceback (``click.ClickException`` for the ``mogents`` commands, status 2 for the
zoo's scripts), the generation settings as options, built from
:class:`~hftrainer_mogents.generation_config.GenerationConfig` so no command restates them, and
:class:`Script`: a zoo-compatible script is a click command run under the script's name with a
preset of the zoo's defaults (click's ``default_map``), so each job is declared once."""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from hftrainer_mogents.config import DEFAULT_REPO_ID
from hftrainer_mogents.errors import InvalidInputError, MoGenTSError
from hftrainer_mogents.generation_config import GENERATION_FIELDS, GenerationConfig

__all__ = [
    "Script",
    "check_before_loading",
    "ScopedOption",
    "in_script",
    "user_errors",
    "script_status",
    "script_logging",
    "generation_options",
    "model_options",
    "smpl_model_option",
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
        return _error_status(err, prefix)


def _error_status(err: MoGenTSError, prefix: str = "") -> int:
    print(f"{prefix}{type(err).__name__}: {err}", file=sys.stderr)
    return 2


def script_logging() -> None:
    """The scripts' log format: level, logger, message."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@dataclass(frozen=True)
class Script:
    """A zoo-compatible script: ``command`` run as ``prog_name`` with ``preset`` as its defaults.

    The preset is click's ``default_map`` (parameter name -> default), so the script's defaults
    show in its ``--help`` and its flags are the command's own. Run as a script, a command's
    context carries this object as ``ctx.obj`` (see :func:`in_script`); one of our errors prints
    ``Name: message`` on stderr and gives exit status 2, as the zoo's scripts do.

    Attributes:
        command: the click command of the job.
        prog_name: the script's name in usage lines.
        preset: the script's defaults where they differ from the command's.
        scope: which :class:`ScopedOption` options the script shows and accepts.
    """

    command: click.Command
    prog_name: str
    preset: Mapping[str, Any] = field(default_factory=dict)
    scope: str = "zoo"

    def make_context(self, argv: Sequence[str]) -> click.Context:
        """Parse ``argv`` under the preset (usage errors raise ``click.UsageError``)."""
        return self.command.make_context(
            self.prog_name, list(argv), obj=self, default_map=dict(self.preset)
        )

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        """The settings ``argv`` resolves to (parameter name -> value), without running the job."""
        with self.make_context(argv) as ctx:
            return dict(ctx.params)

    def format_help(self) -> str:
        """The script's ``--help`` text."""
        with self.command.make_context(
            self.prog_name, [], obj=self, default_map=dict(self.preset), resilient_parsing=True
        ) as ctx:
            return ctx.get_help()

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run the script on ``argv`` (default ``sys.argv[1:]``). Returns the exit status: the
        job's, 2 on a usage error or one of our errors (printed as one line on stderr)."""
        status = self.call(argv)
        return status if isinstance(status, int) else 0

    def call(self, argv: Sequence[str] | None = None) -> Any:
        """As :meth:`main`, but returns what the command returns; an ``int`` is an exit status
        (``--help``, a usage error or one of our errors)."""
        script_logging()
        try:
            return self.command.main(
                list(sys.argv[1:] if argv is None else argv),
                prog_name=self.prog_name,
                standalone_mode=False,
                obj=self,
                default_map=dict(self.preset),
            )
        except click.ClickException as err:
            # raised through user_errors; a usage error keeps click's words, which name the flag
            if isinstance(err.__cause__, MoGenTSError) and not isinstance(err, click.UsageError):
                return _error_status(err.__cause__)
            err.show()
            return err.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            return 1
        except MoGenTSError as err:
            return _error_status(err)


def in_script(ctx: click.Context | None = None) -> Script | None:
    """The :class:`Script` a command runs as, or ``None`` under ``mogents``."""
    ctx = ctx or click.get_current_context()
    return ctx.obj if isinstance(ctx.obj, Script) else None


class ScopedOption(click.Option):
    """An option of one front-end only: ``scope="mogents"`` for the ``mogents`` command, else a
    :attr:`Script.scope` (``"zoo"``). Elsewhere it is left out of ``--help``, refused on the
    command line as an unknown option, and takes its (preset) default."""

    def __init__(self, *args: Any, scope: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scope = scope

    def _in_scope(self, ctx: click.Context) -> bool:
        script = in_script(ctx)
        return self.scope == (script.scope if script is not None else "mogents")

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        return super().get_help_record(ctx) if self._in_scope(ctx) else None

    def handle_parse_result(
        self, ctx: click.Context, opts: Mapping[str, Any], args: list[str]
    ) -> tuple[Any, list[str]]:
        if self.name in opts and not self._in_scope(ctx):
            raise click.NoSuchOption(self.opts[0], ctx=ctx)
        return super().handle_parse_result(ctx, opts, args)


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


def check_before_loading(check: Callable[[], Any], param_hint: Callable[[str], str]) -> Any:
    """Run one of the pipeline's model-free input checks before the model loads: a refusal
    becomes a usage error naming the flag that ``param_hint(message)`` picks; the check's
    warnings are left to the generation that follows, so each is logged once.

    Args:
        check: the check, called without arguments.
        param_hint: the flag to name for a refusal's message.

    Returns:
        What ``check`` returns.
    """
    log = logging.getLogger("hftrainer_mogents.pipeline")
    quiet, log.disabled = log.disabled, True
    try:
        return check()
    except InvalidInputError as err:
        raise click.BadParameter(str(err), param_hint=param_hint(str(err))) from err
    finally:
        log.disabled = quiet


def smpl_model_option(fn: F) -> F:
    """``--model-dir``: the SMPL neutral model of ``--format smpl`` and the skinned ``glb``
    (``mogents generate`` and ``mogents edit``)."""
    return click.option(
        "--model-dir",
        "smpl_model_dir",
        type=click.Path(),
        default=None,
        help="SMPL neutral model for --format smpl/glb: a folder holding SMPL_NEUTRAL.npz (or a "
        "chumpy-free .pkl), or the file.",
    )(fn)


def generation_options(fn: F | None = None, *, zoo_names: bool = False) -> Any:
    """One click option per :class:`GenerationConfig` field (``--time-steps``, ``--cond-scale``,
    ...), default and help from the dataclass; the command receives them as one validated
    ``generation_config`` argument (a bad value is a usage error naming its option).

    Args:
        fn: the command function (used bare, ``@generation_options``).
        zoo_names: the zoo scripts' spellings: the underscore name first (``--time_steps``),
            the hyphenated one as an alias (``@generation_options(zoo_names=True)``).
    """
    if fn is None:
        return functools.partial(generation_options, zoo_names=zoo_names)

    def names_of(name: str) -> tuple[str, ...]:
        if not zoo_names:
            return _click_names(name)
        hyphen, underscore = _option_names(name)
        return (underscore, hyphen) if underscore != hyphen else (underscore,)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in GENERATION_FIELDS}
        try:
            config = GenerationConfig(**values)
        except InvalidInputError as err:
            bad = next((n for n in GENERATION_FIELDS if str(err).startswith(n)), None)
            hint = names_of(bad)[0] if bad else None
            raise click.BadParameter(str(err), param_hint=hint) from err
        return fn(*args, generation_config=config, **kwargs)

    decorated: Callable[..., Any] = wrapper
    for spec in reversed(dataclasses.fields(GenerationConfig)):
        names = names_of(spec.name)
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
