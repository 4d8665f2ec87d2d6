"""GenerationConfig: the one home of the seven sampling settings."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.generation_config import GENERATION_FIELDS, GenerationConfig


def test_defaults_are_the_papers_evaluation_settings():
    # MoGenTS eval_res.py: 10 steps, guidance 4 / 5, top-k 0.9, temperatures 1, no Gumbel
    assert GenerationConfig().to_dict() == {
        "time_steps": 10,
        "cond_scale": 4.0,
        "res_cond_scale": 5.0,
        "topkr": 0.9,
        "temperature": 1.0,
        "res_temperature": 1.0,
        "gumbel_sample": False,
    }
    assert tuple(GenerationConfig().to_dict()) == GENERATION_FIELDS


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"time_steps": 0}, "time_steps must be an integer >= 1"),
        ({"time_steps": 2.5}, "time_steps must be an integer >= 1"),
        ({"time_steps": True}, "time_steps must be an integer >= 1"),
        ({"cond_scale": -1.0}, "cond_scale must be a finite number >= 0"),
        ({"res_cond_scale": float("nan")}, "res_cond_scale must be a finite number >= 0"),
        ({"topkr": 1.0}, "topkr must be in [0, 1)"),
        ({"topkr": "0.9"}, "topkr must be in [0, 1)"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0"),
        ({"res_temperature": float("inf")}, "res_temperature must be a finite number > 0"),
        ({"gumbel_sample": "yes"}, "gumbel_sample must be True or False"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(changes, message):
    with pytest.raises(InvalidInputError) as err:
        GenerationConfig(**changes)
    assert message in str(err.value)


def test_values_become_plain_python_and_json_round_trips():
    config = GenerationConfig(time_steps=np.int64(18), cond_scale=np.float32(2.5), topkr=0)
    assert type(config.time_steps) is int and type(config.cond_scale) is float
    assert config.topkr == 0.0 and type(config.topkr) is float
    again = GenerationConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and hash(again) == hash(config)


def test_frozen_replace_and_from_dict():
    config = GenerationConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.time_steps = 3  # type: ignore[misc]
    changed = config.replace(time_steps=18, cond_scale=None)
    assert changed.time_steps == 18 and changed.cond_scale == config.cond_scale
    assert config.time_steps == 10
    with pytest.raises(InvalidInputError, match="time_steps must be"):
        config.replace(time_steps=-2)
    assert GenerationConfig.from_dict({"gumbel_sample": True}).gumbel_sample is True
    with pytest.raises(InvalidInputError) as err:
        GenerationConfig.from_dict({"time_step": 3})
    assert "time_step" in str(err.value) and "time_steps" in str(err.value)


def test_importing_it_imports_no_torch():
    code = (
        "import sys; import hftrainer_mogents.generation_config as g; g.GenerationConfig(); "
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
