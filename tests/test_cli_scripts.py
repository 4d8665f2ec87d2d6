"""One click declaration per job: the zoo's scripts are the `mogents` commands (or their own
click command) run under the script's name with the zoo's preset. Each script accepts every flag
name the zoo uses, resolves to the zoo's defaults, and `mogents bridge` keeps its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hftrainer_mogents.cli import cli
from hftrainer_mogents.cli.bridge import (
    CONVERT272_SCRIPT,
    IK_SCRIPT,
    ZOO_IK_DEFAULTS,
    bridge,
    convert272_main,
    ik_main,
)
from hftrainer_mogents.cli.convert import convert
from hftrainer_mogents.cli.evaluate import (
    build_verify_parser,
    evaluate_hml263,
    evaluate_ms272,
    zoo_options,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

# the zoo's hml263_to_smpl_ik.py: its flags and defaults, written out (not read from the preset)
ZOO_IK = {
    "--in-dir": ("in_dir", None),
    "--out-dir": ("out_dir", None),
    "--model-dir": ("model_dir", "ref_repo/MDM/body_models"),
    "--ids": ("ids_file", None),
    "--limit": ("limit", None),
    "--num-shards": ("num_shards", None),
    "--shard-index": ("shard_index", None),
    "--source-fps": ("source_fps", 20.0),
    "--target-fps": ("target_fps", 30.0),
    "--batch-size": ("batch_size", 64),
    "--batch-frames": ("batch_frames", 8192),
    "--device": ("device", "auto"),
    "--skip-existing": ("skip_existing", False),
    "--floor-align": ("floor_align", False),
    "--refine-iters": ("iters", 0),
    "--refine-lr": ("lr", 0.02),
    "--smooth-weight": ("smooth_weight", 1e-3),
    "--pose-keep-weight": ("pose_keep_weight", 1e-4),
    "--pose-l2-weight": ("pose_l2_weight", 0.0),
    "--angle-prior-weight": ("angle_prior_weight", 0.0),
    "--orientation-mode": ("orientation_mode", "bone"),
    "--parent-ref-weight": ("parent_ref_weight", 0.25),
    "--rotation-init": ("rotation_init", "auto"),
    "--lock-global-orient": ("lock_global_orient", False),
    "--target-length-anno": ("target_length_anno", None),
    "--canonical-meta-dir": ("canonical_meta_dir", None),
    "--restore-root-translation": ("restore_root_translation", "auto"),
    "--resample-mode": ("resample_mode", "zoo"),
    "--rot6d-convention": ("rot6d_convention", "row"),
    "--input-normalized": ("input_normalized", False),
    "--mean-path": ("mean_path", None),
    "--std-path": ("std_path", None),
    "--threads": ("threads", None),
    "--allow-failures": ("allow_failures", False),
    "--no-progress": ("progress", True),
}
# a value for each flag that takes one, unlike its default, as the option should parse it
IK_VALUES = {
    "--in-dir": "IN", "--out-dir": "OUT", "--model-dir": "M", "--ids": "ids.txt", "--limit": 3,
    "--num-shards": 2, "--shard-index": 1, "--source-fps": 25.0, "--target-fps": 24.0,
    "--batch-size": 8, "--batch-frames": 100, "--device": "cpu", "--refine-iters": 80,
    "--refine-lr": 0.1, "--smooth-weight": 0.5, "--pose-keep-weight": 0.25,
    "--pose-l2-weight": 0.0, "--angle-prior-weight": 0.0, "--orientation-mode": "bone",
    "--parent-ref-weight": 0.5, "--rotation-init": "position_ik", "--target-length-anno": "a.json",
    "--canonical-meta-dir": "meta", "--restore-root-translation": "none", "--resample-mode": "exact",
    "--rot6d-convention": "row", "--mean-path": "m.npy", "--std-path": "s.npy", "--threads": 1,
}  # fmt: skip

ZOO_272 = {
    "--in-dir": ("in_dir", None),
    "--out-dir": ("out_dir", None),
    "--skeleton": ("skeleton", "canon272"),
    "--model-dir": ("model_dir", None),
    "--workers": ("workers", 1),
    "--skip-existing": ("skip_existing", False),
    "--num-shards": ("num_shards", None),
    "--shard-index": ("shard_index", None),
    "--ids": ("ids_file", None),
    "--limit": ("limit", None),
    "--rotation-space": ("rotation_space", "local"),
    "--allow-failures": ("allow_failures", False),
    "--no-progress": ("progress", True),
}
VALUES_272 = {
    "--in-dir": "IN", "--out-dir": "OUT", "--skeleton": "smpl", "--model-dir": "M",
    "--workers": 8, "--num-shards": 2, "--shard-index": 0, "--ids": "ids.txt",
    "--limit": 2, "--rotation-space": "local",
}  # fmt: skip

ZOO_VERIFY = {
    "--which": ("which", "both"),
    "--out-dir": ("out_dir", None),
    "--gt-only": ("gt_only", False),
    "--n-repeats": ("n_repeats", 20),
    "--seed": ("seed", 0),
    "--device": ("device", None),
    "--strict": ("strict", False),
    "--no-progress": ("no_progress", False),
    "--hml263-pred": ("hml263_pred", None),
    "--hml263-gt-root": ("hml263_gt_root", "dataset/HumanML3D"),
    "--hml263-split-file": ("hml263_split_file", None),
    "--hml263-texts-dir": ("hml263_texts_dir", None),
    "--hml263-evaluator": ("hml263_evaluator", "checkpoints/evaluators/hml263"),
    "--hml263-caption-selection": ("hml263_caption_selection", None),
    "--hml263-max-samples": ("hml263_max_samples", None),
    "--hml263-gt-cache": ("hml263_gt_cache", None),
    "--hml263-no-gt-cache": ("hml263_no_gt_cache", False),
    "--hml263-dtype": ("hml263_dtype", "fp32"),
    "--hml263-diversity-times": ("hml263_diversity_times", None),
    "--ms272-pred": ("ms272_pred", None),
    "--ms272-data-root": ("ms272_data_root", "data/evaluators/humanml3d_272"),
    "--ms272-split-file": ("ms272_split_file", None),
    "--ms272-evaluator": ("ms272_evaluator", "checkpoints/evaluators/ms272"),
    "--ms272-caption-selection": ("ms272_caption_selection", None),
    "--ms272-pairs": ("ms272_pairs", "entry"),
    "--ms272-max-samples": ("ms272_max_samples", None),
    "--ms272-batch-size": ("ms272_batch_size", 32),
    "--ms272-diversity-times": ("ms272_diversity_times", None),
}
VALUES_VERIFY = {
    "--which": "ms272", "--out-dir": "OUT", "--n-repeats": 3, "--seed": 4, "--device": "cpu",
    "--hml263-pred": "P", "--hml263-gt-root": "R", "--hml263-split-file": "s.txt",
    "--hml263-texts-dir": "T", "--hml263-evaluator": "E", "--hml263-caption-selection": "generated",
    "--hml263-max-samples": 5, "--hml263-gt-cache": "C", "--hml263-dtype": "bf16",
    "--hml263-diversity-times": 6, "--ms272-pred": "P2", "--ms272-data-root": "D",
    "--ms272-split-file": "s2.txt", "--ms272-evaluator": "E2", "--ms272-caption-selection": "random",
    "--ms272-pairs": "caption", "--ms272-max-samples": 7, "--ms272-batch-size": 8,
    "--ms272-diversity-times": 9,
}  # fmt: skip


@pytest.mark.parametrize(
    ("script", "table", "values", "required"),
    [
        (IK_SCRIPT, ZOO_IK, IK_VALUES, ["--in-dir", "I", "--out-dir", "O"]),
        (CONVERT272_SCRIPT, ZOO_272, VALUES_272, ["--in-dir", "I", "--out-dir", "O"]),
        (build_verify_parser(), ZOO_VERIFY, VALUES_VERIFY, ["--out-dir", "O"]),
    ],
    ids=["hml263_to_smpl_ik", "convert_motion135_to_h3d272", "verify_evaluators"],
)
def test_zoo_scripts_take_every_zoo_flag_with_the_zoo_defaults(script, table, values, required):
    defaults = script.parse_args(required)
    for flag, (name, default) in table.items():
        if flag not in required:
            assert defaults[name] == default, (flag, defaults[name], default)
    argv = []
    for flag in table:
        argv += [flag, str(values[flag])] if flag in values else [flag]
    given = script.parse_args(argv)
    for flag, (name, default) in table.items():
        expected = values.get(flag, not default)  # a flag flips its default
        assert given[name] == expected, (flag, given[name], expected)
    help_text = script.format_help()
    assert help_text.startswith(f"Usage: {script.prog_name} ")
    for flag in table:
        assert flag in help_text, flag


def test_the_ik_script_is_mogents_bridge_under_the_zoo_preset():
    assert IK_SCRIPT.command is bridge and IK_SCRIPT.preset == ZOO_IK_DEFAULTS
    ours = bridge.make_context("bridge", ["--in-dir", "I", "--out-dir", "O", "--model-dir", "M"])
    zoo = IK_SCRIPT.parse_args(["--in-dir", "I", "--out-dir", "O"])
    # mogents bridge keeps its own defaults: 80 refinement steps, floor alignment, the joints'
    # IK start, 272 output; the script the zoo's: 0, none, auto, motion_135 only
    mine = {k: ours.params[k] for k in ZOO_IK_DEFAULTS}
    assert mine == {
        "to": "ms272",
        "model_dir": "M",
        "iters": 80,
        "floor_align": True,
        "rotation_init": "joints",
        "input_normalized": None,  # mean/std given = normalised inputs
    }
    assert {k: zoo[k] for k in ZOO_IK_DEFAULTS} == ZOO_IK_DEFAULTS
    # every other setting is the same in both
    assert {k: v for k, v in ours.params.items() if k not in ZOO_IK_DEFAULTS} == {
        k: v for k, v in zoo.items() if k not in ZOO_IK_DEFAULTS
    }
    with pytest.raises(click.MissingParameter, match="model_dir"):
        bridge.make_context("bridge", ["--in-dir", "I", "--out-dir", "O"])
    # the zoo's names are extra names of mogents bridge's options
    again = bridge.make_context("bridge", ["--in-dir", "I", "--out-dir", "O", "--model-dir", "M",
                                           "--refine-iters", "7", "--refine-lr", "0.5"])  # fmt: skip
    assert (again.params["iters"], again.params["lr"]) == (7, 0.5)


def test_options_of_one_front_end_are_refused_and_hidden_in_the_other():
    runner = CliRunner()
    base = ["bridge", "--in-dir", "I", "--out-dir", "O", "--model-dir", "M"]
    for zoo_only in (
        ["--pose-l2-weight", "0"],
        ["--rot6d-convention", "row"],
        ["--input-normalized"],
    ):
        result = runner.invoke(cli, [*base, *zoo_only])
        assert result.exit_code == 2 and f"No such option '{zoo_only[0]}'" in result.output
    with pytest.raises(click.NoSuchOption, match="--to"):
        IK_SCRIPT.parse_args(["--in-dir", "I", "--out-dir", "O", "--to", "ms272"])
    with pytest.raises(click.NoSuchOption, match="--smpl135-dir"):
        IK_SCRIPT.parse_args(["--in-dir", "I", "--out-dir", "O", "--smpl135-dir", "x"])
    ours = runner.invoke(cli, ["bridge", "--help"]).output
    zoo = IK_SCRIPT.format_help()
    assert "--pose-l2-weight" not in ours and "--rot6d-convention" not in ours
    assert "--to [smpl135|ms272]" in ours and "--smpl135-dir" in ours
    assert "--to " not in zoo and "--smpl135-dir" not in zoo and "--skeleton" not in zoo
    assert "[default: 0]" in zoo.split("--refine-iters", 1)[1].split("--", 1)[0]
    assert "[default: 80]" in ours.split("--refine-iters", 1)[1].split("--", 1)[0]


def test_scripts_exit_codes_and_messages(tmp_path, capsys):
    """Our errors: one line on stderr, exit 2 (the zoo's); usage errors exit 2; --help 0."""
    argv = ["--in-dir", str(tmp_path), "--out-dir", str(tmp_path / "o")]
    assert ik_main([*argv, "--pose-l2-weight", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("InvalidInputError: --pose-l2-weight") and "Traceback" not in err
    assert ik_main([*argv, "--rot6d-convention", "column"]) == 2
    assert ik_main([*argv, "--input-normalized"]) == 2
    assert "--input-normalized needs --mean-path" in capsys.readouterr().err
    assert ik_main([*argv, "--rotation-init", "bogus"]) == 2
    assert "Usage: hml263_to_smpl_ik.py" in capsys.readouterr().err
    assert convert272_main(["--out-dir", "o"]) == 2
    assert "Missing option '--in-dir'" in capsys.readouterr().err
    assert ik_main(["--help"]) == 0
    assert "--refine-iters" in capsys.readouterr().out


def test_an_empty_batch_prints_the_summary_with_the_scripts_prefix(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    assert convert272_main(["--in-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "o"),
                            "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("[done] {")
    assert json.loads(out[len("[done] ") :])["count"] == 0


def test_verify_takes_the_evaluate_commands_options_under_the_zoo_names():
    for command, prefix in ((evaluate_hml263, "hml263"), (evaluate_ms272, "ms272")):
        clones = zoo_options(command, prefix)
        assert clones and all(o.opts[0].startswith(f"--{prefix}-") for o in clones)
        by_name = {p.name: p for p in command.params}
        for clone in clones:
            source = next(p for p in by_name.values() if clone.opts[0] in p.opts)
            assert clone.default == source.default and clone.type is source.type
            assert len(clone.opts) == 1 and clone.name == clone.opts[0][2:].replace("-", "_")
    # and mogents evaluate takes the zoo's spellings too
    ctx = evaluate_ms272.make_context("ms272", ["--ms272-pred", "P", "--ms272-batch-size", "4"])
    assert (ctx.params["pred_dir"], ctx.params["batch_size"]) == ("P", 4)


def test_checkpoint_script_takes_both_spellings_with_the_same_defaults():
    underscore = convert.make_context("c", ["--out_dir", "o", "--weights_root", "w",
                                            "--vq_ckpt_name", "v.tar", "--no_clip"])  # fmt: skip
    hyphen = convert.make_context("c", ["--out-dir", "o", "--weights-root", "w",
                                        "--vq-ckpt-name", "v.tar", "--no-clip"])  # fmt: skip
    assert underscore.params == hyphen.params
    assert underscore.params["length_root"] == "checkpoints"
    assert underscore.params["mask_ckpt_name"] == "net_best_fid.tar"


@pytest.mark.parametrize(
    "script",
    ["hml263_to_smpl_ik.py", "convert_motion135_to_h3d272.py", "verify_evaluators.py",
     "convert_mogents_checkpoint.py", "mogents_t2m_h3d263.py"],
)  # fmt: skip
def test_scripts_are_thin_wrappers_without_argparse(script):
    text = (REPO_ROOT / "scripts" / script).read_text()
    assert "argparse" not in text and "click.option" not in text
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Usage: {script} [OPTIONS]")


def test_no_argparse_in_the_job_front_ends():
    for name in ("bridge", "evaluate", "convert", "split_generation", "_common"):
        text = (REPO_ROOT / "hftrainer_mogents" / "cli" / f"{name}.py").read_text()
        assert "import argparse" not in text, name


def test_split_generation_script_takes_both_spellings_with_the_zoo_defaults():
    from hftrainer_mogents.cli.split_generation import GENERATION_SCRIPT
    from hftrainer_mogents.generation_config import GenerationConfig

    under = GENERATION_SCRIPT.call(
        ["--out_dir", "o", "--time_steps", "4", "--res_cond_scale", "3", "--gumbel_sample",
         "--mm_samples", "2", "--skip_existing", "--caption_selection", "random"]
    )  # fmt: skip
    hyphen = GENERATION_SCRIPT.call(
        ["--out-dir", "o", "--time-steps", "4", "--res-cond-scale", "3", "--gumbel-sample",
         "--mm-samples", "2", "--skip-existing", "--caption-selection", "random"]
    )  # fmt: skip
    assert under == hyphen
    assert under["generation_config"] == GenerationConfig(
        time_steps=4, res_cond_scale=3.0, gumbel_sample=True
    )
    defaults = GENERATION_SCRIPT.call(["--out_dir", "o"])
    assert defaults["generation_config"] == GenerationConfig()
    assert (defaults["data_root"], defaults["batch_size"], defaults["seed"]) == (
        "dataset/HumanML3D",
        32,
        0,
    )
    assert (defaults["mm_samples"], defaults["mm_repeats"], defaults["anno_output_fps"]) == (
        None,
        30,
        20.0,
    )
    assert GENERATION_SCRIPT.call(["--out_dir", "o", "--time_steps", "0"]) == 2
    assert GENERATION_SCRIPT.call([]) == 2  # --out_dir is required


def test_a_script_usage_error_names_the_flag(tmp_path, capsys):
    """A bad setting refused inside the command (IKConfig's check) is a usage error naming the
    zoo's flag in the script too, not the bare error of the library."""
    from hftrainer_mogents.cli.bridge import ik_main

    (tmp_path / "in").mkdir()
    status = ik_main(["--in-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"),
                      "--refine-lr", "nan"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and "--refine-lr" in err and "finite" in err
    assert not (tmp_path / "out").exists()
