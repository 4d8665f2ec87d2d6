"""One call's resolved settings, before any compute: the :class:`GenerationConfig` with the call's
overrides, the seed and the generators (as transformers' ``_prepare_generation_config`` resolves a
``generate`` call's settings once). ``__call__``, ``edit`` and ``generate_long`` all start here."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.pipeline.inputs import _check_execution

__all__ = ["PreparedCall", "prepare_call", "sample_seed"]


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a call seeded with ``seed`` (well mixed, 63 bits)."""
    state = np.random.SeedSequence([int(seed) & (2**63 - 1), int(index)]).generate_state(
        2, np.uint32
    )
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def _check_randomness(
    seed: Any, generator: Any, n_texts: int, mode: str, device: torch.device
) -> torch.Generator | list[torch.Generator] | None:
    """Validate ``seed``/``generator``; returns None, one generator, or one per text."""
    if seed is not None and generator is not None:
        raise InvalidInputError("give seed or generator, not both")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InvalidInputError(f"seed must be an integer, got {seed!r}")
    if seed is not None and not 0 <= int(seed) < 2**63:
        # seeds are used modulo 2**63: outside the range two seeds would give one motion
        raise InvalidInputError(f"seed must be in [0, 2**63), got {seed}")
    if generator is None:
        return None
    many = isinstance(generator, (list, tuple))
    gens = list(generator) if many else [generator]
    for i, gen in enumerate(gens):
        if not isinstance(gen, torch.Generator):
            where = f"generator[{i}]" if many else "generator"
            raise InvalidInputError(f"{where} must be a torch.Generator, got {type(gen).__name__}")
        if gen.device.type != "cpu" and gen.device.type != device.type:
            raise InvalidInputError(
                f"a {gen.device.type} generator cannot drive a pipeline on {device}; use a CPU "
                f"generator or torch.Generator(device={str(device)!r})"
            )
    gens_or_one: torch.Generator | list[torch.Generator] = gens if many else gens[0]
    if many and len(gens) != n_texts:  # a list always means one generator per text
        raise InvalidInputError(
            f"got {n_texts} texts but {len(gens)} generators; give one generator per text, or "
            "one generator (not in a list) for the whole call"
        )
    if mode == "reference":
        if not isinstance(gens_or_one, torch.Generator):
            raise InvalidInputError(
                "mode='reference' draws from one generator, as the official code does; pass one "
                "generator (or a seed), or use mode='fast' for one generator per text"
            )
        if gens_or_one.device.type != device.type:
            raise InvalidInputError(
                f"mode='reference' needs its generator on the pipeline's device ({device}), got "
                f"a {gens_or_one.device.type} generator"
            )
    return gens_or_one


@dataclass(frozen=True)
class PreparedCall:
    """A call's settings, seed and generators, resolved once by :func:`prepare_call`.

    Attributes:
        config: the sampling settings (the pipeline's or the call's ``generation_config`` with
            the call's single-setting overrides applied).
        seed: the call's seed (given, drawn from the caller's single generator in fast mode, or
            drawn at random); None when the caller's generators draw everything.
        generators: the caller's generators when they draw everything: one per text (fast
            mode) or the official single generator (reference mode); else None.
        mode: ``"fast"`` or ``"reference"``.
        batch_size: texts per forward batch.
        device: where the seeded generators are created (the pipeline's device).
    """

    config: GenerationConfig
    seed: int | None
    generators: torch.Generator | list[torch.Generator] | None
    mode: str
    batch_size: int
    device: torch.device

    def sample_generators(self, start: int, stop: int) -> list[torch.Generator]:
        """Fast mode: the generators of texts ``start .. stop - 1``, the caller's or each seeded
        from :attr:`seed` and the text's index (so a sample does not depend on its batch)."""
        if self.generators is None:
            return [
                torch.Generator(device=self.device).manual_seed(sample_seed(self.seed, i))
                for i in range(start, stop)
            ]
        return list(self.generators[start:stop])

    def batch_generator(self) -> torch.Generator:
        """Reference mode: the generator of the next batch: the caller's, which runs on across
        batches, or a fresh one seeded with :attr:`seed` (re-seeded per batch, as the official
        scripts do)."""
        if self.generators is None:
            return torch.Generator(device=self.device).manual_seed(self.seed)
        return self.generators

    def settings(self) -> dict[str, Any]:
        """The flat record of the call (``MoGenTSOutput.settings``): the ``config`` fields,
        ``batch_size``, ``mode`` and ``seed``."""
        return {
            **self.config.to_dict(),
            "batch_size": self.batch_size,
            "mode": self.mode,
            "seed": self.seed,
        }


def prepare_call(
    default_config: GenerationConfig,
    device: torch.device,
    n_texts: int,
    *,
    generation_config: GenerationConfig | Mapping[str, Any] | None = None,
    seed: int | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    batch_size: int = 32,
    mode: str = "fast",
    reference_refusal: str | None = None,
    **overrides: Any,
) -> PreparedCall:
    """Check and resolve a call's settings, seed and generators; nothing is drawn before every
    check has passed.

    Parameters
    ----------
    default_config : GenerationConfig
        The pipeline's settings, used when ``generation_config`` is None.
    device : torch.device
        The pipeline's device (generators must be able to drive it).
    n_texts : int
        Texts of the call (a list of generators needs one per text).
    generation_config, seed, generator, batch_size, mode
        As in :meth:`MoGenTSPipeline.__call__` (``generation_config`` may be a dict of
        settings, :meth:`GenerationConfig.from_dict`).
    reference_refusal : str, optional
        When given, ``mode="reference"`` is refused with this message (a call the official code
        has no counterpart of).
    **overrides
        Single settings of the config (``time_steps=``, ``cond_scale=``, ...); None keeps the
        config's value.

    Returns
    -------
    PreparedCall
        With a seed drawn at random when neither ``seed`` nor ``generator`` is given; in fast
        mode one generator seeds the call (its draw is the call's seed, so the samples stay
        independent of their batch).

    Raises
    ------
    InvalidInputError
        A bad setting, batch size, mode, seed or generator.
    """
    base = default_config if generation_config is None else generation_config
    config = GenerationConfig.coerce(base).replace(**overrides)
    _check_execution(batch_size, mode)
    if reference_refusal is not None and mode != "fast":
        raise InvalidInputError(reference_refusal)
    generators = _check_randomness(seed, generator, n_texts, mode, device)
    if isinstance(generators, torch.Generator) and mode == "fast":
        draw = torch.randint(2**63 - 1, (1,), generator=generators, device=generators.device)
        seed, generators = int(draw), None
    elif seed is None and generators is None:
        seed = secrets.randbits(63)
    return PreparedCall(
        config=config,
        seed=None if seed is None else int(seed),
        generators=generators,
        mode=mode,
        batch_size=batch_size,
        device=device,
    )
