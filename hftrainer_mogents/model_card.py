"""The model card (hub ``README.md``) of an artifact, rendered from
``artifacts/model_card_template.md`` (shipped in the package as ``data/model_card_template.md``)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

from hftrainer_mogents import artifact
from hftrainer_mogents._version import __version__
from hftrainer_mogents.config import FORMAT, MAX_MOTION_LENGTH, MIN_MOTION_LENGTH

__all__ = ["render_model_card", "template_text"]

_DESCRIPTIONS = {
    "vq": "dual-stream residual VQ-VAE (aux 1D + ts 2D streams)",
    "mask_aux": "1D mask transformer (base tokens, aux stream)",
    "mask_ts": "2D mask transformer (base tokens, spatial-temporal grid)",
    "res_aux": "1D residual transformer (quantizer layers 1..Q-1)",
    "res_ts": "2D residual transformer",
    "length_estimator": "length estimator (CLIP feature -> token length)",
    "clip": "CLIP ViT-B/32 (OpenAI key layout, stored once)",
}


def template_text() -> str:
    """The template's text."""
    return (resources.files("hftrainer_mogents") / "data" / "model_card_template.md").read_text(
        encoding="utf-8"
    )


def render_model_card(
    bundle: Any,
    *,
    repo_id: str = artifact.DEFAULT_REPO_ID,
    title: str | None = None,
    dataset: str | None = None,
    evaluation: str | None = None,
    finetune: Mapping[str, Any] | None = None,
) -> str:
    """Fill the template with the bundle's configuration and parameter counts.

    Args:
        bundle: a :class:`~hftrainer_mogents.bundle.MoGenTSBundle`.
        repo_id: the hub repo the card is for.
        title: heading (default: derived from the repo id).
        dataset: training dataset name (default: the VQ config's).
        evaluation: markdown for the evaluation section (default: a pointer to the evaluator).
        finetune: a fine-tuned artifact's provenance (its ``finetune.json``): appends the
            Fine-tuning section (:func:`finetune_section`).
    """
    config = bundle.config
    files = [
        f"| `{artifact.COMPONENT_FILES[name]}` | {_DESCRIPTIONS[name]} |"
        for name, _ in bundle.components()
    ]
    files += [
        f"| `{artifact.MEAN_NAME}`, `{artifact.STD_NAME}` | (263,) float32 normalisation statistics |",
        f"| `{artifact.CONFIG_NAME}`, `{artifact.INDEX_NAME}` | configuration, file map, checksums |",
    ]
    params = [
        f"| {name} | {sum(p.numel() for p in module.parameters()):,} |"
        for name, module in bundle.components()
    ]
    vq = config.vq
    fields = {
        "title": title or repo_id.split("/")[-1],
        "dataset": dataset or vq.dataset_name,
        "repo_id": repo_id,
        "min_frames": MIN_MOTION_LENGTH,
        "max_frames": MAX_MOTION_LENGTH,
        "format": FORMAT,
        "library_version": __version__,
        "file_table": "\n".join(files),
        "param_table": "\n".join(params),
        "vq_summary": (
            f"aux codebook {vq.nb_code1d} x {vq.code_dim1d}, ts codebook {vq.nb_code2d} x "
            f"{vq.code_dim2d}, {vq.num_quantizers} quantizer layers, width {vq.width}"
        ),
        "transformer_summary": (
            f"{config.mask.n_layers} layers, width {config.mask.latent_dim}, "
            f"{config.mask.n_heads} heads (mask); {config.res.n_layers} layers, width "
            f"{config.res.latent_dim} (residual)"
        ),
        "clip_version": config.clip_version,
        "clip_dtype": config.text_encoder.dtype,
        "evaluation": evaluation
        or (
            "Scores on the HumanML3D test protocol come from `mogents evaluate hml263`; the "
            "paper's published numbers are not a regression target for this conversion."
        ),
    }
    card = template_text().format(**fields)
    if finetune is not None:
        card += finetune_section(finetune)
    return card


def finetune_section(record: Mapping[str, Any]) -> str:
    """The model card's Fine-tuning section (markdown) of a provenance record.

    Args:
        record: ``base_artifact``, ``data``, ``stage``, ``steps``, ``seed``, ``mode``,
            ``checkpoint`` (missing ones read ``unknown``).
    """
    rows = [
        ("base artifact", "base_artifact"),
        ("training data", "data"),
        ("stage", "stage"),
        ("steps", "steps"),
        ("seed", "seed"),
        ("draws", "mode"),
        ("checkpoint", "checkpoint"),
    ]
    table = "\n".join(
        f"| {name} | `{'unknown' if record.get(key) is None else record[key]}` |"
        for name, key in rows
    )
    return (
        "\n## Fine-tuning\n\n"
        "Fine-tuned with `mogents finetune` (hftrainer host runner); the networks outside the "
        "stage are the base artifact's.\n\n| | |\n|---|---|\n" + table + "\n"
    )
