"""CLIPTokenizer: ids identical to OpenAI's ``clip.tokenize(..., truncate=True)``."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, require_fixture

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.modeling.tokenizer import (
    CONTEXT_LENGTH,
    CLIPTokenizer,
    clean_text,
    default_bpe_path,
)

MODULE_CAPTIONS = [
    "a person walks forward and then turns around.",
    "a man jumps up and down twice.",
    "someone waves with the right hand while standing still.",
    "the person crouches and jumps forward.",
]

# Produced by openai-clip 1.0.1 (`clip.tokenize([text], truncate=True)`, ftfy 6.3.1), non-zero ids.
UPSTREAM_IDS = [
    ("The man’s “quoted” words — isn’t it?", [49406, 518, 786, 568, 257, 27706, 257, 2709, 2005, 2923, 713, 585, 286, 49407]),
    ("Ã©tÃ© mojibake cafÃ©", [49406, 3459, 39694, 617, 3252, 11878, 15304, 49407]),
    ("&amp;amp; &amp;lt;tag&amp;gt;", [49406, 261, 283, 3640, 285, 49407]),
    ("He'S THEY'RE we'VE I'M you'LL she'D can'T", [49406, 797, 568, 889, 982, 649, 1200, 328, 880, 592, 1342, 1043, 1896, 753, 713, 49407]),
    ("<|ENDOFTEXT|> in caps", [49406, 49407, 530, 23185, 49407]),
    ("nbsp\xa0here\u3000ideographic\u2009thin", [49406, 6459, 4393, 763, 1909, 78, 4245, 7847, 49407]),
    ("x² ½ Ⅻ ① ١٢٣", [49406, 343, 41175, 33613, 158, 227, 375, 158, 239, 510, 149, 350, 149, 351, 149, 352, 49407]),
    ("👨\u200d👩\u200d👧 family 👍🏽", [49406, 25023, 26304, 964, 356, 1315, 43722, 49407]),
    ("e\u0301 combining", [49406, 4166, 23561, 49407]),
    ("İstanbul ǅ ẞ", [49406, 328, 16384, 11231, 67, 129, 378, 127, 509, 49407]),
    ("ｶﾀｶﾅ ＡＢＣ１２３", [49406, 37367, 34941, 37367, 2429, 488, 5334, 272, 273, 274, 49407]),
    ("tab\tnew\nline\r\nreturn\x0bvt\x0cff", [49406, 14724, 686, 1148, 43042, 10291, 1304, 49407]),
]  # fmt: skip


@pytest.fixture(scope="module")
def tok() -> CLIPTokenizer:
    return CLIPTokenizer.default()


def _mismatch(texts, got: np.ndarray, want: np.ndarray) -> str:
    rows = [i for i in range(len(texts)) if not np.array_equal(got[i], want[i])]
    return "; ".join(f"{texts[i]!r}: got {got[i][:20]} want {want[i][:20]}" for i in rows[:5])


def test_fixture_captions_exact(tok, fixtures_dir):
    base = fixtures_dir / "mogents_tiny"
    captions = json.loads(require_fixture(base / "captions.json").read_text(encoding="utf-8"))
    ref = np.load(require_fixture(base / "tokens.npz"))
    ids = tok.tokenize(captions)
    assert ids.dtype == torch.long and ids.shape == (40, CONTEXT_LENGTH)
    got = ids.numpy()
    assert np.array_equal(got, ref["tokens"]), _mismatch(captions, got, ref["tokens"])
    assert np.array_equal(ids.argmax(-1).numpy(), ref["eot_index"])


def test_module_captions_exact(tok, fixtures_dir):
    ref = np.load(require_fixture(fixtures_dir / "mogents_tiny" / "modules.npz"))["clip_tokens"]
    got = tok.tokenize(MODULE_CAPTIONS).numpy()
    assert np.array_equal(got, ref), _mismatch(MODULE_CAPTIONS, got, ref)


@pytest.mark.parametrize(("text", "want"), UPSTREAM_IDS, ids=[f"case{i}" for i in range(12)])
def test_tricky_text_matches_upstream(tok, text, want):
    ids = tok.tokenize(text)[0]
    assert ids[: len(want)].tolist() == want
    assert not ids[len(want) :].any()


def _recorded_cases() -> list[dict]:
    path = REPO_ROOT / "tests" / "data" / "clip_bpe_ids.json"
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


def test_recorded_ids_exact(tok):
    """425 varied captions (HumanML3D texts, unicode, punctuation, special-token spellings, HTML,
    mojibake, > 77 tokens) give the ids our original BPE recorded."""
    cases = _recorded_cases()
    assert len(cases) == 425 and sum(len(c["ids"]) > CONTEXT_LENGTH for c in cases) >= 20
    bad = [(c["text"], tok.encode(c["text"])) for c in cases]
    bad = [(text, got) for (text, got), c in zip(bad, cases) if got != c["ids"]]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:3]}"
    ids = tok.tokenize([c["text"] for c in cases])
    for row, case in zip(ids.tolist(), cases):
        body = case["ids"][: CONTEXT_LENGTH - 2]
        want = [tok.sot_token_id, *body, tok.eot_token_id]
        assert row == want + [0] * (CONTEXT_LENGTH - len(want)), case["text"]


def test_fixture_long_captions_truncate_like_upstream(tok, fixtures_dir):
    """The fixture captions longer than 77 tokens: upstream keeps the start token, the first 75
    BPE tokens and puts the end token at position 76."""
    base = fixtures_dir / "mogents_tiny"
    captions = json.loads(require_fixture(base / "captions.json").read_text(encoding="utf-8"))
    ref = np.load(require_fixture(base / "tokens.npz"))["tokens"]
    long = [i for i, text in enumerate(captions) if len(tok.encode(text)) > CONTEXT_LENGTH - 2]
    assert long, "the fixture has a caption past 77 tokens"
    ids = tok.tokenize([captions[i] for i in long]).numpy()
    assert np.array_equal(ids, ref[long])
    assert (ids[:, -1] == tok.eot_token_id).all() and (ids != 0).all()


def test_truncation_keeps_start_75_tokens_end(tok):
    text = " ".join(f"word{i}" for i in range(60))
    body = tok.encode(text)
    assert len(body) > CONTEXT_LENGTH
    ids = tok.tokenize([text, "short"], truncate=True)
    assert ids.shape == (2, CONTEXT_LENGTH)
    assert ids[0].tolist() == [tok.sot_token_id, *body[:75], tok.eot_token_id]
    assert int(ids[0].argmax()) == CONTEXT_LENGTH - 1


def test_truncate_false_raises_only_when_too_long(tok):
    fits = "word " * 75  # 75 BPE tokens + start + end = 77
    assert tok.tokenize(fits, truncate=False)[0, -1] == tok.eot_token_id
    with pytest.raises(InvalidInputError, match=r"texts\[1\] has 78 tokens.*truncate=True"):
        tok.tokenize(["ok", fits + "word"], truncate=False)


def test_context_length_and_input_checks(tok):
    ids = tok.tokenize("a person walks", context_length=6)
    assert ids.tolist() == [[49406, 320, 2533, 8192, 49407, 0]]
    assert tok.tokenize([]).shape == (0, CONTEXT_LENGTH)
    with pytest.raises(InvalidInputError, match=r"texts\[1\] must be a str"):
        tok.tokenize(["fine", 3])
    with pytest.raises(InvalidInputError, match="at least 2"):
        tok.tokenize("x", context_length=1)
    assert tok("", context_length=4).tolist() == [[49406, 49407, 0, 0]]


def test_clean_text():
    assert clean_text("  Jumping &amp;amp;\tDancing\n ＦＵＬＬ ﬁ ") == "jumping & dancing full fi"


def test_vocabulary_layout(tok):
    """OpenAI's id order: byte characters, the same with </w>, one per merge, the two specials."""
    vocab = tok.backend.get_vocab()
    assert tok.vocab_size == len(vocab) == 49408
    assert (tok.sot_token_id, tok.eot_token_id) == (49406, 49407)
    by_id = sorted(vocab, key=vocab.get)
    alphabet = by_id[:256]
    assert len(set(alphabet)) == 256 and all(len(c) == 1 for c in alphabet)
    assert alphabet[:94] == [chr(b) for b in range(ord("!"), ord("~") + 1)]
    assert not any(c.isspace() for c in alphabet)
    assert by_id[256:512] == [c + "</w>" for c in alphabet]
    assert vocab["!"] == 0 and vocab["!</w>"] == 256
    with gzip.open(default_bpe_path(), "rt", encoding="utf-8") as fh:
        first_merge = fh.read().split("\n")[1].split()
    assert vocab["".join(first_merge)] == 512
    assert by_id[-2:] == ["<|startoftext|>", "<|endoftext|>"]


def test_decode_round_trip(tok):
    text = "a person walks forward, then waves!"
    decoded = tok.decode(tok.tokenize(text)[0].tolist())
    assert decoded == "<|startoftext|>a person walks forward , then waves ! <|endoftext|>"


def test_default_is_built_once(tok):
    """The shared tokenizer is built once per process from the packaged merge list (no hub)."""
    assert CLIPTokenizer.default() is CLIPTokenizer.default() is tok
    assert tok.encode("walks walks walks") == [8192] * 3  # a repeated word, same ids


def test_packaged_data_and_notice():
    path = default_bpe_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    notice = (REPO_ROOT / "hftrainer_mogents" / "data" / "NOTICE-openai-clip.txt").read_text()
    assert digest in notice and "MIT License" in notice and "Copyright (c) 2021 OpenAI" in notice


def test_bad_merge_files(tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="merge list not found"):
        CLIPTokenizer(tmp_path / "absent.txt.gz")
    short = tmp_path / "short.txt.gz"
    with gzip.open(short, "wt", encoding="utf-8") as fh:
        fh.write("#version: 0.2\ni n\nt h\n")
    with pytest.raises(ArtifactFormatError, match="only 3 merge lines"):
        CLIPTokenizer(short)
    garbage = tmp_path / "garbage.txt.gz"
    garbage.write_bytes(b"not gzip")
    with pytest.raises(ArtifactFormatError, match="not a gzipped"):
        CLIPTokenizer(garbage)
