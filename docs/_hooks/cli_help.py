"""MkDocs hook: a line ``<!-- mogents-help: generate -->`` in a page becomes the ``--help`` text
of ``mogents generate`` (``<!-- mogents-help: -->`` the group's), read from the click declarations at build time, so the site's options
and defaults are the command's own and cannot drift. A marker naming no command fails the build."""

from __future__ import annotations

import re
from typing import Any

MARKER = re.compile(r"^<!-- mogents-help:\s*([a-z0-9 -]*?)\s*-->$", re.MULTILINE)


def _help(words: list[str]) -> str:
    import click

    from hftrainer_mogents.cli import cli

    ctx = click.Context(cli, info_name="mogents", max_content_width=100, terminal_width=100)
    command: click.Command = cli
    for word in words:
        if not isinstance(command, click.Group) or word not in command.commands:
            raise ValueError(f"docs: no command 'mogents {' '.join(words)}' (at {word!r})")
        command = command.commands[word]
        ctx = click.Context(command, info_name=word, parent=ctx, max_content_width=100)
    return command.get_help(ctx)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace every help marker of a page with the command's help text."""
    return MARKER.sub(lambda m: f"```text\n{_help(m.group(1).split())}\n```", markdown)
