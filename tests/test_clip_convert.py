"""Reading OpenAI CLIP weights: TorchScript archive, torch state dict, safetensors."""

from __future__ import annotations

import pytest
import torch
from conftest import require_fixture
from safetensors.torch import load_file, save_file
from torch import nn

from hftrainer_mogents.convert.clip import (
    CLIP_VIT_B_32_URL,
    default_clip_path,
    is_torchscript_archive,
    load_openai_clip_state_dict,
    torchscript_state_dict,
)
from hftrainer_mogents.convert.safe_pickle import read_torch_zip
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError
from hftrainer_mogents.modeling.text_encoder import CLIPTextEncoder, select_text_state_dict
from hftrainer_mogents.modeling.tokenizer import CLIPTokenizer


@pytest.fixture(scope="module")
def clip_dir(fixtures_dir):
    return require_fixture(fixtures_dir / "mogents_tiny" / "clip")


@pytest.fixture(scope="module")
def reference(clip_dir) -> dict[str, torch.Tensor]:
    return load_file(clip_dir / "clip_tiny.safetensors")


def test_torchscript_archive_equals_state_dict(clip_dir, reference):
    archive = clip_dir / "ViT-B-32-tiny.pt"
    assert is_torchscript_archive(archive)
    sd = load_openai_clip_state_dict(archive)
    assert sorted(sd) == sorted(reference)
    assert {v.dtype for v in sd.values()} == {torch.float16}  # stored dtype kept
    for key, value in reference.items():
        assert sd[key].shape == value.shape, key
        assert torch.equal(sd[key].float(), value), key  # fp16 -> fp32 upcast is exact


@torch.no_grad()
def test_archive_and_safetensors_give_the_same_features(clip_dir, reference):
    ids = CLIPTokenizer.default().tokenize(["a man jumps up and down twice."])
    from_archive = load_openai_clip_state_dict(clip_dir / "ViT-B-32-tiny.pt")
    for dtype in ("float16", "float32"):
        a = CLIPTextEncoder.from_state_dict(from_archive, dtype=dtype)(ids)
        b = CLIPTextEncoder.from_state_dict(reference, dtype=dtype)(ids)
        assert torch.equal(a, b), dtype


def test_safetensors_and_torch_state_dicts(clip_dir, reference, tmp_path):
    assert (
        load_openai_clip_state_dict(clip_dir / "clip_tiny.safetensors").keys() == reference.keys()
    )
    plain = tmp_path / "clip.pt"
    torch.save(reference, plain)
    assert not is_torchscript_archive(plain)
    assert all(torch.equal(v, reference[k]) for k, v in load_openai_clip_state_dict(plain).items())
    # a checkpoint dict with the weights under a wrapper prefix
    wrapped = tmp_path / "wrapped.pth"
    torch.save(
        {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in reference.items()}}, wrapped
    )
    assert load_openai_clip_state_dict(wrapped).keys() == reference.keys()


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.attn_mask = torch.full((3, 3), float("-inf")).triu_(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) + self.attn_mask.sum()


class _Top(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.zeros(3, 2))
        self.context_length = torch.tensor(3)
        self.blocks = nn.Sequential(_Block(), _Block())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x) + self.positional_embedding.sum() + self.context_length


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_non_parameter_attributes_dropped(tmp_path):
    """Tensor attributes that are not parameters (the causal mask, sizes) are left out, as in
    OpenAI's archives."""
    path = tmp_path / "scripted.pt"
    module = _Top()
    torch.jit.script(module).save(str(path))
    sd = torchscript_state_dict(read_torch_zip(path))
    assert sorted(sd) == sorted(module.state_dict())
    assert all(torch.equal(sd[k], v) for k, v in module.state_dict().items())


def test_default_path_missing_says_where_and_which_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_clip_path() == tmp_path / ".cache" / "clip" / "ViT-B-32.pt"
    with pytest.raises(ArtifactNotFoundError) as info:
        load_openai_clip_state_dict()
    message = str(info.value)
    assert str(default_clip_path()) in message and "--clip" in message
    assert CLIP_VIT_B_32_URL in message
    with pytest.raises(ArtifactNotFoundError, match="--clip"):
        load_openai_clip_state_dict(tmp_path / "nope.pt")


def test_wrong_content(reference, tmp_path):
    text = select_text_state_dict(reference)
    partial = {k: v for k, v in text.items() if "resblocks.1.mlp" not in k and k != "ln_final.bias"}
    path = tmp_path / "partial.safetensors"
    save_file(partial, path)
    with pytest.raises(ArtifactFormatError) as info:
        load_openai_clip_state_dict(path)
    message = str(info.value)
    for key in ("transformer.resblocks.1.mlp.c_fc.weight", "ln_final.bias"):
        assert key in message
    other = tmp_path / "other.pt"
    torch.save({"net": {"weight": torch.zeros(2)}}, other)
    with pytest.raises(ArtifactFormatError, match="no CLIP state dict"):
        load_openai_clip_state_dict(other)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 16)
    with pytest.raises(ArtifactFormatError, match="safetensors"):
        load_openai_clip_state_dict(garbage)
    garbage_pt = tmp_path / "garbage.pt"
    garbage_pt.write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactFormatError):
        load_openai_clip_state_dict(garbage_pt)
