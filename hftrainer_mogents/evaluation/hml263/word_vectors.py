"""GloVe word vectors and POS one-hots of the HumanML3D-263 evaluator's text encoder.

Captions arrive as HumanML3D token strings ``word/POS`` (spaCy universal tags, lemmatised NOUN and
VERB). A token maps to its word vector and to one of 15 POS classes: a word from one of the
motion-specific "VIP" lists takes that list's class whatever its tag; otherwise a tag that names
one of the 15 classes is kept and any other tag (PROPN, CCONJ, PUNCT, ...) becomes ``OTHER``. A word outside the vocabulary maps
to the ``unk`` vector and ``OTHER``. The lookup is case-sensitive, as in the reference (so a
capitalised ``A/DET`` is ``unk`` when the vocabulary is lower-case).

A caption becomes ``sos``, its first ``max_text_len`` tokens, ``eos``, then ``unk`` padding up to
``max_text_len + 2`` rows; its length counts sos and eos.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError

__all__ = [
    "POS_CLASSES",
    "VIP_WORDS",
    "SPECIAL_TOKENS",
    "VECTORS_FILE",
    "VOCAB_FILE",
    "WordVectorizer",
    "parse_tokens",
]

# one-hot index order
POS_CLASSES: tuple[str, ...] = (
    "VERB",
    "NOUN",
    "DET",
    "ADP",
    "NUM",
    "AUX",
    "PRON",
    "ADJ",
    "ADV",
    "Loc_VIP",
    "Body_VIP",
    "Obj_VIP",
    "Act_VIP",
    "Desc_VIP",
    "OTHER",
)
_POS_INDEX = {name: i for i, name in enumerate(POS_CLASSES)}
OTHER = _POS_INDEX["OTHER"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# checked in this order; the first list holding the word gives its class
VIP_WORDS: dict[str, frozenset[str]] = {
    "Loc_VIP": _words(
        "left right clockwise counterclockwise anticlockwise forward back backward up down "
        "straight curve"
    ),
    "Body_VIP": _words("arm chin foot feet face hand mouth leg waist eye knee shoulder thigh"),
    "Obj_VIP": _words("stair dumbbell chair window floor car ball handrail baseball basketball"),
    "Act_VIP": _words(
        "walk run swing pick bring kick put squat throw hop dance jump turn stumble stop sit "
        "lift lower raise wash stand kneel stroll rub bend balance flap jog shuffle lean rotate "
        "spin spread climb"
    ),
    "Desc_VIP": _words(
        "slowly carefully fast careful slow quickly happy angry sad happily angrily sadly"
    ),
}
SPECIAL_TOKENS = ("sos", "eos", "unk")
VECTORS_FILE = "glove_vectors.npy"  # (V, W) float32
VOCAB_FILE = "glove_vocab.json"  # {"word_to_row": {word: row of the vectors}}


def parse_tokens(tokens: str | Sequence[str]) -> list[str]:
    """A caption's tokens as a list: a ``"w/POS w/POS"`` string is split on spaces.

    Raises:
        InvalidInputError: a token is not exactly ``word/POS``.
    """
    items = tokens.split(" ") if isinstance(tokens, str) else list(tokens)
    for token in items:
        if not isinstance(token, str) or token.count("/") != 1:
            raise InvalidInputError(
                f"caption token {token!r} is not 'word/POS' (in {' '.join(map(str, items))!r}); "
                "pass HumanML3D token strings such as 'a/DET person/NOUN walk/VERB'"
            )
    return items


class WordVectorizer:
    """Word vectors and POS classes of caption tokens.

    Args:
        vectors: ``(V, W)`` float32 word vectors.
        word_to_row: vocabulary, word -> row of ``vectors``; must hold ``sos``, ``eos``, ``unk``.
    """

    def __init__(self, vectors: np.ndarray, word_to_row: Mapping[str, int]):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ArtifactFormatError(f"word vectors must be (V, W), got shape {vectors.shape}")
        missing = [t for t in SPECIAL_TOKENS if t not in word_to_row]
        if missing:
            raise ArtifactFormatError(f"word vocabulary lacks the special tokens {missing}")
        rows = np.fromiter(word_to_row.values(), dtype=np.int64, count=len(word_to_row))
        if len(rows) and (rows.min() < 0 or rows.max() >= len(vectors)):
            raise ArtifactFormatError(
                f"word vocabulary points outside the {len(vectors)} vector rows "
                f"(rows {rows.min()}..{rows.max()})"
            )
        self.vectors = vectors
        self.word_to_row = dict(word_to_row)
        self._unk = self.word_to_row["unk"]

    @property
    def dim_word(self) -> int:
        """``W``."""
        return int(self.vectors.shape[1])

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> WordVectorizer:
        """Load the converted files ``glove_vectors.npy`` and ``glove_vocab.json`` (no pickle).

        Raises:
            ArtifactNotFoundError: a file is missing.
            ArtifactFormatError: a file is malformed.
        """
        path = Path(path)
        vec_path, vocab_path = path / VECTORS_FILE, path / VOCAB_FILE
        for file in (vec_path, vocab_path):
            if not file.is_file():
                raise ArtifactNotFoundError(
                    f"{file} not found; convert the evaluator first (mogents convert-evaluator)"
                )
        try:
            vectors = np.load(vec_path, allow_pickle=False)
            word_to_row = json.loads(vocab_path.read_text(encoding="utf-8"))["word_to_row"]
        except (ValueError, KeyError, json.JSONDecodeError) as err:
            raise ArtifactFormatError(f"{path}: unreadable word vectors ({err})") from err
        return cls(vectors, word_to_row)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``glove_vectors.npy`` and ``glove_vocab.json`` into ``path`` (atomically)."""
        from hftrainer_mogents.utils.io import atomic_save_npy, atomic_write_json

        path = Path(path)
        atomic_save_npy(path / VECTORS_FILE, self.vectors)
        atomic_write_json(path / VOCAB_FILE, {"word_to_row": self.word_to_row})

    def lookup(self, token: str) -> tuple[int, int]:
        """Row of the word vector and POS class of one ``word/POS`` token."""
        word, tag = token.split("/")
        row = self.word_to_row.get(word)
        if row is None:
            return self._unk, OTHER
        for name, words in VIP_WORDS.items():
            if word in words:
                return row, _POS_INDEX[name]
        return row, _POS_INDEX.get(tag, OTHER)

    def padded_tokens(self, tokens: str | Sequence[str], max_text_len: int = 20) -> list[str]:
        """``sos/OTHER``, the first ``max_text_len`` tokens, ``eos/OTHER``, ``unk/OTHER`` padding
        up to ``max_text_len + 2`` entries."""
        items = parse_tokens(tokens)[:max_text_len]
        padded = ["sos/OTHER", *items, "eos/OTHER"]
        return padded + ["unk/OTHER"] * (max_text_len + 2 - len(padded))

    def encode(
        self, captions: Sequence[str | Sequence[str]], max_text_len: int = 20
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Word vectors, POS one-hots and lengths of captions.

        Args:
            captions: ``B`` captions, each a ``"w/POS w/POS"`` string or a list of tokens.
            max_text_len: tokens kept per caption (before sos/eos).

        Returns:
            ``word_embs`` ``(B, max_text_len + 2, W)`` float32, ``pos_onehot``
            ``(B, max_text_len + 2, P)`` float32, ``sent_lens`` ``(B,)`` int64 (sos and eos
            included).
        """
        n_rows = max_text_len + 2
        rows = np.empty((len(captions), n_rows), dtype=np.int64)
        pos = np.empty((len(captions), n_rows), dtype=np.int64)
        lens = np.empty(len(captions), dtype=np.int64)
        for i, caption in enumerate(captions):
            padded = self.padded_tokens(caption, max_text_len)
            lens[i] = min(len(parse_tokens(caption)), max_text_len) + 2
            rows[i], pos[i] = zip(*(self.lookup(t) for t in padded))
        onehot = np.zeros((len(captions), n_rows, len(POS_CLASSES)), dtype=np.float32)
        np.put_along_axis(onehot, pos[..., None], 1.0, axis=-1)
        return self.vectors[rows], onehot, lens
