"""Text and motion encoding with the HumanML3D-263 evaluator networks (the role of momask-codes'
``t2m_eval_wrapper.py``): captions as GloVe vectors and POS one-hots, motions normalised, cut to a
multiple of the unit length and zero-padded after their end, both embedded in the shared space.

Motions are given in physical units (raw HumanML3D-263 features) and normalised here with the
evaluator's mean and std. A crop of ``m`` frames is zero-padded after its end, as the reference
pads every motion to 196 frames (only the two frames after the end reach the last movement step,
so padding to ``m + 4`` gives the same embedding); the 4 foot-contact channels are dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from hftrainer_mogents.config import floor_to_unit
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.evaluation.hml263.networks import (
    HML263EvaluatorConfig,
    HML263EvaluatorNetworks,
)
from hftrainer_mogents.evaluation.hml263.word_vectors import WordVectorizer
from hftrainer_mogents.utils.precision import full_fp32

__all__ = ["HML263Encoders"]


class HML263Encoders:
    """The encoding methods of :class:`~.evaluator.HumanML263Evaluator`, over its ``networks``,
    ``word_vectorizer``, ``mean``, ``std`` and ``config``."""

    networks: HML263EvaluatorNetworks
    word_vectorizer: WordVectorizer
    config: HML263EvaluatorConfig
    mean: np.ndarray
    std: np.ndarray

    @property
    def device(self) -> Any:
        """Device of the networks."""
        return next(self.networks.parameters()).device

    @property
    def dtype(self) -> Any:
        """Floating dtype of the networks."""
        return next(self.networks.parameters()).dtype

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

    def _embed_crops(
        self,
        requests: Iterable[tuple[int, int, int]],
        load: Callable[[int], np.ndarray],
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
