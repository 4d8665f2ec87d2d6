"""``prepare_call`` / ``MoGenTSPipeline._prepare_call``: one place resolves a call's settings
(GenerationConfig + per-call overrides), seed and generators for ``__call__``, ``edit`` and
``generate_long``."""

from __future__ import annotations

import pytest
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.pipeline.prepare import PreparedCall, prepare_call, sample_seed

CPU = torch.device("cpu")


def _prepare(n_texts: int = 3, **options) -> PreparedCall:
    return prepare_call(GenerationConfig(), CPU, n_texts, **options)


def _draws(generators: list[torch.Generator]) -> list[float]:
    return [float(torch.rand((), generator=g)) for g in generators]


def test_settings_merge_config_and_overrides():
    base = GenerationConfig(time_steps=7, cond_scale=2.0)
    default = prepare_call(base, CPU, 1, seed=0)
    assert default.config == base
    given = GenerationConfig(time_steps=3, topkr=0.5)
    call = prepare_call(base, CPU, 1, generation_config=given, seed=0, cond_scale=1.5, topkr=None)
    # the call's config replaces the default one; an override replaces one field; None keeps it
    assert call.config == GenerationConfig(time_steps=3, topkr=0.5, cond_scale=1.5)
    assert list(call.settings()) == [*GenerationConfig().to_dict(), "batch_size", "mode", "seed"]
    assert call.settings()["cond_scale"] == 1.5 and call.settings()["seed"] == 0
    with pytest.raises(InvalidInputError):
        prepare_call(base, CPU, 1, seed=0, time_steps=0)


def test_a_seed_gives_each_sample_its_own_generator():
    call = _prepare(seed=5, batch_size=2)
    assert call.seed == 5 and call.generators is None and call.batch_size == 2
    expected = [torch.Generator().manual_seed(sample_seed(5, i)) for i in range(1, 3)]
    assert _draws(call.sample_generators(1, 3)) == _draws(expected)
    # fresh generators each time: a batch's draws do not depend on an earlier batch
    assert _draws(call.sample_generators(1, 2)) == _draws(call.sample_generators(1, 2))


def test_one_generator_seeds_a_fast_call_and_is_the_reference_generator():
    gen = torch.Generator().manual_seed(11)
    twin = torch.Generator().manual_seed(11)
    call = _prepare(generator=gen)
    assert call.seed == int(torch.randint(2**63 - 1, (1,), generator=twin))
    assert call.generators is None
    assert gen.get_state().equal(twin.get_state())  # the call drew exactly one number
    ref_gen = torch.Generator().manual_seed(11)
    ref = _prepare(generator=ref_gen, mode="reference")
    assert ref.seed is None and ref.batch_generator() is ref_gen
    seeded = _prepare(seed=4, mode="reference")
    first, again = seeded.batch_generator(), seeded.batch_generator()
    assert first is not again and _draws([first]) == _draws([again])  # re-seeded per batch


def test_a_list_of_generators_draws_everything():
    gens = [torch.Generator().manual_seed(k) for k in range(3)]
    call = _prepare(generator=gens)
    assert call.seed is None
    assert all(a is b for a, b in zip(call.sample_generators(1, 3), gens[1:]))
    assert call.settings()["seed"] is None


def test_no_seed_draws_one_to_return():
    calls = [_prepare() for _ in range(2)]
    assert all(isinstance(c.seed, int) and 0 <= c.seed < 2**63 for c in calls)
    assert calls[0].seed != calls[1].seed


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": 1, "generator": torch.Generator()}, "not both"),
        ({"seed": -1}, r"seed must be in \[0, 2\*\*63\)"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"mode": "slow"}, "mode must be one of"),
        ({"mode": "reference", "reference_refusal": "no reference here"}, "no reference here"),
        ({"generator": [torch.Generator()]}, "got 3 texts but 1 generators"),
        ({"generator": [torch.Generator()] * 3, "mode": "reference"}, "draws from one generator"),
    ],
    ids=["seed-and-generator", "seed-range", "batch-size", "mode", "refused", "list-size", "ref"],
)
def test_bad_calls_are_refused_before_anything_is_drawn(options, message):
    with pytest.raises(InvalidInputError, match=message):
        _prepare(**options)


def test_a_refused_call_leaves_the_generator_alone():
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    with pytest.raises(InvalidInputError, match="batch_size"):
        _prepare(generator=gen, batch_size=0)
    with pytest.raises(InvalidInputError, match="no editing"):
        _prepare(generator=gen, mode="reference", reference_refusal="no editing")
    assert gen.get_state().equal(state)


def test_the_pipeline_methods_start_at_prepare_call(tiny_pipeline, monkeypatch):
    """``__call__``, ``edit`` and ``generate_long`` all resolve their settings through
    ``_prepare_call``, against the pipeline's own generation_config."""
    assert tiny_pipeline._prepare_call(1, seed=0).config == tiny_pipeline.generation_config
    seen: list[tuple[int, dict]] = []
    original = tiny_pipeline._prepare_call

    def recorder(n_texts, **options):
        seen.append((n_texts, options))
        return original(n_texts, **options)

    monkeypatch.setattr(tiny_pipeline, "_prepare_call", recorder)
    out = tiny_pipeline(["a man walks", "a man runs"], [40, 44], seed=2, time_steps=1)
    assert seen[-1][0] == 2 and seen[-1][1]["time_steps"] == 1 and seen[-1][1]["seed"] == 2
    assert out.generation_config.time_steps == 1
    edited = tiny_pipeline.edit(out.motions[0], "a man jumps", [(0, 20)], seed=3, time_steps=1)
    assert seen[-1][0] == 1 and seen[-1][1]["reference_refusal"]
    assert edited.settings["seed"] == 3
    seen.clear()
    long = tiny_pipeline.generate_long(["walks", "sits"], [40, 40], seed=4, time_steps=1)
    # its own call first (seed 4), then the first window and one edit window
    assert [n for n, _ in seen] == [1, 1, 1] and seen[0][1]["seed"] == 4
    assert [options["seed"] for _, options in seen[1:]] == [sample_seed(4, 0), sample_seed(4, 1)]
    assert long.seed == 4 and long.generation_config.time_steps == 1
