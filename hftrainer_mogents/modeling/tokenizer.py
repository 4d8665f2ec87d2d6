"""The CLIP text tokenizer: exactly the ids of OpenAI's ``clip.tokenize``, with the byte-level BPE
run by the ``tokenizers`` library (the engine of transformers' fast tokenizers).

The vocabulary is built from the merge list that OpenAI ships with CLIP
(``hftrainer_mogents/data/bpe_simple_vocab_16e6.txt.gz``, MIT, see
``data/NOTICE-openai-clip.txt``), so nothing is downloaded. Parity with
``clip.tokenize(texts, truncate=True)`` rests on four facts:

1. Cleaning (ours, OpenAI's rules): ``ftfy.fix_text``, then HTML entities unescaped twice,
   whitespace runs collapsed to one space, surrounding spaces stripped, lower case. ``ftfy``
   (mojibake, full-width letters, ligatures, curly quotes, ...) is a dependency on purpose: its
   rules are what OpenAI ran. transformers' CLIP tokenizers alone differ here.
2. Words (ours): OpenAI's pattern through the ``regex`` package, as OpenAI runs it: the two
   special-token spellings, the English contractions ``'s 't 're 've 'm 'll 'd``, runs of letters,
   single digits, runs of other non-space symbols. It stays in Python because ``tokenizers`` would
   match a special-token spelling anywhere, where OpenAI's pattern keeps e.g. ``"!<|endoftext|>"``
   as one run of symbols.
3. The BPE (``tokenizers``): each word's UTF-8 bytes as GPT-2's printable byte characters
   (its ``ByteLevel`` pre-tokenizer), ``</w>`` ending the word's last symbol, merged by rank.
4. The vocabulary, in id order: the 256 byte characters (code-point order), the same with
   ``</w>``, one entry per merge, ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).

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
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import ftfy
import regex
import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError

__all__ = [
    "SOT_TOKEN",
    "EOT_TOKEN",
    "CONTEXT_LENGTH",
    "CLIPTokenizer",
    "clean_text",
    "default_bpe_path",
]

logger = logging.getLogger(__name__)

SOT_TOKEN = "<|startoftext|>"
EOT_TOKEN = "<|endoftext|>"
CONTEXT_LENGTH = 77  # every OpenAI CLIP model
END_OF_WORD = "</w>"
_BYTE_SPACE = "\u0120"  # "Ġ": the byte-level character standing for b" "
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
    """OpenAI CLIP's tokenizer (ids identical to ``clip.tokenize``) over a ``tokenizers`` BPE.

    Args:
        bpe_path: the gzipped merge list; ``None`` uses the copy shipped in the package.
        cache_size: how many distinct words the BPE keeps merged (the library's word cache).

    Attributes:
        backend: the ``tokenizers.Tokenizer`` holding the vocabulary and the merges; it takes
            pre-split words (``is_pretokenized=True``).
    """

    def __init__(self, bpe_path: str | os.PathLike[str] | None = None, *, cache_size: int = 65536):
        path = Path(bpe_path) if bpe_path is not None else default_bpe_path()
        self.backend = _build_backend(_read_merges(path), cache_size)
        self.sot_token_id: int = self.backend.token_to_id(SOT_TOKEN)
        self.eot_token_id: int = self.backend.token_to_id(EOT_TOKEN)

    @classmethod
    @functools.cache
    def default(cls) -> CLIPTokenizer:
        """A shared tokenizer over the packaged merge list (built once per process)."""
        return cls()

    @property
    def vocab_size(self) -> int:
        """Number of ids (49408 for OpenAI's merge list)."""
        return self.backend.get_vocab_size()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """BPE ids of one caption, without the start/end tokens.

        Args:
            text: raw caption (cleaned here).

        Returns:
            The ids; empty for an empty or all-space caption.
        """
        words = _WORD_PATTERN.findall(clean_text(text))
        if not words:
            return []
        # one caption at a time: encode_batch would start the library's thread pool, which then
        # warns in every DataLoader worker forked after it
        return self.backend.encode(words, is_pretokenized=True, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of BPE ids (special tokens spelled out, ``</w>`` as a space); for inspection.

        Args:
            ids: token ids; 0-padding after the end token is ignored.

        Returns:
            The decoded string (invalid UTF-8 replaced).
        """
        ids = [int(i) for i in ids]
        if self.eot_token_id in ids:
            ids = ids[: ids.index(self.eot_token_id) + 1]
        return self.backend.decode(ids, skip_special_tokens=False)

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
                logger.warning(
                    "texts[%d] is longer than CLIP's %d tokens and is cut to: %r",
                    i,
                    context_length,
                    self.decode(ids[1:-1]).strip(),
                )
            result[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return result

    __call__ = tokenize


def _build_backend(merges: list[tuple[str, str]], cache_size: int) -> Tokenizer:
    """A ``tokenizers`` BPE over OpenAI's vocabulary layout (fact 4 of the module docstring)."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # code-point order = OpenAI's order
    tokens = [*alphabet, *(c + END_OF_WORD for c in alphabet), *(a + b for a, b in merges)]
    vocab = {token: i for i, token in enumerate([*tokens, SOT_TOKEN, EOT_TOKEN])}
    backend = Tokenizer(
        models.BPE(
            vocab,
            merges,
            cache_capacity=cache_size,
            continuing_subword_prefix="",
            end_of_word_suffix=END_OF_WORD,
        )
    )
    # words arrive split (fact 2): only their bytes are mapped here, no regex of the library's
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    # a word that *is* a special-token spelling gets its id (fact 2 never yields one inside a word)
    backend.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in (SOT_TOKEN, EOT_TOKEN)]
    )
    # "</w>" becomes the byte character of a space before the bytes are decoded
    backend.decoder = decoders.Sequence(
        [decoders.Replace(END_OF_WORD, _BYTE_SPACE), decoders.ByteLevel()]
    )
    return backend


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
