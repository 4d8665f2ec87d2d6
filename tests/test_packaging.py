"""What `pip install` gets: the user extra without the contributors' tools, the CPU torch line."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def _extras() -> dict[str, set[str]]:
    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extras = doc["project"]["optional-dependencies"]

    def expand(name: str) -> set[str]:
        names: set[str] = set()
        for requirement in extras[name]:
            nested = re.fullmatch(r"hftrainer-mogents\[(.+)\]", requirement)
            if nested:
                for inner in nested.group(1).split(","):
                    names |= expand(inner.strip())
            else:
                names.add(re.split(r"[<>=!~ \[]", requirement)[0].lower())
        return names

    return {name: expand(name) for name in extras}


def test_the_user_extra_has_what_a_user_runs_and_no_test_tools():
    extras = _extras()
    assert {"smplx", "matplotlib", "imageio-ffmpeg"} <= extras["all"]
    assert not {"pytest", "ruff", "mmengine"} & extras["all"]
    assert extras["all"] | {"pytest", "ruff", "mmengine"} <= extras["dev"]


def test_the_readme_gives_the_cpu_wheel_line_and_the_install_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in readme
    assert 'pip install -e ".[all]"' in readme and 'pip install -e ".[dev]"' in readme
