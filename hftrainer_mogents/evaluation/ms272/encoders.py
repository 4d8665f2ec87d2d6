"""Text and motion encoding with MotionStreamer's evaluator networks: captions through
DistilBERT's tokenizer untruncated (padding to the longest caption of a batch), motions
normalised with the dataset's ``Mean``/``Std``, cut to their length, padded and embedded by the
motion encoder (the mean ``mu`` of each encoder's distribution is the embedding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.evaluation.ms272.dataset import MAX_LENGTH
from hftrainer_mogents.utils.precision import full_fp32

__all__ = ["MS272Encoders"]


class MS272Encoders:
    """The encoding methods of :class:`~.evaluator.MotionStreamer272Evaluator`, over its
    ``text_encoder``, ``motion_encoder``, ``tokenizer``, ``mean`` and ``std``."""

    text_encoder: Any
    motion_encoder: Any
    tokenizer: Any
    mean: np.ndarray | None
    std: np.ndarray | None

    @property
    def device(self) -> Any:
        """Device of the encoders."""
        return next(self.motion_encoder.parameters()).device

    def encode_text(self, captions: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Embeddings of captions (untruncated, padded to the longest of each batch).

        Args:
            captions: N strings.
            batch_size: captions per forward pass.

        Returns:
            (N, D) float32.
        """
        import torch

        if any(not isinstance(c, str) or not c.strip() for c in captions):
            raise InvalidInputError("captions must be non-empty strings")
        out = []
        with torch.inference_mode(), full_fp32():
            for start in range(0, len(captions), batch_size):
                enc = self.tokenizer(
                    list(captions[start : start + batch_size]), return_tensors="pt", padding=True
                )
                res = self.text_encoder(
                    enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
                )
                out.append(res.mu.float().cpu().numpy())
        width = self.motion_encoder.config.latent_dim
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)

    def normalize(
        self, motion: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None
    ) -> np.ndarray:
        """``(motion - Mean) / Std`` with the given or stored statistics."""
        mean = self.mean if mean is None else mean
        std = self.std if std is None else std
        if mean is None or std is None:
            raise InvalidInputError(
                "no Mean/Std: this evaluator folder has none; pass the dataset's "
                "(humanml3d_272/mean_std) or evaluate with data_root"
            )
        return ((np.asarray(motion, np.float32) - mean) / std).astype(np.float32)

    def encode_motion(
        self,
        motions: Sequence[np.ndarray],
        lengths: Sequence[int] | None = None,
        *,
        normalized: bool = False,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Embeddings of motions.

        Args:
            motions: N arrays (T_i, 272), raw unless ``normalized``.
            lengths: frames used of each (default: all); at most 300.
            normalized: inputs are already normalised.
            mean: (272,) statistics instead of the stored ones.
            std: (272,).
            batch_size: motions per forward pass (padded to the longest of the batch, which
                gives the same embedding as upstream's padding to 300).

        Returns:
            (N, D) float32.
        """
        import torch

        lens = [len(m) for m in motions] if lengths is None else [int(n) for n in lengths]
        if len(lens) != len(motions):
            raise InvalidInputError(f"{len(motions)} motions but {len(lens)} lengths")
        crops = []
        for i, (motion, n) in enumerate(zip(motions, lens)):
            m = np.asarray(motion)
            if m.ndim != 2 or m.shape[1] != 272:
                raise InvalidInputError(f"motion {i}: expected (T, 272), got {m.shape}")
            if not 1 <= n <= min(len(m), MAX_LENGTH):
                raise InvalidInputError(f"motion {i}: length {n} outside [1, min(T, 300)]")
            crop = m[:n] if normalized else self.normalize(m[:n], mean, std)
            if not np.isfinite(crop).all():
                raise InvalidInputError(f"motion {i}: contains NaN or inf values")
            crops.append(crop.astype(np.float32))
        order = np.argsort([len(c) for c in crops], kind="stable")
        width = self.motion_encoder.config.latent_dim
        out = np.zeros((len(crops), width), np.float32)
        with torch.inference_mode(), full_fp32():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                longest = max(len(crops[i]) for i in idx)
                batch = np.zeros((len(idx), longest, 272), np.float32)
                for k, i in enumerate(idx):
                    batch[k, : len(crops[i])] = crops[i]
                res = self.motion_encoder(
                    torch.from_numpy(batch).to(self.device),
                    torch.tensor([len(crops[i]) for i in idx], device=self.device),
                )
                out[idx] = res.mu.float().cpu().numpy()
        return out
