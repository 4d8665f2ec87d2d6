"""The CLIP ViT-B/32 text tower (OpenAI ``clip.model.CLIP.encode_text``), weight-compatible.

Parameter names are the text-tower keys of OpenAI's ``CLIP.state_dict()``, so the text subset of an
OpenAI checkpoint (:func:`select_text_state_dict`) loads with ``strict=True``.

Numerics (``TextEncoderConfig.dtype`` or :meth:`CLIPTextEncoder.set_numerics`):

- ``"float16"``: the official MoGenTS path, ``clip.load(..., jit=False)`` then
  ``clip.model.convert_weights``: Linear / attention weights and ``text_projection`` in fp16, token
  and positional embeddings and LayerNorm parameters in fp32, activations in fp16, every LayerNorm
  computed in fp32 (and rounded back), the pooled feature returned as float32. On CPU this gives
  the same bits as the official code (checked against a stock ``nn.MultiheadAttention`` rebuild).
- ``"float32"``: the same weights, everything in fp32.
- ``"bfloat16"``: the fp16 layout with bf16 instead (a fast path for AMX CPUs and tensor cores).

The activation dtype is read from the weights (``text_projection``), never hard-coded, so
``encoder.to(torch.bfloat16)`` also runs.

Why this module and not transformers' ``CLIPTextModelWithProjection``: the official fp16 path is
mixed precision (fp16 matmuls, LayerNorm in fp32 rounded back to fp16), and parity with MoGenTS
needs exactly that arithmetic. transformers' model runs in one dtype: in float32 it gives the same
bits as this module (checked on the fixture weights, ``sdpa`` attention), but in float16 its
LayerNorms compute in fp16 and some features move by one fp16 step. Keeping OpenAI's parameter
names also loads an OpenAI checkpoint's text subset without renaming.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from hftrainer_mogents.config import TextEncoderConfig
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.utils.io import check_state_dict

if TYPE_CHECKING:
    from hftrainer_mogents.modeling.tokenizer import CLIPTokenizer

__all__ = [
    "CLIPTextEncoder",
    "ResidualAttentionBlock",
    "TEXT_KEY_PREFIXES",
    "select_text_state_dict",
    "expected_text_keys",
    "quick_gelu",
    "layer_norm_fp32",
    "causal_self_attention",
    "resolve_dtype",
]

# Top-level names of the text tower in OpenAI's CLIP.state_dict(); everything else (``visual.*``,
# ``logit_scale``, TorchScript attributes such as ``context_length``) belongs to other parts.
TEXT_KEY_PREFIXES = (
    "token_embedding.",
    "positional_embedding",
    "transformer.",
    "ln_final.",
    "text_projection",
)

_BLOCK_KEYS = (
    "attn.in_proj_weight",
    "attn.in_proj_bias",
    "attn.out_proj.weight",
    "attn.out_proj.bias",
    "ln_1.weight",
    "ln_1.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
)

_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float16"`` / ``"float32"`` / ``"bfloat16"`` (or the torch dtype) as a torch dtype.

    Raises:
        InvalidInputError: any other value.
    """
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise InvalidInputError(f"text encoder dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def select_text_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The text-tower entries of a full OpenAI CLIP state dict.

    Args:
        state_dict: ``CLIP.state_dict()`` layout (any dtype); ``visual.*``, ``logit_scale`` and
            any other key are dropped.

    Returns:
        A new dict holding the same tensor objects under the same keys.
    """
    return {k: v for k, v in state_dict.items() if k.startswith(TEXT_KEY_PREFIXES)}


def expected_text_keys(layers: int) -> list[str]:
    """The parameter names of a text tower with ``layers`` residual blocks, in module order."""
    keys = ["token_embedding.weight", "positional_embedding"]
    for i in range(layers):
        keys += [f"transformer.resblocks.{i}.{name}" for name in _BLOCK_KEYS]
    return [*keys, "ln_final.weight", "ln_final.bias", "text_projection"]


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's sigmoid approximation of GELU, ``x * sigmoid(1.702 x)``, in ``x``'s dtype."""
    return x * torch.sigmoid(1.702 * x)


def layer_norm_fp32(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """LayerNorm over the last axis computed in float32, returned in ``x``'s dtype (CLIP's rule for
    fp16 activations).

    Args:
        x: ``(..., W)`` activations.
        weight: ``(W,)`` scale, any float dtype.
        bias: ``(W,)`` shift, any float dtype.
        eps: variance epsilon.

    Returns:
        ``(..., W)`` in ``x.dtype``.
    """
    out = F.layer_norm(x.float(), (x.shape[-1],), weight.float(), bias.float(), eps)
    return out.to(x.dtype)


def causal_self_attention(
    x: torch.Tensor,
    in_proj_weight: torch.Tensor,
    in_proj_bias: torch.Tensor,
    out_proj_weight: torch.Tensor,
    out_proj_bias: torch.Tensor,
    num_heads: int,
) -> torch.Tensor:
    """Multi-head self-attention with a causal mask, in ``nn.MultiheadAttention``'s packed weight
    layout, through ``scaled_dot_product_attention``.

    Args:
        x: ``(B, L, W)`` activations.
        in_proj_weight: ``(3W, W)`` packed query/key/value projection.
        in_proj_bias: ``(3W,)``.
        out_proj_weight: ``(W, W)``.
        out_proj_bias: ``(W,)``.
        num_heads: ``H``; head width ``W // H``.

    Returns:
        ``(B, L, W)``; position ``t`` attends to positions ``<= t``.
    """
    b, length, width = x.shape
    qkv = F.linear(x, in_proj_weight, in_proj_bias)  # (B, L, 3W)
    # (B, L, 3W) -> (B, L, 3, H, W/H) -> (3, B, H, L, W/H)
    q, k, v = qkv.view(b, length, 3, num_heads, width // num_heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, L, W/H)
    out = out.transpose(1, 2).reshape(b, length, width)  # (B, L, H, W/H) -> (B, L, W)
    return F.linear(out, out_proj_weight, out_proj_bias)


class _LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` (same parameter names) that computes in fp32 whatever the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm_fp32(x, self.weight, self.bias, self.eps)


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quick_gelu(x)


class _SelfAttention(nn.Module):
    """Holds ``nn.MultiheadAttention``'s parameters (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj``) for :func:`causal_self_attention`."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.num_heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, W) -> (B, L, W)`` causal self-attention."""
        return causal_self_attention(
            x,
            self.in_proj_weight,
            self.in_proj_bias,
            self.out_proj.weight,
            self.out_proj.bias,
            self.num_heads,
        )


class ResidualAttentionBlock(nn.Module):
    """Pre-LayerNorm transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))`` with a
    4x QuickGELU MLP (``mlp.c_fc``, ``mlp.c_proj``)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = _SelfAttention(width, heads)
        self.ln_1 = _LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, 4 * width)),
                    ("gelu", _QuickGELU()),
                    ("c_proj", nn.Linear(4 * width, width)),
                ]
            )
        )
        self.ln_2 = _LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, W) -> (B, L, W)``."""
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class CLIPTextEncoder(nn.Module):
    """CLIP's text tower: token ids -> pooled, projected text feature (not normalised).

    Args:
        config: sizes and numerics; ``None`` gives ViT-B/32 in the official fp16 numerics. Build
            it from a checkpoint with ``TextEncoderConfig.from_state_dict``, or use
            :meth:`from_state_dict`.
        dtype: overrides ``config.dtype`` (``"float16"``, ``"float32"`` or ``"bfloat16"``).

    Examples:
        >>> enc = CLIPTextEncoder(TextEncoderConfig(width=64, heads=1, layers=2), dtype="float32")
        >>> enc(torch.tensor([[49406, 320, 49407] + [0] * 74])).shape
        torch.Size([1, 512])
    """

    def __init__(
        self, config: TextEncoderConfig | None = None, *, dtype: str | torch.dtype | None = None
    ) -> None:
        super().__init__()
        config = config if config is not None else TextEncoderConfig()
        if config.width % config.heads != 0:
            raise InvalidInputError(
                f"text encoder width {config.width} is not divisible by heads {config.heads}"
            )
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.transformer = _Transformer(config.width, config.layers, config.heads)
        self.ln_final = _LayerNorm(config.width)
        self.text_projection = nn.Parameter(torch.empty(config.width, config.embed_dim))
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=config.width**-0.5)
        self.set_numerics(dtype if dtype is not None else config.dtype)

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], *, dtype: str | torch.dtype | None = None
    ) -> CLIPTextEncoder:
        """Build the tower sized from an OpenAI-layout state dict and load its text weights
        strictly (values cast to the numerics' dtypes; fp16 values are kept exactly).

        Args:
            state_dict: full ``CLIP.state_dict()`` or only its text subset.
            dtype: numerics (default ``"float16"``, the official path).

        Returns:
            The encoder in eval mode.

        Raises:
            ArtifactFormatError: a text key is missing, unexpected or has the wrong shape.
        """
        text = select_text_state_dict(state_dict)
        config = TextEncoderConfig.from_state_dict(text)
        if dtype is not None:
            config = config.replace(dtype=_dtype_name(resolve_dtype(dtype)))
        model = cls(config)
        model.load_text_state_dict(text)
        return model.eval()

    def load_text_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """``load_state_dict(select_text_state_dict(state_dict), strict=True)`` with the problems
        named (every missing / unexpected key, each shape mismatch with both shapes).

        Raises:
            ArtifactFormatError: the text weights do not fit this tower.
        """
        text = select_text_state_dict(state_dict)
        check_state_dict(self, text, source=f"CLIP text weights ({self.config})")
        self.load_state_dict(text, strict=True)

    def set_numerics(self, dtype: str | torch.dtype) -> CLIPTextEncoder:
        """Cast the weights, in place, to one of the numerics of the module docstring.

        ``"float16"``/``"bfloat16"``: Linear and attention weights and ``text_projection`` in that
        dtype; embeddings and LayerNorm parameters in float32 (``clip.model.convert_weights``).
        ``"float32"``: everything in float32. Values are rounded once; float16 checkpoints (all
        official CLIP files) survive every round trip exactly.

        Args:
            dtype: ``"float16"``, ``"float32"``, ``"bfloat16"`` or the torch dtype.

        Returns:
            ``self``.
        """
        target = resolve_dtype(dtype)
        for block in self.transformer.resblocks:
            for module in (block.attn, block.mlp):
                for param in module.parameters():
                    param.data = param.data.to(target)
        self.text_projection.data = self.text_projection.data.to(target)
        full = [self.token_embedding, self.ln_final, self.positional_embedding]
        for block in self.transformer.resblocks:
            full += [block.ln_1, block.ln_2]
        for item in full:
            params = [item] if isinstance(item, nn.Parameter) else list(item.parameters())
            for param in params:
                param.data = param.data.float()
        self.config = self.config.replace(dtype=_dtype_name(target))
        return self

    @property
    def dtype(self) -> torch.dtype:
        """Activation dtype (that of ``text_projection``)."""
        return self.text_projection.dtype

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.text_projection.device

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"width={c.width}, layers={c.layers}, heads={c.heads}, embed_dim={c.embed_dim}, "
            f"context_length={c.context_length}, dtype={self.dtype}"
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Text features of token ids.

        Args:
            ids: ``(B, L)`` integer token ids, ``L <= context_length`` (the tokenizer gives
                ``L = 77``, as the official code). Each row is pooled at ``ids.argmax(-1)``, the
                end token. Causal attention makes positions after it irrelevant, so ids cut after
                the last end token give the same feature up to rounding.

        Returns:
            ``(B, embed_dim)`` float32, not normalised.

        Raises:
            InvalidInputError: ``ids`` is not a 2-D integer tensor of at most
                ``context_length`` columns.
        """
        if ids.dim() != 2 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise InvalidInputError(
                f"ids must be a (B, L) integer tensor, got {ids.dtype} of shape {tuple(ids.shape)}"
            )
        length = ids.shape[1]
        if length > self.config.context_length:
            raise InvalidInputError(
                f"ids have {length} positions, more than context_length="
                f"{self.config.context_length}"
            )
        dtype = self.dtype
        x = self.token_embedding(ids).to(dtype)  # (B, L, W)
        x = x + self.positional_embedding[:length].to(dtype)
        x = self.transformer(x)  # (B, L, W)
        pooled = x[torch.arange(ids.shape[0], device=ids.device), ids.argmax(dim=-1)]  # (B, W)
        pooled = self.ln_final(pooled)
        return (pooled @ self.text_projection).float()  # (B, W) @ (W, E) -> (B, E)

    @torch.no_grad()
    def encode(
        self,
        texts: str | Sequence[str],
        tokenizer: CLIPTokenizer | None = None,
    ) -> torch.Tensor:
        """Tokenize captions (``truncate=True``, as MoGenTS does) and encode them.

        Args:
            texts: one caption or ``B`` captions.
            tokenizer: defaults to the shared :meth:`CLIPTokenizer.default`.

        Returns:
            ``(B, embed_dim)`` float32 on the weights' device.
        """
        if tokenizer is None:
            from hftrainer_mogents.modeling.tokenizer import CLIPTokenizer

            tokenizer = CLIPTokenizer.default()
        ids = tokenizer.tokenize(texts, context_length=self.config.context_length, truncate=True)
        return self(ids.to(self.device))
