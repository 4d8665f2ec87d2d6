"""The `mogents` command: info and usage errors."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

import hftrainer_mogents
from hftrainer_mogents.cli import cli


def test_info_prints_versions_plugins_and_host():
    result = CliRunner().invoke(cli, ["info"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["hftrainer_mogents"] == hftrainer_mogents.__version__
    assert report["torch"]["installed"] is True
    assert isinstance(report["torch"]["cuda_available"], bool)
    assert report["torch"]["cpu_bf16"] in ("AMX", "AVX512-BF16", "emulated (no AMX or AVX512-BF16)")
    assert set(report["host"]) == {"installed", "version"}
    plugins = {p["name"]: p for p in report["plugins"]}
    assert plugins["mogents"]["models"] == ["mogents"]
    assert "hftrainer_register" in plugins["mogents"]["hooks"]
    models = {m["name"]: m for m in report["models"]}
    assert models["mogents"]["default_artifact"] == "ZeyuLing/hftrainer-mogents-humanml3d"
    assert "hml263->smpl135" in models["mogents"]["converters"]
    assert set(models["mogents"]["evaluators"]) == {"hml263", "ms272"}
    for key in ("evaluators", "converters", "benchmarks"):
        assert isinstance(report[key], list)


def test_version_option():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert hftrainer_mogents.__version__ in result.output


def test_unknown_subcommand_exits_nonzero_with_usage():
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code != 0
    assert "Usage:" in result.output and "No such command 'frobnicate'" in result.output


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "hftrainer_mogents", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "info" in out.stdout


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


def test_every_front_end_prints_its_help():
    """Each mogents command and each script parser (the generation settings included) formats
    its help: option text is built from GenerationConfig, so a stray % would break argparse."""
    from hftrainer_mogents.cli import bridge, convert, evaluate, split_generation

    for path in _commands(cli):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
    assert "--res-temperature" in CliRunner().invoke(cli, ["generate", "--help"]).output
    assert "--time-steps" in CliRunner().invoke(cli, ["evaluate", "hml263", "--help"]).output
    parsers = [
        split_generation.build_generation_parser(),
        evaluate.build_verify_parser(),
        bridge.build_ik_parser(),
        bridge.build_convert272_parser(),
        convert.build_smpl_model_parser(),
    ]
    for parser in parsers:
        assert parser.format_help()
    generation_help = " ".join(parsers[0].format_help().split())  # help wraps at any width
    for flag in ("--time_steps", "--res_temperature", "--gumbel_sample", "top 10 %"):
        assert flag in generation_help
