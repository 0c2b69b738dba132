"""Pins the `m2rl_data` setting's validation: every bad mixture names the key and the fix."""

from __future__ import annotations

import pytest

from m2rl_slime.config import parse_dataclass
from m2rl_slime.data.config import DataConfig, PromptTemplate
from m2rl_slime.errors import ConfigError

FILES = {"math": "m.jsonl", "code": "c.jsonl"}


def parse(mapping):
    return parse_dataclass(DataConfig, mapping, "m2rl_data")


def test_defaults_and_full_setting():
    assert parse(None).mixture == "natural"
    cfg = parse(
        {
            "prompt_files": FILES,
            "mixture": "weights",
            "weights": {"math": 3, "code": 1},
            "seed": 5,
            "curriculum": {"mode": "hardness", "ema": 0.5},
            "prepare": {"sources": {"my_set": "math"}, "templates": {"code": {"template": "Code:\n{prompt}"}}},
        }
    )
    assert cfg.weights == {"math": 3.0, "code": 1.0}
    assert cfg.curriculum.mode == "hardness"
    assert cfg.prepare.templates["code"] == PromptTemplate("Code:\n{prompt}")


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"prompt_files": FILES, "mixture": "weights"}, "non-empty weights"),
        ({"prompt_files": FILES, "mixture": "weights", "weights": {"math": 0, "code": 0}}, "sum to a positive"),
        ({"prompt_files": FILES, "mixture": "weights", "weights": {"math": 1, "code": -1}}, "weights.code"),
        (
            {"prompt_files": FILES, "mixture": "weights", "weights": {"math": 1, "code": 1, "if": 1}},
            "weights.if: no prompt file",
        ),
        ({"prompt_files": FILES, "mixture": "weights", "weights": {"math": 1}}, "no weight for pool.*code"),
        ({"prompt_files": FILES, "weights": {"math": 1, "code": 1}}, "only used with mixture: weights"),
        ({"mixture": "temperature", "temperature": 0}, "temperature"),
        ({"mixture": "balanced"}, "mixture"),
        ({"prompt_files": {"bad name": "x.jsonl"}}, "pool name"),
        ({"curriculum": {"ema": 0}}, "ema"),
        ({"curriculum": {"min_factor": 2}}, "min_factor"),
        ({"prepare": {"templates": {"math": {"template": "no placeholder"}}}}, "exactly once"),
        ({"prepare": {"gpqa_template": "{question}"}}, "choices"),
        ({"weigths": {}}, "unknown key"),
    ],
)
def test_bad_settings_name_the_problem(mapping, message):
    with pytest.raises(ConfigError, match=message):
        parse(mapping)
