"""The CLIP text tokenizer: byte-level BPE giving exactly the ids of OpenAI's ``clip.tokenize``.

Our own implementation over the merge list that OpenAI ships with CLIP
(``hftrainer_mogents/data/bpe_simple_vocab_16e6.txt.gz``, MIT, see
``data/NOTICE-openai-clip.txt``). Parity with ``clip.tokenize(texts, truncate=True)`` rests on four
facts, each reproduced here:

1. Cleaning: ``ftfy.fix_text``, then HTML entities unescaped twice, whitespace runs collapsed to
   one space, surrounding spaces stripped, lower case. ``ftfy`` (mojibake, full-width letters,
   ligatures, curly quotes, ...) is a dependency on purpose: its rules are what OpenAI ran.
2. Pre-tokenisation into words: the two special-token spellings, the English contractions
   ``'s 't 're 've 'm 'll 'd``, runs of letters, single digits, runs of other non-space symbols
   (Unicode classes, matched case-insensitively, through the ``regex`` package).
3. Each word's UTF-8 bytes mapped to printable characters (GPT-2's byte alphabet), ``</w>`` marking
   the word's last symbol, then merged greedily, lowest merge rank first.
4. The vocabulary, in id order: the 256 byte characters (alphabet order), the same with ``</w>``,
   one entry per merge, ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).

Examples:
    >>> tok = CLIPTokenizer.default()
    >>> tok.tokenize(["a person walks."]).shape
    torch.Size([1, 77])
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.resources
import os
from collections.abc import Sequence
from pathlib import Path

import ftfy
import regex
import torch

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError

__all__ = [
    "SOT_TOKEN",
    "EOT_TOKEN",
    "CONTEXT_LENGTH",
    "CLIPTokenizer",
    "byte_alphabet",
    "clean_text",
    "default_bpe_path",
]

SOT_TOKEN = "<|startoftext|>"
EOT_TOKEN = "<|endoftext|>"
CONTEXT_LENGTH = 77  # every OpenAI CLIP model
END_OF_WORD = "</w>"
# The merge list's first line is a header; CLIP uses the next 49152 - 256 - 2 lines (a vocabulary
# of 49152 BPE symbols counting the 256 byte characters and the two special tokens' slots).
NUM_MERGES = 49152 - 256 - 2
BPE_FILENAME = "bpe_simple_vocab_16e6.txt.gz"

# Words: special tokens, contractions, letter runs, one digit, runs of other non-space symbols.
_WORD_PATTERN = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'(?:s|t|re|ve|m|ll|d)|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")


def default_bpe_path() -> Path:
    """The merge list shipped in the package (``hftrainer_mogents/data``)."""
    return Path(str(importlib.resources.files("hftrainer_mogents") / "data" / BPE_FILENAME))


@functools.cache
def byte_alphabet() -> tuple[str, ...]:
    """GPT-2's reversible byte -> printable character table.

    Returns:
        256 one-character strings; entry ``b`` is the character standing for byte ``b``. Bytes that
        are printable Latin-1 (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for themselves; the
        other 68 (space, controls, ...) get ``chr(256 + n)`` in increasing byte order.
    """
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + n) for n, b in enumerate(others)})
    return tuple(table[b] for b in range(256))


def _alphabet_order() -> list[str]:
    """The byte characters in vocabulary order: the printable ones first, then the remapped ones."""
    alphabet = byte_alphabet()
    return sorted(alphabet, key=ord)


def clean_text(text: str) -> str:
    """OpenAI CLIP's caption cleaning.

    Args:
        text: raw caption.

    Returns:
        ``ftfy``-fixed, HTML-unescaped (twice), whitespace-collapsed, stripped, lower-cased text.
    """
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


class CLIPTokenizer:
    """OpenAI CLIP's byte-level BPE tokenizer (ids identical to ``clip.tokenize``).

    Args:
        bpe_path: the gzipped merge list; ``None`` uses the copy shipped in the package.
        cache_size: how many distinct words keep their BPE result (``functools.lru_cache``).
    """

    def __init__(self, bpe_path: str | os.PathLike[str] | None = None, *, cache_size: int = 65536):
        path = Path(bpe_path) if bpe_path is not None else default_bpe_path()
        merges = _read_merges(path)
        base = _alphabet_order()
        vocab = [*base, *(c + END_OF_WORD for c in base), *(a + b for a, b in merges)]
        vocab += [SOT_TOKEN, EOT_TOKEN]
        self.encoder: dict[str, int] = {token: i for i, token in enumerate(vocab)}
        self.decoder: dict[int, str] = dict(enumerate(vocab))
        self.merge_ranks: dict[tuple[str, str], int] = {pair: i for i, pair in enumerate(merges)}
        self.sot_token_id = self.encoder[SOT_TOKEN]
        self.eot_token_id = self.encoder[EOT_TOKEN]
        self._byte_chars = byte_alphabet()
        self._byte_of_char = {c: b for b, c in enumerate(self._byte_chars)}
        self._special = {SOT_TOKEN: (self.sot_token_id,), EOT_TOKEN: (self.eot_token_id,)}
        self._word_ids = functools.lru_cache(maxsize=cache_size)(self._word_ids_uncached)

    @classmethod
    @functools.cache
    def default(cls) -> CLIPTokenizer:
        """A shared tokenizer over the packaged merge list (built once per process)."""
        return cls()

    @property
    def vocab_size(self) -> int:
        """Number of ids (49408 for OpenAI's merge list)."""
        return len(self.encoder)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    def bpe(self, word: str) -> list[str]:
        """Merge one pre-tokenised word (already in byte characters) into BPE symbols.

        Args:
            word: a non-empty string of byte-alphabet characters.

        Returns:
            The symbols; the last one ends in ``</w>``.
        """
        symbols = [*word[:-1], word[-1] + END_OF_WORD]
        ranks = self.merge_ranks
        while len(symbols) > 1:
            # the adjacent pair with the lowest merge rank; stop when no pair is a merge
            best_rank, best = None, None
            for pair in zip(symbols, symbols[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best = rank, pair
            if best is None:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(symbols):  # every non-overlapping occurrence, left to right
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def _word_ids_uncached(self, word: str) -> tuple[int, ...]:
        special = self._special.get(word)
        if special is not None:
            return special
        chars = "".join(self._byte_chars[b] for b in word.encode("utf-8"))
        return tuple(self.encoder[symbol] for symbol in self.bpe(chars))

    def encode(self, text: str) -> list[int]:
        """BPE ids of one caption, without the start/end tokens.

        Args:
            text: raw caption (cleaned here).

        Returns:
            The ids; empty for an empty or all-space caption.
        """
        ids: list[int] = []
        for word in _WORD_PATTERN.findall(clean_text(text)):
            ids.extend(self._word_ids(word))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of BPE ids (special tokens spelled out, ``</w>`` as a space); for inspection.

        Args:
            ids: token ids; 0-padding after the end token is ignored.

        Returns:
            The decoded string (invalid UTF-8 replaced).
        """
        ids = list(ids)
        if self.eot_token_id in ids:
            ids = ids[: ids.index(self.eot_token_id) + 1]
        out = bytearray()
        for i in ids:
            symbol = self.decoder[int(i)]
            if symbol in self._special:
                out += symbol.encode("utf-8")
                continue
            word_end = symbol.endswith(END_OF_WORD)
            symbol = symbol.removesuffix(END_OF_WORD)
            out += bytes(self._byte_of_char[c] for c in symbol)
            if word_end:
                out += b" "
        return out.decode("utf-8", errors="replace")

    def tokenize(
        self,
        texts: str | Sequence[str],
        context_length: int = CONTEXT_LENGTH,
        truncate: bool = True,
    ) -> torch.Tensor:
        """Token ids of captions, as ``clip.tokenize(texts, context_length, truncate)`` gives them.

        Args:
            texts: one caption or a list of ``B`` captions.
            context_length: ``L``, the padded length (77 for every CLIP model).
            truncate: cut a caption longer than ``L`` tokens to ``<|startoftext|>`` + its first
                ``L - 2`` BPE tokens + ``<|endoftext|>``; when False such a caption raises.

        Returns:
            ``(B, L)`` int64 ids: start token 49406, the BPE ids, end token 49407, then zeros.
            CLIP pools each caption's feature at ``ids.argmax(-1)`` (the end token).

        Raises:
            InvalidInputError: a non-string caption, ``L < 2``, or (``truncate=False``) a
                caption with more than ``L`` tokens.
        """
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(context_length, bool) or not isinstance(context_length, int):
            raise InvalidInputError(f"context_length must be an int, got {context_length!r}")
        if context_length < 2:
            raise InvalidInputError(
                f"context_length must be at least 2 (start and end token), got {context_length}"
            )
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInputError(
                    f"texts[{i}] must be a str, got {type(text).__name__}: {text!r}"
                )
        result = torch.zeros(len(texts), context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(ids) > context_length:
                if not truncate:
                    raise InvalidInputError(
                        f"texts[{i}] has {len(ids)} tokens (with start and end tokens), more "
                        f"than context_length={context_length}: shorten it or pass "
                        f"truncate=True to keep its first {context_length - 2} tokens "
                        f"(text: {text[:80]!r})"
                    )
                ids = [*ids[: context_length - 1], self.eot_token_id]
            result[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return result

    __call__ = tokenize


def _read_merges(path: Path) -> list[tuple[str, str]]:
    """The ``NUM_MERGES`` merge pairs of a gzipped CLIP merge list (header line skipped)."""
    if not path.is_file():
        raise ArtifactNotFoundError(
            f"CLIP BPE merge list not found: {path} (the package ships it as "
            f"hftrainer_mogents/data/{BPE_FILENAME}; reinstall hftrainer-mogents)"
        )
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ArtifactFormatError(f"{path}: not a gzipped UTF-8 BPE merge list ({err})") from err
    merges = [tuple(line.split()) for line in lines[1 : NUM_MERGES + 1]]
    bad = next((n for n, m in enumerate(merges, start=2) if len(m) != 2), None)
    if len(merges) != NUM_MERGES or bad is not None:
        short = len(merges) != NUM_MERGES
        where = f"only {len(merges)} merge lines" if short else f"line {bad} is not a pair"
        raise ArtifactFormatError(
            f"{path}: not CLIP's merge list ({where}; expected {NUM_MERGES} 'a b' lines after a "
            "header)"
        )
    return merges  # type: ignore[return-value]
