"""The RVQ-VAE's training-time residual quantiser: Gumbel-max code choice, EMA codebooks with
dead-code reset, quantizer dropout (the behaviour of MoMask's ``QuantizeEMAReset`` under
MoGenTS's ``ResidualVQ.forward``).

The inference network keeps only the codebooks (``modeling/quantizer.py``); this module holds
the training-only statistics as buffers (``code_sum (S, K, D)``, ``code_count (S, K)``,
``initialised (S,)``, one slot ``S`` per distinct codebook), so a checkpoint carries them, and
updates the inference codebooks in place, so an exported artifact has the trained codes.

One training call, per active layer ``i`` (rows ``x`` = the layer's input, ``(N, D)``):

1. (only with ``init_from_batch`` and a slot not yet initialised) codebook = the first ``K``
   rows of ``tile(x)``, ``sum`` = codebook, ``count`` = 1;
2. choice: ``argmax(-dist / temperature + g)``, ``g = -log(-log u)`` with both logs' arguments
   clamped at 1e-20 and ``u`` uniform of shape ``(N, K)``; ``dist = |x|^2 - 2 x C^T + |C|^2``
   (eval mode: the nearest code);
3. the chosen codes are read from the codebook *before* its update;
4. EMA on the chosen ids: ``sum <- mu sum + (1 - mu) sum_n x_n``, ``count <- mu count +
   (1 - mu) n_k``; codes with ``count >= 1`` become ``sum / count``, the others (dead codes)
   become row ``k`` of ``tile(x)`` (``sum``/``count`` untouched), every step;
5. commitment ``mse(x, code)``, the output ``x + (code - x)`` with the difference detached
   (straight-through), the next layer's input ``x - output`` (detached output).

``tile(x)`` is ``x`` itself when ``N >= K``; otherwise ``x`` repeated ``ceil(K / N)`` times plus
Gaussian noise of std ``0.01 / sqrt(D)`` (one ``randn`` draw of the repeated shape). Before the
layers, quantizer dropout draws ``random() < p`` from ``draws.python`` and, when it fires,
``s = randrange(0, Q)``: the layers after ``s`` are skipped (ids -1) for the whole batch. Commit
loss and perplexity are averaged over the active layers.

Draw order of one call (all from :class:`~.draws.Draws`, in both modes): ``random()``
[``randrange``], then per active layer: [init ``randn`` if tiling], ``uniform (N, K)``, [update
``randn`` if tiling]. This is the official order, so reference and default mode draw alike.

**Several processes.** Under a shard (``draws.world_size > 1``, an initialised
``torch.distributed`` group of that size), ``x`` is this process's rows of the global batch's,
sample-major and in rank order. The Gumbel uniforms are a per-sample draw (default mode: the
global ``(N_global, K)`` draw, this process's rows); the EMA statistics of a step (``sum_n x_n``
and ``n_k``) are summed over the processes, and the rows that initialise and reset codes are
the global batch's (every process's rows gathered, in rank order), so every process keeps the
same codebooks, those of one process trained on the whole batch (the tiling noise is a shared
draw; in reference mode, whose generators differ per process, rank 0's reset rows are
broadcast). The quantizer-dropout draws must be the same in every process (the loop seeds
``draws.python`` alike on all ranks): the layers run, and their collectives, follow them.

Shape symbols: ``N`` rows, ``D`` code width, ``K`` codes, ``Q`` layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.objectives.draws import Draws

__all__ = [
    "GUMBEL_EPS",
    "TILE_NOISE",
    "QuantizerOutput",
    "EMAResidualQuantizer",
    "code_distance",
    "gumbel_choice",
    "perplexity",
    "tile_rows",
]

GUMBEL_EPS = 1e-20  # clamp of both logs of the Gumbel noise
TILE_NOISE = 0.01  # std of the tiling noise, times 1 / sqrt(D)


@dataclass
class QuantizerOutput:
    """One residual-quantiser call.

    Attributes:
        quantized: ``(N, D)`` the straight-through sum of the active layers' codes (its gradient
            reaches the input once per active layer).
        ids: ``(N, Q)`` int64 chosen codes, -1 in skipped layers.
        commit_loss: scalar, mean over active layers of ``mse(input, code)`` (with graph).
        perplexity: scalar (detached), mean over active layers of the code-usage perplexity.
        active: how many layers ran (``Q`` unless quantizer dropout fired).
    """

    quantized: Tensor
    ids: Tensor
    commit_loss: Tensor
    perplexity: Tensor
    active: int


def _device_for(draws: Draws, device: torch.device) -> torch.device:
    # a generator draws on its own device; without one, draw where the data is
    return draws.generator.device if draws.generator is not None else device


def tile_rows(x: Tensor, nb_code: int, draws: Draws) -> Tensor:
    """Rows to reset codes from: ``x`` when it has at least ``nb_code`` rows; otherwise ``x``
    repeated ``ceil(nb_code / N)`` times plus noise of std ``0.01 / sqrt(D)`` (one ``randn``
    of the repeated shape from ``draws``).

    Args:
        x: ``(N, D)``.
        nb_code: ``K``.
        draws: random source.

    Returns:
        ``(max(N, K'), D)`` with at least ``K`` rows.
    """
    rows, dim = x.shape
    if rows >= nb_code:
        return x
    repeated = x.repeat(-(-nb_code // rows), 1)
    noise = draws.randn(
        *repeated.shape, device=_device_for(draws, x.device), dtype=repeated.dtype
    ).to(x.device)
    return repeated + noise * (TILE_NOISE / math.sqrt(dim))


def code_distance(x: Tensor, codebook: Tensor) -> Tensor:
    """Squared distances ``(N, K)`` written as ``|x|^2 - 2 x C^T + |C|^2`` (the official
    expansion, so that near-ties round alike)."""
    codes_t = codebook.t()  # (D, K)
    return x.pow(2).sum(-1, keepdim=True) - 2 * (x @ codes_t) + codes_t.pow(2).sum(0, keepdim=True)


def gumbel_choice(distance: Tensor, temperature: float, uniform: Tensor) -> Tensor:
    """Gumbel-max choice ``argmax(-distance / temperature - log(-log u))`` (both logs'
    arguments clamped at 1e-20).

    Args:
        distance: ``(N, K)``.
        temperature: ``> 0``.
        uniform: ``(N, K)`` draws in ``[0, 1)``.

    Returns:
        ``(N,)`` int64.
    """
    noise = -torch.log((-torch.log(uniform.clamp(min=GUMBEL_EPS))).clamp(min=GUMBEL_EPS))
    return (-distance / temperature + noise).argmax(-1)


def perplexity(counts: Tensor) -> Tensor:
    """``exp(entropy)`` of the code usage ``counts (K,)``: ``exp(-sum p log(p + 1e-7))``."""
    prob = counts / counts.sum()
    return torch.exp(-torch.sum(prob * torch.log(prob + 1e-7)))


class EMAResidualQuantizer(nn.Module):
    """Training-time residual quantiser over a stream's inference codebooks (see the module
    docstring for the algorithm).

    The codebooks are not held here: :meth:`forward` takes them and, in training, writes the
    updated codes into them in place. The EMA statistics are float32 buffers.

    Args:
        codebooks: the stream's ``Q`` codebooks ``(K, D)`` (``ResidualQuantizer.codebooks``);
            with ``shared=True`` one tensor repeated.
        mu: EMA decay (official 0.99).
        dropout_prob: quantizer-dropout probability (official 0.2).
        temperature: Gumbel temperature of the training choice (official 0.5; 0 = nearest code).
        init_from_batch: ``True`` (training from scratch) fills each codebook from its first
            training batch, as the official code does (``count = 1``); ``False`` (fine-tuning,
            the default) keeps the given codebooks and starts ``count = initial_count``,
            ``sum = initial_count * codebook`` (so that ``sum / count`` is the codebook).
        initial_count: the EMA count every code starts with when fine-tuning (> 0). A code
            the batches do not choose keeps ``initial_count * mu^s`` after ``s`` steps and is
            reset to a batch row once that falls below 1: with the official 1.0 every code a
            first fine-tuning batch misses is wiped at once. Ignored with ``init_from_batch``.
    """

    def __init__(
        self,
        codebooks: Sequence[Tensor],
        *,
        mu: float = 0.99,
        dropout_prob: float = 0.2,
        temperature: float = 0.5,
        init_from_batch: bool = False,
        initial_count: float = 1.0,
    ) -> None:
        super().__init__()
        if not codebooks:
            raise InvalidInputError("a residual quantiser needs at least one codebook")
        if not 0.0 <= dropout_prob <= 1.0 or not 0.0 <= mu <= 1.0 or temperature < 0:
            raise InvalidInputError(
                f"mu ({mu}) and dropout_prob ({dropout_prob}) must lie in [0, 1] and temperature "
                f"({temperature}) be >= 0"
            )
        if not initial_count > 0 or not math.isfinite(initial_count):
            raise InvalidInputError(
                f"initial_count must be a positive finite EMA count, got {initial_count}"
            )
        self.mu = float(mu)
        self.dropout_prob = float(dropout_prob)
        self.temperature = float(temperature)
        self.num_layers = len(codebooks)
        # layer -> statistics slot: layers sharing one codebook tensor share its statistics
        slots: list[int] = []
        distinct: list[Tensor] = []
        for codebook in codebooks:
            match = next((k for k, c in enumerate(distinct) if c is codebook), None)
            if match is None:
                distinct.append(codebook)
                match = len(distinct) - 1
            slots.append(match)
        self.slots = tuple(slots)
        nb_code, dim = codebooks[0].shape
        self.nb_code, self.code_dim = int(nb_code), int(dim)
        count = 1.0 if init_from_batch else float(initial_count)
        self.initial_count = count
        first = torch.stack([c.detach().float() for c in distinct])  # (S, K, D)
        self.register_buffer("code_sum", first * count)
        self.register_buffer("code_count", torch.full(first.shape[:2], count, device=first.device))
        self.register_buffer(
            "initialised", torch.full((len(distinct),), not init_from_batch, device=first.device)
        )

    def extra_repr(self) -> str:
        return (
            f"layers={self.num_layers}, nb_code={self.nb_code}, code_dim={self.code_dim}, "
            f"mu={self.mu}, dropout_prob={self.dropout_prob}, temperature={self.temperature}, "
            f"initial_count={self.initial_count}"
        )

    def forward(
        self, x: Tensor, codebooks: Sequence[Tensor], draws: Draws, *, training: bool
    ) -> QuantizerOutput:
        """Quantise rows residually.

        Args:
            x: ``(N, D)`` latent rows, in the official row order (it fixes which rows reset dead
                codes and the layout of the Gumbel draws), sample-major: under a shard, this
                process's rows of the global batch's (see the module docstring).
            codebooks: the ``Q`` codebooks the statistics belong to (updated in place when
                ``training``).
            draws: random source (used only when ``training``).
            training: Gumbel choice, quantizer dropout and EMA update; ``False``: nearest code,
                all layers, nothing drawn or updated (the official eval mode).

        Returns:
            :class:`QuantizerOutput`.
        """
        if len(codebooks) != self.num_layers or tuple(codebooks[0].shape) != (
            self.nb_code,
            self.code_dim,
        ):
            raise InvalidInputError(
                f"this quantiser's statistics are for {self.num_layers} codebooks of "
                f"({self.nb_code}, {self.code_dim}); got {len(codebooks)} of "
                f"{tuple(codebooks[0].shape)}"
            )
        if x.dim() != 2 or x.shape[1] != self.code_dim:
            raise InvalidInputError(f"x must be (N, {self.code_dim}), got {tuple(x.shape)}")
        if self.code_sum.device != x.device:  # follow the VQ's device
            self.to(x.device)
        if training:
            _check_group(draws)
        active = self.num_layers
        if training and draws.python.random() < self.dropout_prob:
            active = draws.python.randrange(0, self.num_layers) + 1
        residual = x
        quantized: Tensor | float = 0.0
        ids, commits, perplexities = [], [], []
        for layer, codebook in enumerate(codebooks):
            if layer >= active:
                ids.append(torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device))
                continue
            out, index, commit, ppl = self._layer(
                self.slots[layer], residual, codebook, draws, training
            )
            # the official subtracts the straight-through value, not the code: keep its rounding
            residual = residual - out.detach()
            quantized = quantized + out
            ids.append(index)
            commits.append(commit)
            perplexities.append(ppl)
        return QuantizerOutput(
            quantized=quantized,  # type: ignore[arg-type]  # at least one layer is active
            ids=torch.stack(ids, -1),
            commit_loss=sum(commits) / active,  # type: ignore[arg-type]
            perplexity=(sum(perplexities) / active).detach(),  # type: ignore[union-attr]
            active=active,
        )

    def _layer(
        self, slot: int, x: Tensor, codebook: Tensor, draws: Draws, training: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One layer: (straight-through output, ids, commitment, perplexity)."""
        # the choice and the statistics in float32 whatever the autocast or the model's dtype
        # (the official trains in float32; a bf16 distance would change the chosen codes)
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            rows = x.detach().float()
            everyone = _gather_rows(rows, draws) if training else rows
            if training and not bool(self.initialised[slot]):
                self._init_from(slot, everyone, codebook, draws)
            distance = code_distance(rows, codebook.float())  # (N, K)
            if training and self.temperature > 0:
                uniform = draws.rand(
                    *distance.shape, device=_device_for(draws, distance.device), per_sample=True
                ).to(distance)
                index = gumbel_choice(distance, self.temperature, uniform)
            else:
                index = (-distance).argmax(-1)  # the official eval path: argmax of -dist
            code = F.embedding(index, codebook).to(x.dtype)  # (N, D), before the update
            if training:
                ppl = self._update(slot, rows, everyone, index, codebook, draws)
            else:
                ppl = perplexity(torch.bincount(index, minlength=self.nb_code).float())
        commit = F.mse_loss(x.float(), code.float())
        return x + (code - x).detach(), index, commit, ppl

    def _init_from(self, slot: int, everyone: Tensor, codebook: Tensor, draws: Draws) -> None:
        """The official first-batch init (only with ``init_from_batch``), from the global
        batch's rows."""
        first = _same_everywhere(tile_rows(everyone, self.nb_code, draws)[: self.nb_code], draws)
        codebook.copy_(first)
        self.code_sum[slot] = first
        self.code_count[slot] = 1.0
        self.initialised[slot] = True

    def _update(
        self,
        slot: int,
        x: Tensor,
        everyone: Tensor,
        index: Tensor,
        codebook: Tensor,
        draws: Draws,
    ) -> Tensor:
        """EMA of the chosen codes and dead-code reset (``x`` this process's rows, ``everyone``
        the global batch's); returns the global batch's perplexity."""
        onehot = torch.zeros(self.nb_code, x.shape[0], device=x.device, dtype=x.dtype)
        onehot.scatter_(0, index.view(1, -1), 1)  # (K, N)
        batch_sum = onehot @ x  # (K, D)
        batch_count = onehot.sum(-1)  # (K,)
        if draws.world_size > 1:
            # one collective for both: the global batch's sums and counts
            both = torch.cat([batch_sum, batch_count[:, None]], 1)
            dist.all_reduce(both)
            batch_sum, batch_count = both[:, :-1], both[:, -1]
        replacement = _same_everywhere(
            tile_rows(everyone, self.nb_code, draws)[: self.nb_code], draws
        )
        code_sum = self.mu * self.code_sum[slot] + (1.0 - self.mu) * batch_sum
        code_count = self.mu * self.code_count[slot] + (1.0 - self.mu) * batch_count
        self.code_sum[slot] = code_sum
        self.code_count[slot] = code_count
        used = (code_count.view(-1, 1) >= 1.0).float()
        update = code_sum / code_count.view(-1, 1)
        codebook.copy_(used * update + (1 - used) * replacement)
        return perplexity(batch_count)


def _check_group(draws: Draws) -> None:
    """A shard of several processes needs their process group (the statistics are summed)."""
    if draws.world_size == 1:
        return
    group = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if group != draws.world_size:
        raise InvalidInputError(
            f"the VQ's draws are a shard of {draws.world_size} processes, but the torch."
            f"distributed process group has {group}: initialise the group (the loop and the "
            "host's accelerate launch do) or draw with world_size=1"
        )


def _gather_rows(rows: Tensor, draws: Draws) -> Tensor:
    """The global batch's rows: every process's ``rows`` (equal counts), in rank order."""
    if draws.world_size == 1:
        return rows
    parts = [torch.empty_like(rows) for _ in range(draws.world_size)]
    dist.all_gather(parts, rows.contiguous())
    return torch.cat(parts)


def _same_everywhere(rows: Tensor, draws: Draws) -> Tensor:
    """Rank 0's ``rows`` in every process, when the processes' generators differ (reference
    mode under a shard draws per process); default-mode draws are already shared."""
    if draws.world_size > 1 and draws.reference:
        rows = rows.contiguous()
        dist.broadcast(rows, src=0)
    return rows
