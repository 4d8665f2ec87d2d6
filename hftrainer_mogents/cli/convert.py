"""The converters' front-ends: ``mogents convert`` (also ``scripts/convert_mogents_checkpoint.py``),
``mogents convert-evaluator``, ``mogents convert-evaluator-ms272``, and the SMPL model conversion
``mogents convert-smpl-model SRC.pkl DST.npz`` (:func:`smpl_model_main` runs it from Python;
``python -m hftrainer_mogents.convert.smpl_model`` is gone: it made convert/ import cli/).

``scripts/convert_mogents_checkpoint.py`` runs ``mogents convert`` under its own name: the
command's flags are the zoo's underscore spellings with the hyphenated ones as extra names, and
its defaults are the zoo's."""

from __future__ import annotations

from collections.abc import Sequence

import click

from hftrainer_mogents.cli._common import Script, user_errors

__all__ = [
    "convert",
    "convert_evaluator",
    "convert_evaluator_ms272",
    "convert_smpl_model",
    "SMPL_MODEL_SCRIPT",
    "build_smpl_model_parser",
    "smpl_model_main",
]


@click.command()
@click.option(
    "--weights_root",
    "--weights-root",
    "weights_root",
    type=click.Path(file_okay=False),
    default="logs",
    show_default=True,
    help="Folder holding <dataset>/pretrain_{vq,mtrans,rtrans}.",
)
@click.option(
    "--length_root",
    "--length-root",
    "length_root",
    type=click.Path(file_okay=False),
    default="checkpoints",
    show_default=True,
    help="Folder holding <dataset>/length_estimator/model/finest.tar.",
)
@click.option(
    "--out_dir",
    "--out-dir",
    "out_dir",
    type=click.Path(),
    required=True,
    help="Artifact folder to write.",
)
@click.option(
    "--dataset_name", "--dataset-name", "dataset_name", default="humanml3d", show_default=True
)
@click.option(
    "--vq_name",
    "--vq-name",
    "vq_name",
    default=None,
    help="Default: vq_name from the mtrans opt.txt.",
)
@click.option(
    "--mtrans_name", "--mtrans-name", "mtrans_name", default="pretrain_mtrans", show_default=True
)
@click.option(
    "--rtrans_name", "--rtrans-name", "rtrans_name", default="pretrain_rtrans", show_default=True
)
@click.option("--len_name", "--len-name", "len_name", default="length_estimator", show_default=True)
@click.option(
    "--vq_ckpt_name",
    "--vq-ckpt-name",
    "vq_ckpt_name",
    default="net_best_fid.tar",
    show_default=True,
)
@click.option(
    "--mask_ckpt_name",
    "--mask-ckpt-name",
    "mask_ckpt_name",
    default="net_best_fid.tar",
    show_default=True,
)
@click.option(
    "--res_ckpt_name",
    "--res-ckpt-name",
    "res_ckpt_name",
    default="net_best_fid.tar",
    show_default=True,
)
@click.option(
    "--len_ckpt_name", "--len-ckpt-name", "len_ckpt_name", default="finest.tar", show_default=True
)
@click.option(
    "--clip",
    "clip_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="OpenAI ViT-B-32.pt (TorchScript) or an OpenAI-layout state dict (.pt/.safetensors); default: ~/.cache/clip/ViT-B-32.pt.",
)
@click.option(
    "--no_length_estimator",
    "--no-length-estimator",
    "no_length_estimator",
    is_flag=True,
    help="Convert without the length estimator.",
)
@click.option(
    "--no_clip",
    "--no-clip",
    "no_clip",
    is_flag=True,
    help="The zoo's legacy export: write the artifact without clip.safetensors. This package "
    "generates with the artifact's own CLIP, so such an artifact does not load for generation.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out_dir.")
@click.option(
    "--verify", is_flag=True, help="Reload the artifact and prove it equal to the raw checkpoints."
)
@user_errors
def convert(
    weights_root: str,
    length_root: str,
    out_dir: str,
    dataset_name: str,
    vq_name: str | None,
    mtrans_name: str,
    rtrans_name: str,
    len_name: str,
    vq_ckpt_name: str,
    mask_ckpt_name: str,
    res_ckpt_name: str,
    len_ckpt_name: str,
    clip_path: str | None,
    no_length_estimator: bool,
    no_clip: bool,
    overwrite: bool,
    verify: bool,
) -> None:
    """Convert the official MoGenTS checkpoints (+ CLIP) into a safetensors artifact."""
    from pathlib import Path

    from hftrainer_mogents.convert.official import (
        OfficialLayout,
        convert_official,
        format_verify_table,
    )

    layout = OfficialLayout(
        weights_root=Path(weights_root),
        length_root=Path(length_root),
        dataset_name=dataset_name,
        vq_name=vq_name,
        mtrans_name=mtrans_name,
        rtrans_name=rtrans_name,
        len_name=len_name,
        vq_ckpt_name=vq_ckpt_name,
        mask_ckpt_name=mask_ckpt_name,
        res_ckpt_name=res_ckpt_name,
        len_ckpt_name=len_ckpt_name,
    )
    try:
        result = convert_official(
            layout,
            out_dir,
            clip=clip_path,
            load_length_estimator=not no_length_estimator,
            overwrite=overwrite,
            verify=verify,
            include_clip=not no_clip,
        )
    except FileExistsError as err:
        raise click.ClickException(f"{err} (pass --overwrite)") from err
    click.echo(f"wrote {result.out_dir}: {', '.join(result.files)}")
    if verify:
        click.echo(format_verify_table(result.verify))
        if not result.verified:
            raise click.ClickException(
                "verification failed: the artifact differs from the checkpoints"
            )
        click.echo("verified: every tensor and every module output equals the raw checkpoints")


@click.command("convert-evaluator")
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False),
    default="checkpoints",
    show_default=True,
    help="Folder holding t2m/Comp_v6_KLD005 and t2m/text_mot_match (the official evaluator zip).",
)
@click.option(
    "--glove",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of our_vab_*.{npy,pkl} [default: <checkpoints>/glove, then ./glove beside it].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder [default: <checkpoints>/evaluators/hml263].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@user_errors
def convert_evaluator(
    checkpoints: str, glove: str | None, out: str | None, overwrite: bool
) -> None:
    """Convert the HumanML3D-263 evaluator (weights, mean/std, GloVe) to safetensors/npy/json."""
    from hftrainer_mogents.convert.evaluator_hml263 import convert_hml263_evaluator

    try:
        path = convert_hml263_evaluator(checkpoints, out, glove_dir=glove, overwrite=overwrite)
    except FileExistsError as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(path))


@click.command("convert-evaluator-ms272")
@click.option(
    "--ckpt",
    required=True,
    type=click.Path(dir_okay=False),
    help="MotionStreamer's Evaluator_272/epoch=99.ckpt (Lightning).",
)
@click.option(
    "--out-dir",
    default="checkpoints/evaluators/ms272",
    show_default=True,
    type=click.Path(file_okay=False),
)
@click.option(
    "--text-model",
    default="distilbert-base-uncased",
    show_default=True,
    help="DistilBERT folder or hub id (tokenizer and config are stored in the output).",
)
@click.option(
    "--mean-std",
    type=click.Path(file_okay=False),
    default=None,
    help="humanml3d_272/mean_std (Mean.npy, Std.npy) to store with the evaluator.",
)
@click.option(
    "--num-heads",
    type=int,
    default=4,
    show_default=True,
    help="Attention heads (not in the checkpoint).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.option("--local-files-only", is_flag=True, help="Do not reach the hub for --text-model.")
@user_errors
def convert_evaluator_ms272(
    ckpt: str,
    out_dir: str,
    text_model: str,
    mean_std: str | None,
    num_heads: int,
    overwrite: bool,
    local_files_only: bool,
) -> None:
    """Convert MotionStreamer's 272 evaluator checkpoint once, safely, to safetensors."""
    from hftrainer_mogents.convert.evaluator_ms272 import convert_ms272_evaluator

    out = convert_ms272_evaluator(
        ckpt,
        out_dir,
        text_model=text_model,
        mean_std=mean_std,
        num_heads=num_heads,
        overwrite=overwrite,
        local_files_only=local_files_only,
    )
    click.echo(f"written {out}")


@click.command("convert-smpl-model")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@user_errors
def convert_smpl_model(src: str, dst: str) -> None:
    """Convert an official SMPL .pkl (chumpy) to a plain .npz, without chumpy or pickled code.

    SRC is e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl, DST e.g.
    body_models/SMPL_NEUTRAL.npz (what --model-dir of the bridge reads).
    """
    click.echo(_convert_smpl_model(src, dst))


def _convert_smpl_model(src: str, dst: str) -> str:
    from hftrainer_mogents.convert.smpl_model import convert_smpl_pickle

    arrays = convert_smpl_pickle(src, dst)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
    return f"wrote {dst}: {shapes}"


#: ``mogents convert-smpl-model`` as a script (:func:`smpl_model_main`).
SMPL_MODEL_SCRIPT = Script(convert_smpl_model, "mogents convert-smpl-model")


def build_smpl_model_parser() -> Script:
    """``mogents convert-smpl-model`` as a script: :data:`SMPL_MODEL_SCRIPT`."""
    return SMPL_MODEL_SCRIPT


def smpl_model_main(argv: Sequence[str] | None = None) -> int:
    """``mogents convert-smpl-model SRC.pkl DST.npz`` from Python (``argv``); prints the arrays
    written. Returns the exit status."""
    return SMPL_MODEL_SCRIPT.main(argv)
