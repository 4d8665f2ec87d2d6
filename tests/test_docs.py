"""The documentation: the README is a front page that links the site's pages, every command and
every API object the site names exists, and CI installs and builds what the README says."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MARKER = re.compile(r"^<!-- mogents-help:\s*([a-z0-9 -]*?)\s*-->$", re.MULTILINE)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _nav_pages() -> list[str]:
    # mkdocs.yml's nav entries ("- Title: page.md" or "- page.md"), without a YAML dependency
    nav = _read(REPO / "mkdocs.yml").split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\s*-\s+(?:[^:\n]+:\s+)?(\S+\.md)\s*$", nav, re.MULTILINE)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[str]:
    names = []
    for name, command in group.commands.items():
        names.append(" ".join((*prefix, name)))
        if isinstance(command, click.Group):
            names += _commands(command, (*prefix, name))
    return names


def _hook():
    spec = importlib.util.spec_from_file_location("cli_help", DOCS / "_hooks" / "cli_help.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    pages = _nav_pages()
    assert "index.md" in pages and "architecture.md" in pages and "api/index.md" in pages
    assert all((DOCS / page).is_file() for page in pages), pages
    on_disk = {
        p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "_hooks" not in p.parts
    }
    assert on_disk == set(pages)


def test_the_readme_is_a_front_page_that_links_the_guide_pages():
    readme = _read(REPO / "README.md")
    # a front page, not a reference: the reference lives on the site's pages
    assert len(readme.encode("utf-8")) < 10_000
    links = set(re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme))
    local = {link for link in links if "://" not in link}
    assert all((REPO / link).exists() for link in local), local
    guide = {
        f"docs/{page}"
        for page in _nav_pages()
        if page != "contributing.md" and (not page.startswith("api/") or page == "api/index.md")
    }
    assert guide <= local, guide - local
    assert "CONTRIBUTING.md" in local
    # Quick start before Tests: a newcomer reads how to use it first
    assert readme.index("## Quick start") < readme.index("## Tests")


def test_the_readme_test_section_says_what_ci_runs():
    readme = _read(REPO / "README.md")
    tests = readme.split("## Tests", 1)[1].split("\n## ", 1)[0]
    ci = _read(REPO / ".ci" / "run")
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in tests
    assert 'pip install -e ".[dev]"' in tests
    assert re.search(r'pip install --quiet -e "\.\[dev\]"', ci)
    for needed in ("../shared/fixtures", "$MOGENTS_FIXTURES", "MOGENTS_REQUIRE_FIXTURES=1"):
        assert needed in tests, needed
    command = "python -m pytest -q"
    assert command in tests
    assert re.search(r"^export MOGENTS_REQUIRE_FIXTURES=1\n" + re.escape(command) + "$", ci, re.M)


def test_ci_takes_the_cpu_wheel_first_with_a_short_fallback_and_builds_the_site():
    ci = _read(REPO / ".ci" / "run")
    # PyTorch's CPU index first, with a short timeout and one retry; the default index after it
    cpu_first = re.search(
        r'pip install --quiet --timeout 15 --retries 1 "torch==2\.13\.0" \\\n'
        r"\s+--index-url https://download\.pytorch\.org/whl/cpu \|\|\n"
        r'\s+python -m pip install --quiet "torch==2\.13\.0"\n',
        ci,
    )
    assert cpu_first, "the torch install of .ci/run"
    assert ci.index("whl/cpu") < ci.index('-e ".[dev]"') < ci.index("python -m pytest")
    assert re.search(r"mkdocs build --strict --site-dir \"\$\w+\"", ci)


def test_the_docs_extra_is_for_contributors():
    import tomllib

    extras = tomllib.loads(_read(REPO / "pyproject.toml"))["project"]["optional-dependencies"]
    docs = {re.split(r"[<>=\[]", r)[0] for r in extras["docs"]}
    assert docs == {"mkdocs", "mkdocs-material", "mkdocstrings"}
    assert "hftrainer-mogents[bridge,render,test,docs]" in extras["dev"]
    assert not any("docs" in r or "mkdocs" in r for r in extras["all"])


def test_every_command_is_documented_in_the_cli_reference():
    from hftrainer_mogents.cli import cli

    documented = {m.strip() for m in MARKER.findall(_read(DOCS / "cli.md"))}
    missing = set(_commands(cli)) - documented
    assert not missing, f"add <!-- mogents-help: NAME --> to docs/cli.md for: {sorted(missing)}"
    assert "" in documented  # the group itself


def test_the_help_hook_renders_each_marker_and_refuses_an_unknown_command():
    hook = _hook()
    page = "# x\n\n<!-- mogents-help: evaluate hml263 -->\n\n<!-- mogents-help: -->\n"
    rendered = hook.on_page_markdown(page)
    assert "Usage: mogents evaluate hml263 [OPTIONS]" in rendered
    assert "Usage: mogents [OPTIONS] COMMAND [ARGS]..." in rendered
    assert "<!-- mogents-help" not in rendered
    with pytest.raises(ValueError, match="no command 'mogents genrate'"):
        hook.on_page_markdown("<!-- mogents-help: genrate -->\n")


def test_every_api_object_the_site_names_exists():
    """`::: name` directives (mkdocstrings) resolve at build time; a moved name fails CI there,
    and here first."""
    names = sorted(
        {
            name
            for page in DOCS.rglob("*.md")
            for name in re.findall(r"^::: ([\w.]+)\s*$", _read(page), re.MULTILINE)
        }
    )
    assert "hftrainer_mogents.MoGenTSPipeline" in names
    for name in names:
        parts = name.split(".")
        for split in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attr in parts[split:]:
                obj = getattr(obj, attr)
            break
        else:  # pragma: no cover - only reached when nothing imports
            pytest.fail(f"{name} does not import")
