"""``HumanML263Evaluator``: the HumanML3D-263 text-to-motion evaluator and its test protocol.

A converted evaluator folder (``mogents convert-evaluator``) holds::

    evaluator_config.json   format, sizes, sha256 checksums, where it was converted from
    evaluator.safetensors   movement_encoder.* / text_encoder.* / motion_encoder.* weights
    mean.npy, std.npy       (263,) float32 normalisation of the evaluator
    glove_vectors.npy       (V, 300) float32 word vectors
    glove_vocab.json        {"word_to_row": {word: row}}

Nothing is unpickled at run time.

Motions are given in physical units (raw HumanML3D-263 features) and normalised here with the
evaluator's mean and std. A crop of ``m`` frames is zero-padded after its end, as the reference
pads every motion to 196 frames (only the two frames after the end reach the last movement step,
so padding to ``m + 4`` gives the same embedding); the 4 foot-contact channels are dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.config import DIM_POSE, floor_to_unit
from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    InvalidInputError,
)
from hftrainer_mogents.evaluation import metrics
from hftrainer_mogents.evaluation.hml263.dataset import (
    HumanML3DTestSplit,
    legacy_subclip_aliases,
    read_test_split,
)
from hftrainer_mogents.evaluation.hml263.draws import RepeatDraws, draw_repeat
from hftrainer_mogents.evaluation.hml263.networks import (
    HML263EvaluatorConfig,
    HML263EvaluatorNetworks,
)
from hftrainer_mogents.evaluation.hml263.published import PUBLISHED_HML263
from hftrainer_mogents.evaluation.hml263.word_vectors import (
    VECTORS_FILE,
    VOCAB_FILE,
    WordVectorizer,
)
from hftrainer_mogents.host_compat import HostEvaluatorMixin, flatten_metrics
from hftrainer_mogents.utils.device import resolve_device
from hftrainer_mogents.utils.io import (
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_json,
    check_checksums,
    checksum_map,
    is_temporary,
    load_safetensors,
    load_state_dict_strict,
    read_json,
    save_safetensors,
)
from hftrainer_mogents.utils.precision import full_fp32

__all__ = [
    "EVALUATOR_NAME",
    "FORMAT",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "MEAN_FILE",
    "STD_FILE",
    "MANIFEST_FILE",
    "MM_DIR",
    "PUBLISHED",
    "HumanML263Evaluator",
    "collect_predictions",
    "default_cache_dir",
]

logger = logging.getLogger(__name__)

EVALUATOR_NAME = "hml263"
ZOO_EVALUATOR_NAME = "humanml3d_263"  # config.evaluator in the zoo's verify_hml263.json
CAPTION_PROTOCOL_NOTE = (
    "Semantic metrics (R-precision, matching score) compare each prediction with the caption it "
    "was generated from (generation.json, else the first caption of the item); texts_dir must "
    "hold the captions the predictions were generated from."
)
FORMAT = "hftrainer-mogents-hml263-evaluator-v1"
CONFIG_FILE = "evaluator_config.json"
WEIGHTS_FILE = "evaluator.safetensors"
MEAN_FILE = "mean.npy"
STD_FILE = "std.npy"
MANIFEST_FILE = "generation.json"  # written by the test-split generation beside the predictions
MM_DIR = "mm"  # <pred_dir>/mm/<key>__r<k>.npy: repeated generations for multimodality
MM_SEPARATOR = "__r"

# MoGenTS' published numbers, declared once with its zoo benchmark (lists here, as JSON has them)
PUBLISHED: dict[str, Any] = {
    k: list(v) if isinstance(v, tuple) else v for k, v in PUBLISHED_HML263.items()
}


class _Predictions:
    """Predicted motions by key, from arrays or ``.npy`` paths, checked before any compute."""

    def __init__(self, items: Mapping[str, Any], unit_length: int):
        self.items = dict(items)
        self.lengths: dict[str, int] = {}
        for key, value in self.items.items():
            shape = self._shape(key, value)
            if len(shape) != 2 or shape[1] != DIM_POSE or shape[0] < unit_length:
                raise ArtifactFormatError(
                    f"prediction {self._name(key, value)}: shape {tuple(shape)}, expected "
                    f"(T, {DIM_POSE}) raw HumanML3D-263 features with T >= {unit_length}"
                )
            self.lengths[key] = int(shape[0])

    @staticmethod
    def _name(key: str, value: Any) -> str:
        return str(value) if isinstance(value, (str, os.PathLike)) else repr(key)

    def _shape(self, key: str, value: Any) -> tuple[int, ...]:
        if isinstance(value, (str, os.PathLike)):
            try:
                return np.load(value, mmap_mode="r", allow_pickle=False).shape
            except (ValueError, OSError) as err:
                raise ArtifactFormatError(f"prediction {value}: unreadable .npy ({err})") from err
        return np.shape(value)

    def load(self, key: str) -> np.ndarray:
        value = self.items[key]
        if isinstance(value, (str, os.PathLike)):
            value = np.load(value, allow_pickle=False)
        motion = np.asarray(value, dtype=np.float32)
        if not np.isfinite(motion).all():
            raise ArtifactFormatError(
                f"prediction {self._name(key, self.items[key])} holds NaN or inf values"
            )
        return motion


def collect_predictions(pred_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """``<key>.npy`` files of a prediction folder, by key (temporary files skipped)."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise ArtifactNotFoundError(
            f"prediction folder {pred_dir} does not exist; generate it first "
            "(scripts/mogents_t2m_h3d263.py --out_dir ...)"
        )
    return {
        p.stem: p for p in sorted(pred_dir.glob("*.npy")) if p.is_file() and not is_temporary(p)
    }


def _collect_mm(pred_dir: Path) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    mm_dir = pred_dir / MM_DIR
    if not mm_dir.is_dir():
        return groups
    for path in sorted(mm_dir.glob(f"*{MM_SEPARATOR}*.npy")):
        if is_temporary(path):
            continue
        key = path.stem.rsplit(MM_SEPARATOR, 1)[0]
        groups.setdefault(key, []).append(path)
    return groups


def _rename_legacy_keys(
    split: HumanML3DTestSplit,
    predictions: Mapping[str, Any],
    mm_predictions: Mapping[str, Any] | None,
    caption_indices: Mapping[str, int] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, int] | None]:
    """Map sub-clip names of folders written before the zoo's naming (``<id>__L<line>``) to
    ``<id>__sub<k>``, in the predictions, the multimodality groups and the caption indices."""
    aliases = legacy_subclip_aliases(split.entries)
    old = [k for k in predictions if k in aliases]
    if not old:
        return (
            dict(predictions),
            None if mm_predictions is None else dict(mm_predictions),
            (None if caption_indices is None else dict(caption_indices)),
        )
    logger.warning(
        "%d predictions use the old sub-clip names <id>__L<line>; scoring them as the zoo's "
        "<id>__sub<k> (regenerate, or rename the files, to silence this)",
        len(old),
    )

    def rename(table: Mapping[str, Any] | None) -> Any:
        return None if table is None else {aliases.get(k, k): v for k, v in table.items()}

    return rename(predictions), rename(mm_predictions), rename(caption_indices)


def _with_std(
    summary: Mapping[str, dict[str, Any]], repeats: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{"mean", "std", "conf"}`` per metric: the zoo's population standard deviation over the
    passes (``numpy.std``) beside our 95% half-width."""
    out: dict[str, dict[str, Any]] = {}
    for key, stat in summary.items():
        values = np.asarray([rep[key] for rep in repeats], dtype=np.float64)
        std = values.std(axis=0)
        out[key] = {
            "mean": stat["mean"],
            "std": std.tolist() if values.ndim > 1 else float(std),
            "conf": stat["conf"],
        }
    return out


def default_cache_dir() -> Path:
    """Where the command-line tools keep the real-motion embedding cache:
    ``$HFTRAINER_MOGENTS_CACHE/hml263``, else ``$XDG_CACHE_HOME/hftrainer_mogents/hml263``, else
    ``~/.cache/hftrainer_mogents/hml263``."""
    root = os.environ.get("HFTRAINER_MOGENTS_CACHE")
    if root:
        return Path(root) / EVALUATOR_NAME
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "hftrainer_mogents" / EVALUATOR_NAME


def _load_embedding_cache(path: Path | None) -> dict[str, np.ndarray]:
    """Embeddings by crop name from a cache file (empty when absent or unreadable)."""
    if path is None or not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["names"].tolist(), data["embeddings"]))
    except (ValueError, KeyError, OSError) as err:
        logger.warning("ignoring the unreadable embedding cache %s (%s)", path, err)
        return {}


def _save_embedding_cache(path: Path, table: Mapping[str, np.ndarray]) -> None:
    names = sorted(table)
    atomic_save_npz(path, names=np.array(names), embeddings=np.stack([table[n] for n in names]))


class HumanML263Evaluator(HostEvaluatorMixin):
    """HumanML3D-263 text-to-motion evaluator (Guo et al., 2022) with the official protocol.

    Built from its parts, or (as the hftrainer host builds evaluators from a config dict,
    ``EVALUATORS.build(dict(type="HumanML263Evaluator", ckpt_dir=..., dataset_root=...))``) from a
    converted evaluator folder. It serves the host runner's ``reset()`` / ``process(output)`` /
    ``compute()`` loop (see :meth:`compute`).

    Args:
        networks: the three evaluator networks (weights loaded); None with ``ckpt_dir``.
        word_vectorizer: GloVe vectors and POS classes.
        mean: ``(263,)`` normalisation mean.
        std: ``(263,)`` normalisation std.
        dataset_root: default HumanML3D folder of :meth:`evaluate_dir` and :meth:`compute`.
        source: where the weights came from (recorded in reports).
        ckpt_dir: a converted evaluator folder to load instead of the parts (the zoo's keyword).
        device, dtype: where and in which dtype to load ``ckpt_dir``.
        evaluate_kwargs: keyword arguments of :meth:`evaluate` used by :meth:`compute`
            (``n_repeats``, ``seed``, ...).

    Examples:
        >>> ev = HumanML263Evaluator.from_pretrained("checkpoints/evaluators/hml263")  # doctest: +SKIP
        >>> ev.encode_text(["a/DET person/NOUN walk/VERB forward/ADV"]).shape  # doctest: +SKIP
        (1, 512)
        >>> report = ev.evaluate_dir("outputs/pred263", dataset_root="dataset/HumanML3D", seed=0)  # doctest: +SKIP
    """

    name = EVALUATOR_NAME

    def __init__(
        self,
        networks: HML263EvaluatorNetworks | None = None,
        word_vectorizer: WordVectorizer | None = None,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        *,
        dataset_root: str | os.PathLike[str] | None = None,
        source: str | None = None,
        ckpt_dir: str | os.PathLike[str] | None = None,
        device: Any = None,
        dtype: Any = None,
        evaluate_kwargs: Mapping[str, Any] | None = None,
    ):
        self.reset()
        self.evaluate_kwargs: dict[str, Any] = dict(evaluate_kwargs or {})
        if networks is None or word_vectorizer is None or mean is None or std is None:
            self._load_parts(ckpt_dir, device=device, dtype=dtype, dataset_root=dataset_root)
            return
        self.networks = networks.eval()
        self.config: HML263EvaluatorConfig = networks.config
        self.word_vectorizer = word_vectorizer
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != (self.config.dim_pose,) or self.std.shape != self.mean.shape:
            raise ArtifactFormatError(
                f"mean/std must be ({self.config.dim_pose},), got {self.mean.shape} and "
                f"{self.std.shape}"
            )
        if not (np.isfinite(self.std).all() and (self.std > 0).all()):
            raise ArtifactFormatError("std has zero, negative or non-finite entries")
        if word_vectorizer.dim_word != self.config.dim_word:
            raise ArtifactFormatError(
                f"word vectors are {word_vectorizer.dim_word}-d, the text encoder expects "
                f"{self.config.dim_word}"
            )
        self.dataset_root = Path(dataset_root) if dataset_root is not None else None
        self.source = source

    # ------------------------------------------------------------------ loading and saving

    @property
    def device(self) -> Any:
        """Device of the networks."""
        return next(self.networks.parameters()).device

    @property
    def dtype(self) -> Any:
        """Floating dtype of the networks."""
        return next(self.networks.parameters()).dtype

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        device: Any = None,
        dtype: Any = None,
        dataset_root: str | os.PathLike[str] | None = None,
        verify_checksums: bool = True,
    ) -> HumanML263Evaluator:
        """Load a converted evaluator folder (safetensors, npy and json only).

        Args:
            path: the folder written by ``mogents convert-evaluator``.
            device: torch device (default: CUDA when available, else CPU).
            dtype: network dtype (default float32, the reference; ``torch.bfloat16`` is faster on
                CPUs and GPUs with bf16 units and drifts slightly, see ``scripts/bench_eval.py``).
            dataset_root: default HumanML3D folder of :meth:`evaluate_dir`.
            verify_checksums: check the sha256 of every file listed in the config.

        Raises:
            ArtifactNotFoundError: the folder or a file is missing.
            ArtifactFormatError: a file is malformed or the weights do not fit.
            ChecksumMismatchError: a file's sha256 differs from the recorded one.
        """
        import torch

        path = Path(path)
        config_path = path / CONFIG_FILE
        if not config_path.is_file():
            raise ArtifactNotFoundError(
                f"{config_path} not found: {path} is not a converted HumanML3D-263 evaluator; "
                "run `mogents convert-evaluator --checkpoints <checkpoints>` first"
            )
        meta = read_json(config_path)
        if meta.get("format") != FORMAT:
            raise ArtifactFormatError(
                f"{config_path}: format {meta.get('format')!r}, expected {FORMAT!r}"
            )
        for name in (WEIGHTS_FILE, MEAN_FILE, STD_FILE, VECTORS_FILE, VOCAB_FILE):
            if not (path / name).is_file():
                raise ArtifactNotFoundError(f"{path / name} missing; re-run the conversion")
        if verify_checksums:
            check_checksums(
                path,
                meta.get("checksums", {}),
                recorded_in=CONFIG_FILE,
                remedy="re-run the conversion (`mogents convert-evaluator`)",
            )
        config = HML263EvaluatorConfig.from_dict(meta.get("config"), name="evaluator config")
        networks = HML263EvaluatorNetworks(config)
        weights = path / WEIGHTS_FILE
        load_state_dict_strict(networks, load_safetensors(weights), source=str(weights))
        networks.to(device=resolve_device(device), dtype=dtype or torch.float32)
        mean = np.load(path / MEAN_FILE, allow_pickle=False)
        std = np.load(path / STD_FILE, allow_pickle=False)
        return cls(
            networks,
            WordVectorizer.from_dir(path),
            mean,
            std,
            dataset_root=dataset_root,
            source=str(path),
        )

    def save_pretrained(
        self, path: str | os.PathLike[str], *, provenance: Mapping[str, Any] | None = None
    ) -> Path:
        """Write the evaluator folder (see the module doc) with sha256 checksums.

        Args:
            path: target folder (created; files replaced atomically).
            provenance: recorded under ``"source"`` in the config.

        Returns:
            The folder.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"{path} is a file; save_pretrained needs a folder")
        path.mkdir(parents=True, exist_ok=True)
        save_safetensors(
            path / WEIGHTS_FILE, self.networks.state_dict(), metadata={"format": FORMAT}
        )
        atomic_save_npy(path / MEAN_FILE, self.mean)
        atomic_save_npy(path / STD_FILE, self.std)
        self.word_vectorizer.save(path)
        files = (WEIGHTS_FILE, MEAN_FILE, STD_FILE, VECTORS_FILE, VOCAB_FILE)
        atomic_write_json(
            path / CONFIG_FILE,
            {
                "format": FORMAT,
                "evaluator": EVALUATOR_NAME,
                "config": self.config.to_dict(),
                "checksums": checksum_map(path, files),
                "source": dict(provenance or {}),
            },
        )
        return path

    # ------------------------------------------------------------------ encoding

    def encode_text(
        self, captions: Sequence[str | Sequence[str]], *, batch_size: int = 1024
    ) -> np.ndarray:
        """Embed captions given as HumanML3D tokens.

        Args:
            captions: ``B`` captions, each ``"w/POS w/POS ..."`` or a list of ``"w/POS"`` tokens.
            batch_size: captions per forward pass (the result does not depend on it).

        Returns:
            ``(B, D)`` float32 text embeddings, in input order.
        """
        import torch

        if isinstance(captions, str):
            raise InvalidInputError("encode_text takes a list of captions, got one string")
        word_embs, pos_onehot, lens = self.word_vectorizer.encode(
            captions, self.config.max_text_len
        )
        out = np.empty((len(captions), self.config.dim_coemb_hidden), dtype=np.float32)
        device, dtype = self.device, self.dtype
        with torch.inference_mode(), full_fp32():
            for lo in range(0, len(captions), batch_size):
                sl = slice(lo, lo + batch_size)
                emb = self.networks.encode_text(
                    torch.from_numpy(word_embs[sl]).to(device, dtype),
                    torch.from_numpy(pos_onehot[sl]).to(device, dtype),
                    torch.from_numpy(lens[sl]),
                )
                out[sl] = emb.float().cpu().numpy()
        return out

    def normalize(self, motion: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` in float32. Args: motion ``(..., 263)``. Returns the same shape."""
        return (np.asarray(motion, dtype=np.float32) - self.mean) / self.std

    def encode_motion(
        self,
        motions: Sequence[np.ndarray] | np.ndarray,
        lengths: Sequence[int] | np.ndarray | None = None,
        *,
        normalized: bool = False,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Embed motions.

        Each motion is cut to its length floored to a multiple of ``unit_length`` (4), normalised
        (unless ``normalized``) and zero-padded after its end.

        Args:
            motions: ``B`` arrays ``(T_i, 263)``, or one ``(B, T, 263)`` array; raw features.
            lengths: ``(B,)`` frames to use of each (default ``T_i``).
            normalized: the motions are already normalised with this evaluator's mean/std.
            batch_size: motions per forward pass, grouped by length (the result does not depend
                on it).

        Returns:
            ``(B, D)`` float32 motion embeddings, in input order.
        """
        if isinstance(motions, np.ndarray) and motions.ndim == 2:
            raise InvalidInputError("encode_motion takes a batch: a list or a (B, T, 263) array")
        items = list(motions)
        if lengths is None:
            lengths = [len(m) for m in items]
        lengths = np.asarray(lengths, dtype=np.int64)
        if len(lengths) != len(items):
            raise InvalidInputError(f"{len(items)} motions but {len(lengths)} lengths")
        unit = self.config.unit_length
        crops = []
        for i, (motion, length) in enumerate(zip(items, lengths)):
            motion = np.asarray(motion)
            if motion.ndim != 2 or motion.shape[1] != self.config.dim_pose:
                raise InvalidInputError(
                    f"motion {i} has shape {motion.shape}, expected (T, {self.config.dim_pose})"
                )
            if not unit <= length <= len(motion):
                raise InvalidInputError(
                    f"motion {i}: length {length} outside [{unit}, {len(motion)}] (its frames)"
                )
            crop = motion[: floor_to_unit(length, unit)]
            crops.append(crop.astype(np.float32) if normalized else self.normalize(crop))
        return self._encode_normalized(crops, batch_size=batch_size)

    def _encode_normalized(self, crops: Sequence[np.ndarray], *, batch_size: int) -> np.ndarray:
        """Embed normalised crops ``(m_i, 263)`` (``m_i`` multiples of the unit length).

        Crops of equal length are batched together (longest first), so no batch carries padding
        steps and the recurrent layers run on dense tensors.

        Returns:
            ``(len(crops), D)`` float32, in input order.
        """
        import torch

        lengths = np.array([len(c) for c in crops], dtype=np.int64)
        out = np.empty((len(crops), self.config.dim_coemb_hidden), dtype=np.float32)
        order = np.argsort(-lengths, kind="stable")
        # cut the length-sorted order where the length changes, and every batch_size items
        cuts = np.flatnonzero(np.diff(lengths[order])) + 1
        device, dtype = self.device, self.dtype
        with torch.inference_mode(), full_fp32():
            for group in np.split(order, cuts):
                for lo in range(0, len(group), batch_size):
                    chunk = group[lo : lo + batch_size]
                    m = int(lengths[chunk[0]])
                    # zero after the crop's end; 2 frames of it reach the last movement step
                    batch = np.zeros(
                        (len(chunk), m + 2 * self.config.unit_length, self.config.dim_pose),
                        dtype=np.float32,
                    )
                    batch[:, :m] = np.stack([crops[i] for i in chunk])  # (b, m, 263)
                    emb = self.networks.encode_motion(
                        torch.from_numpy(batch).to(device, dtype),
                        torch.full((len(chunk),), m, dtype=torch.int64, device=device),
                    )
                    out[chunk] = emb.float().cpu().numpy()
        return out

    # ------------------------------------------------------------------ the test protocol

    def evaluate(
        self,
        predictions: Mapping[str, np.ndarray | str | os.PathLike[str]] | None = None,
        *,
        dataset_root: str | os.PathLike[str] | None = None,
        split: HumanML3DTestSplit | None = None,
        mm_predictions: Mapping[str, Sequence[np.ndarray | str | os.PathLike[str]]] | None = None,
        caption_indices: Mapping[str, int] | None = None,
        caption_selection: str | None = None,
        n_repeats: int = metrics.N_REPEATS,
        seed: int = 0,
        batch_size: int = metrics.BATCH_SIZE,
        diversity_times: int | None = None,
        mm_times: int = metrics.MM_TIMES,
        strict: bool = False,
        max_samples: int | None = None,
        encode_batch_size: int = 128,
        fid_method: str = "eigh",
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        draws: Sequence[RepeatDraws] | None = None,
        diversity_indices: Sequence[Mapping[str, Any]] | None = None,
        texts_dir: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Run the test protocol: ``n_repeats`` passes of the shuffled test loader, each with
        fresh captions, crop lengths and crop starts, metrics per pass, mean and 95% CI.

        Args:
            predictions: generated motions by entry key (``<id>`` or ``<id>__sub<k>``, the zoo's
                names; the older ``<id>__L<line>`` names are mapped to them), arrays
                ``(T, 263)`` in physical units or ``.npy`` paths; ``None`` scores the real data
                only. Entries without a prediction are left out and counted.
            dataset_root: the HumanML3D folder (default: the one given at construction).
            split: an already read split (instead of ``dataset_root``).
            mm_predictions: for multimodality, repeated generations by key (same caption);
                ``None`` skips multimodality.
            caption_indices: the caption each prediction was generated from (index into the
                entry's captions; default 0).
            caption_selection: ``"generated"`` (score each prediction against its caption; the
                default with predictions) or ``"random"`` (a random caption per pass, the
                reference's choice; the default for real data only).
            n_repeats: passes (20 in the protocol).
            seed: seeds the passes (repeat ``r`` draws from ``default_rng([seed, r])``).
            batch_size: items per batch (R-precision ranks within a batch).
            diversity_times: pairs for diversity (default: 300 above 300 items, else 100).
            mm_times: pairs for multimodality.
            strict: raise when a prediction is missing instead of counting it.
            max_samples: use only the first ids of the split (quick runs).
            encode_batch_size: motions per forward pass (of equal length).
            fid_method: ``"eigh"`` or ``"sqrtm"`` (see ``metrics.frechet_distance``).
            cache_dir: keep the embeddings of the real-motion crops here and reuse them: they
                depend only on the evaluator, the dataset and the crops, not on the model, so a
                second evaluation encodes only the generated motions. The cache file is keyed by
                the weights, mean/std, dtype, device type and the dataset's entries and file
                sizes and times.
            progress: show a progress bar.
            draws: recorded passes to replay instead of random ones (indices refer to the
                entries that have predictions, in split order); sets ``n_repeats``.
            diversity_indices: recorded diversity pairs per pass,
                ``{"real": (first, second), "pred": (first, second)}``.
            texts_dir: the captions (``<id>.txt``) instead of ``<dataset_root>/texts``.

        Returns:
            A JSON-ready dict: ``fid``, ``r_precision`` (top-1/2/3), ``matching_score``,
            ``diversity``, ``multimodality`` (each ``{"mean", "std", "conf"}``: the zoo's mean and
            standard deviation over the passes, and the 95% half-width), their ``*_real``
            counterparts, ``mode``, ``n_repeats``, ``n_samples`` (items scored, before the last
            partial batch is dropped: the zoo's key), ``n_samples_used`` (per pass),
            ``skipped_no_pred``, ``skipped``, ``unmatched_predictions`` (predictions named after
            no test item), ``repeats`` and ``config`` (the zoo's keys among ours).

        Raises:
            ArtifactNotFoundError: no dataset, or (``strict``) a missing prediction.
            ArtifactFormatError: a prediction with a wrong shape or NaN (the file is named).
        """
        if split is None:
            root = dataset_root if dataset_root is not None else self.dataset_root
            if root is None:
                raise InvalidInputError(
                    "no HumanML3D folder: pass dataset_root= (or give it to from_pretrained)"
                )
            split = read_test_split(root, max_samples=max_samples, texts_dir=texts_dir)
        mode = "gt-only" if predictions is None else "pred"
        if predictions is not None:
            predictions, mm_predictions, caption_indices = _rename_legacy_keys(
                split, predictions, mm_predictions, caption_indices
            )
        if caption_selection is None:
            caption_selection = "random" if predictions is None else "generated"
        if caption_selection not in ("random", "generated"):
            raise InvalidInputError(
                f"caption_selection must be 'random' or 'generated', got {caption_selection!r}"
            )

        # 1. Which entries have predictions
        missing: list[str] = []
        preds = None
        entries = list(split.entries)
        if predictions is not None:
            missing = [e.key for e in entries if e.key not in predictions]
            if strict and missing:
                raise ArtifactNotFoundError(
                    f"{len(missing)} of {len(entries)} test items have no prediction (first: "
                    f"{missing[:5]}); generate them (--skip-existing resumes) or drop --strict"
                )
            entries = [e for e in entries if e.key in predictions]
            if not entries:
                raise ArtifactNotFoundError(
                    f"none of the {len(split.entries)} test items has a prediction; are the "
                    "prediction files named <id>.npy / <id>__sub<k>.npy?"
                )
            preds = _Predictions(
                {e.key: predictions[e.key] for e in entries}, self.config.unit_length
            )
            if missing:
                logger.warning("%d test items have no prediction and are left out", len(missing))

        # 2. Draw every pass up front
        lengths = np.array([e.length for e in entries], dtype=np.int64)
        n_caps = np.array([len(e.captions) for e in entries], dtype=np.int64)
        fixed = None
        if caption_selection == "generated":
            indices = dict(caption_indices or {})
            fixed = np.array([indices.get(e.key, 0) for e in entries], dtype=np.int64)
            bad = [e.key for e, c, n in zip(entries, fixed, n_caps) if not 0 <= c < n]
            if bad:
                raise InvalidInputError(f"caption index out of range for {bad[:5]}")
        if draws is not None:
            n_repeats = len(draws)
        rngs = [np.random.default_rng([seed, r]) for r in range(n_repeats)]
        n_used = (len(entries) // batch_size) * batch_size
        if diversity_times is None and 0 < n_used < metrics.default_diversity_times(n_used):
            # a small split: the protocol's pairs cannot all be distinct; use every sample
            logger.warning(
                "only %d samples per pass: diversity uses %d pairs instead of %d",
                n_used,
                n_used,
                metrics.default_diversity_times(n_used),
            )
            diversity_times = n_used
        draws = draws or [
            draw_repeat(
                rng,
                lengths,
                n_caps,
                batch_size=batch_size,
                unit_length=self.config.unit_length,
                fixed_captions=fixed,
            )
            for rng in rngs
        ]

        # 3. Embed every distinct caption and crop the passes need, once
        text_emb = self._embed_captions(entries, draws)
        real_emb = self._embed_real(split, entries, draws, encode_batch_size, progress, cache_dir)
        pred_emb = None
        if preds is not None:
            pred_emb = self._embed_pred(entries, preds, draws, encode_batch_size, progress)
        mm_act, mm_note = self._embed_mm(mm_predictions, encode_batch_size, mm_times)

        # 4. Metrics per pass, then mean and confidence interval
        repeats = []
        for r, (rng, d) in enumerate(zip(rngs, draws)):
            used = d.used
            key_text = list(zip(used.tolist(), d.caption[used].tolist()))
            key_real = list(zip(used.tolist(), d.start[used].tolist(), d.m_length[used].tolist()))
            out = metrics.embedding_metrics(
                np.stack([text_emb[k] for k in key_text]),
                np.stack([real_emb[k] for k in key_real]),
                None
                if pred_emb is None
                else np.stack([pred_emb[(i, m)] for i, m in zip(used, d.m_length[used])]),
                batch_size=batch_size,
                diversity_times=diversity_times,
                rng=rng,
                mm_activations=mm_act,
                mm_times=mm_times,
                fid_method=fid_method,
                diversity_indices=None if diversity_indices is None else diversity_indices[r],
            )
            out["repeat"] = r
            repeats.append(out)
        summary = _with_std(metrics.summarize_repeats(repeats), repeats)
        n_used = repeats[0]["n_samples"]
        result: dict[str, Any] = {
            "evaluator": EVALUATOR_NAME,
            "mode": mode,
            "n_repeats": n_repeats,
            "n_samples": len(entries),
            "n_entries": len(split.entries),
            "n_evaluated": len(entries),
            "n_samples_used": n_used,
        }
        for name in ("fid", "r_precision", "matching_score", "diversity", "multimodality"):
            result[name] = summary.get(name)
        for name in ("r_precision_real", "matching_score_real", "diversity_real"):
            result[name] = summary[name]
        if mm_note:
            result["multimodality_note"] = mm_note
        result["skipped_no_pred"] = len(missing)
        known = {e.key for e in split.entries}
        result["unmatched_predictions"] = (
            0 if predictions is None else sum(1 for k in predictions if k not in known)
        )
        result["skipped"] = {"no_prediction": missing, "dataset": dict(split.skipped)}
        result["repeats"] = repeats
        result["config"] = self._report_config(
            split,
            mode=mode,
            seed=seed,
            n_repeats=n_repeats,
            batch_size=batch_size,
            diversity_times=metrics.default_diversity_times(n_used)
            if diversity_times is None
            else diversity_times,
            mm_times=mm_times,
            caption_selection=caption_selection,
            fid_method=fid_method,
        )
        return result

    def evaluate_dir(
        self,
        pred_dir: str | os.PathLike[str] | None = None,
        *,
        dataset_root: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """:meth:`evaluate` on a folder of ``<key>.npy`` predictions (``(T, 263)``, physical
        units), with multimodality from ``<pred_dir>/mm/<key>__r<k>.npy`` when present and the
        caption of each prediction from ``<pred_dir>/generation.json`` when present (else the
        first caption). ``pred_dir=None`` scores the real data only.

        Args:
            pred_dir: the prediction folder.
            dataset_root: the HumanML3D folder (default: the one given at construction).
            kwargs: passed to :meth:`evaluate`.

        Returns:
            See :meth:`evaluate`; ``config.pred_dir`` names the folder.
        """
        if pred_dir is None:
            result = self.evaluate(None, dataset_root=dataset_root, **kwargs)
            result["config"]["pred_dir"] = None
            return result
        pred_dir = Path(pred_dir)
        predictions = collect_predictions(pred_dir)
        mm = _collect_mm(pred_dir)
        caption_indices = None
        manifest_path = pred_dir / MANIFEST_FILE
        if manifest_path.is_file():
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
                caption_indices = {
                    k: int(v["caption_index"]) for k, v in manifest.get("items", {}).items()
                }
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
                raise ArtifactFormatError(
                    f"{manifest_path}: unreadable generation manifest ({err}); regenerate the "
                    "folder or remove the file to score against the first captions"
                ) from err
        kwargs.setdefault("caption_indices", caption_indices)
        result = self.evaluate(
            predictions, dataset_root=dataset_root, mm_predictions=mm or None, **kwargs
        )
        result["config"]["pred_dir"] = str(pred_dir)
        result["config"]["captions_from"] = (
            str(manifest_path) if caption_indices is not None else "first caption of each item"
        )
        return result

    # ------------------------------------------------------------------ protocol helpers

    def _embed_captions(
        self, entries: Sequence[Any], draws: Sequence[RepeatDraws]
    ) -> dict[tuple[int, int], np.ndarray]:
        needed = sorted(
            {(int(i), int(d.caption[i])) for d in draws for i in d.used}  # (entry, caption)
        )
        emb = self.encode_text([entries[i].captions[c].tokens for i, c in needed])
        return dict(zip(needed, emb))

    def _embed_crops(
        self,
        requests: Iterable[tuple[int, int, int]],
        load: Any,
        batch_size: int,
        progress: bool,
        desc: str,
    ) -> dict[tuple[int, int, int], np.ndarray]:
        """Embed ``(entry, start, m_length)`` crops, loading each entry's motion once; entries
        are visited in order (sorted by length) in chunks, so memory stays bounded."""
        from tqdm.auto import tqdm

        by_entry: dict[int, list[tuple[int, int, int]]] = {}
        for req in sorted(set(requests)):
            by_entry.setdefault(req[0], []).append(req)
        out: dict[tuple[int, int, int], np.ndarray] = {}
        chunk: list[tuple[int, int, int]] = []
        crops: list[np.ndarray] = []
        bar = tqdm(total=sum(map(len, by_entry.values())), desc=desc, disable=not progress)

        def flush() -> None:
            if chunk:
                for req, emb in zip(chunk, self._encode_normalized(crops, batch_size=batch_size)):
                    out[req] = emb
                bar.update(len(chunk))
                chunk.clear()
                crops.clear()

        for entry_index, reqs in by_entry.items():
            motion = self.normalize(load(entry_index))
            for req in reqs:
                _, start, m = req
                chunk.append(req)
                crops.append(motion[start : start + m])
            if len(chunk) >= 16 * batch_size:
                flush()
        flush()
        bar.close()
        return out

    def _embed_real(
        self,
        split: HumanML3DTestSplit,
        entries: Sequence[Any],
        draws: Sequence[RepeatDraws],
        batch_size: int,
        progress: bool,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> dict[tuple[int, int, int], np.ndarray]:
        requests = {(int(i), int(d.start[i]), int(d.m_length[i])) for d in draws for i in d.used}

        def name(req: tuple[int, int, int]) -> str:
            return f"{entries[req[0]].key}|{req[1]}|{req[2]}"

        cache_path = None if cache_dir is None else self._real_cache_path(Path(cache_dir), split)
        cached = _load_embedding_cache(cache_path)
        hits = {req: cached[name(req)] for req in requests if name(req) in cached}
        fresh = self._embed_crops(
            requests - set(hits),
            lambda i: split.load_motion(entries[i]),
            batch_size,
            progress,
            "encode real motions",
        )
        if cache_path is not None and fresh:
            cached.update({name(req): emb for req, emb in fresh.items()})
            _save_embedding_cache(cache_path, cached)
        return {**hits, **fresh}

    def fingerprint(self) -> str:
        """sha256 of what motion embeddings depend on: the movement and motion encoder weights,
        mean/std, dtype and device type."""
        digest = hashlib.sha256()
        for key, value in sorted(self.networks.state_dict().items()):
            if key.startswith(("movement_encoder.", "motion_encoder.")):
                digest.update(key.encode())
                digest.update(value.detach().float().cpu().numpy().tobytes())
        digest.update(self.mean.tobytes())
        digest.update(self.std.tobytes())
        digest.update(f"{self.dtype}|{self.device.type}".encode())
        return digest.hexdigest()

    def _real_cache_path(self, cache_dir: Path, split: HumanML3DTestSplit) -> Path:
        digest = hashlib.sha256(self.fingerprint().encode())
        digest.update(str(split.root.resolve()).encode())
        for entry in split.entries:
            stat = split.motion_path(entry).stat()
            digest.update(
                f"{entry.key}|{entry.frames}|{entry.length}|{stat.st_size}|{stat.st_mtime_ns}".encode()
            )
        return cache_dir / f"hml263_real_{digest.hexdigest()[:24]}.npz"

    def _embed_pred(
        self,
        entries: Sequence[Any],
        preds: _Predictions,
        draws: Sequence[RepeatDraws],
        batch_size: int,
        progress: bool,
    ) -> dict[tuple[int, int], np.ndarray]:
        unit = self.config.unit_length

        def pred_length(i: int, m: int) -> int:
            # a prediction shorter than the crop is used whole (floored to the unit)
            return min(int(m), floor_to_unit(preds.lengths[entries[i].key], unit))

        requests = {(int(i), 0, pred_length(i, d.m_length[i])) for d in draws for i in d.used}
        crops = self._embed_crops(
            requests,
            lambda i: preds.load(entries[i].key),
            batch_size,
            progress,
            "encode generated motions",
        )
        table = {}
        for d in draws:
            for i in d.used:
                m = int(d.m_length[i])
                table[(int(i), m)] = crops[(int(i), 0, pred_length(i, m))]
        return table

    def _embed_mm(
        self,
        mm_predictions: Mapping[str, Sequence[Any]] | None,
        batch_size: int,
        mm_times: int,
    ) -> tuple[np.ndarray | None, str | None]:
        if not mm_predictions:
            return None, "not computed: no repeated generations (<pred_dir>/mm/)"
        counts = {k: len(v) for k, v in mm_predictions.items()}
        n_rep = min(counts.values())
        if n_rep < mm_times:
            return None, (
                f"not computed: {n_rep} generations for some texts, fewer than the "
                f"{mm_times} pairs drawn"
            )
        keys = sorted(mm_predictions)
        flat = {f"{k}{MM_SEPARATOR}{j}": mm_predictions[k][j] for k in keys for j in range(n_rep)}
        preds = _Predictions(flat, self.config.unit_length)
        motions = [preds.load(name) for name in flat]
        emb = self.encode_motion(motions, batch_size=batch_size)  # (K * R, D)
        dropped = sum(counts.values()) - n_rep * len(keys)
        note = f"{len(keys)} texts x {n_rep} generations" + (
            f" ({dropped} extra generations unused)" if dropped else ""
        )
        return emb.reshape(len(keys), n_rep, -1), note

    def _report_config(self, split: HumanML3DTestSplit, **extra: Any) -> dict[str, Any]:
        import scipy
        import torch

        from hftrainer_mogents._version import __version__

        return {
            "evaluator": ZOO_EVALUATOR_NAME,
            "ckpt_dir": self.source,
            "gt_root": str(split.root),
            "texts_dir": str(split.texts_dir or split.root / "texts"),
            "caption_protocol_note": CAPTION_PROTOCOL_NOTE,
            "evaluator_dir": self.source,
            "dataset_root": str(split.root),
            "split_file": str(split.split_file),
            "unit_length": self.config.unit_length,
            "embedding_dim": self.config.dim_coemb_hidden,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "protocol": (
                "per pass: shuffled entries in batches of batch_size (last partial batch "
                "dropped), crop length floor4(len) or floor4(len)-4 (p=1/3), random crop start "
                "for the real motion, first m_length frames of the prediction"
            ),
            "versions": {
                "hftrainer_mogents": __version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "python": platform.python_version(),
            },
            **extra,
        }

    # ------------------------------------------------------------------ the host runner's loop

    def _load_parts(self, ckpt_dir: Any, *, device: Any, dtype: Any, dataset_root: Any) -> None:
        """``__init__`` from a converted folder: take over a loaded evaluator's state."""
        if ckpt_dir is None:
            raise InvalidInputError(
                "HumanML263Evaluator needs its parts (networks, word_vectorizer, mean, std) or "
                "ckpt_dir= (a folder written by `mogents convert-evaluator`)"
            )
        loaded = type(self).from_pretrained(
            ckpt_dir, device=device, dtype=dtype, dataset_root=dataset_root
        )
        own = {"_results": self._results, "evaluate_kwargs": self.evaluate_kwargs}
        self.__dict__.update({**vars(loaded), **own})

    def compute(self) -> dict[str, float]:
        """Score what :meth:`process` gathered with the test protocol (:meth:`evaluate` on the
        dataset at ``dataset_root``, with ``evaluate_kwargs``) and return the flat metrics the
        host logs (``fid``, ``fid_<stat>``, ``r_precision_top1`` ...; see
        :func:`~hftrainer_mogents.host_compat.flatten_metrics`). The full report is kept in
        ``last_report``.

        Each processed batch output holds ``keys`` (test-split keys: ``<id>`` or sub-clip keys),
        ``motions`` (generated ``(T, 263)`` motions in physical units, or a padded batch with
        ``lengths``) and optionally ``caption_indices`` (the caption each motion was generated
        from; default the first).

        Raises:
            InvalidInputError: nothing processed, a key processed twice, or no ``dataset_root``.
        """
        motions, extras = self._gathered()
        kwargs: dict[str, Any] = {"progress": False, **self.evaluate_kwargs}
        if "caption_indices" in extras:
            kwargs.setdefault(
                "caption_indices", {k: int(v) for k, v in extras["caption_indices"].items()}
            )
        self.last_report = self.evaluate(motions, **kwargs)
        return flatten_metrics(self.last_report)
