"""OPDConfig: the m2rl_opd setting parses strictly and rejects what would route a sample wrongly.

Pins: canonical domains only (aliases and unknown names are rejected with the fix), no domain in both
teachers and no_teacher, URLs normalised to scheme://host:port, serve blocks consistent with the URLs
and with each other, sane timeouts/retries/loss options, and a clear error when the setting is absent.
"""

from __future__ import annotations

import argparse

import pytest

from m2rl_slime.config import PLUGIN_SETTINGS, parse_dataclass
from m2rl_slime.errors import ConfigError
from m2rl_slime.opd.config import OPDConfig, base_url, load_opd_config

GOOD = {
    "teachers": {
        "math": {
            "urls": ["http://10.0.0.5:30001", "http://10.0.0.6:30001/generate"],
            "serve": {"model_path": "/ckpt/qwen3-4b-math-rl/", "port": 30001, "gpus": [0]},
        },
        "code": {"urls": ["https://teacher-code:8443"], "name": "coder", "max_concurrency": 8},
    },
    "no_teacher": {"agent": "skip", "if": "error"},
    "task_reward": "zero",
    "loss": {"kl_coef": 0.5, "kl_clip": 10, "pg_coef": 0.1},
}


def parse(raw):
    return parse_dataclass(OPDConfig, raw, "recipe: m2rl_opd")


def test_good_config_parses_with_defaults():
    config = parse(GOOD)
    assert config.teachers["math"].serve.gpus == (0,)
    assert config.loss.kl_clip == 10.0 and config.task_reward == "zero"
    assert config.teacher_name("math") == "qwen3-4b-math-rl" and config.teacher_name("code") == "coder"
    assert config.concurrency("code") == 8 and config.concurrency("math") == 64
    assert config.timeout_s == 300.0 and config.health_endpoint == "/health_generate"
    assert PLUGIN_SETTINGS["m2rl_opd"] == "m2rl_slime.opd.config.OPDConfig"


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"teachers": {}}, "teachers is empty"),
        ({"teachers": {"deepscaler": {"urls": ["http://a:1"]}}}, "alias of 'math'"),
        ({"no_teacher": {"poetry": "skip"}}, "unknown domain in no_teacher 'poetry'"),
        ({"no_teacher": {"math": "skip"}}, "both teachers and no_teacher"),
        ({"no_teacher": {"agent": "maybe"}}, "not one of 'skip', 'error'"),
        ({"teachers": {"math": {"urls": []}}}, "urls is empty"),
        ({"teachers": {"math": {"urls": ["10.0.0.5:30001"]}}}, "must look like http://host:port"),
        ({"teachers": {"math": {"urls": ["http://a:1/v1/chat"]}}}, "must look like http://host:port"),
        ({"teachers": {"math": {"urls": ["http://a:1"], "serve": {"model_path": "/m", "port": 2}}}}, "port 2 is the"),
        (
            {
                "teachers": {
                    "math": {"urls": ["http://a:1"], "serve": {"model_path": "/m", "port": 1, "tp": 2, "gpus": [0]}}
                }
            },
            "teachers['math'].serve",
        ),
        (
            {
                "teachers": {
                    "math": {"urls": ["http://a:1"], "serve": {"model_path": "/m", "port": 1, "gpus": [3]}},
                    "code": {"urls": ["http://b:2"], "serve": {"model_path": "/c", "port": 2, "gpus": [3]}},
                }
            },
            "both assigned GPU 3",
        ),
        (
            {
                "teachers": {
                    "math": {"urls": ["http://a:1"], "serve": {"model_path": "/m", "port": 1}},
                    "code": {"urls": ["http://b:1"], "serve": {"model_path": "/c", "port": 1}},
                }
            },
            "both serve on port 1",
        ),
        ({"timeout_s": 0}, "must be > 0"),
        ({"backoff_s": 5, "backoff_max_s": 1}, "backoff_s <= backoff_max_s"),
        ({"max_concurrency": 0}, "max_concurrency must be >= 1"),
        ({"loss": {"kl_coef": 0, "pg_coef": 0}}, "identically zero"),
        ({"loss": {"kl_clip": -1}}, "kl_clip must be > 0"),
        ({"loss": {"kl_weight": 1}}, "unknown key(s) kl_weight"),
        ({"teacher": {}}, "unknown key(s) teacher"),
        ({"health_endpoint": "health"}, "must start with '/'"),
    ],
)
def test_bad_settings_are_rejected_naming_the_key(patch, needle):
    with pytest.raises(ConfigError) as info:
        parse({**GOOD, **patch})
    assert needle in str(info.value)
    assert str(info.value).startswith("recipe: m2rl_opd")


def test_unknown_domain_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        parse({"teachers": {"chemistry": {"urls": ["http://a:1"]}}})
    assert "math" in str(info.value) and "agent" in str(info.value)


def test_base_url_normalisation():
    assert base_url("http://h:1/generate") == "http://h:1"
    assert base_url(" https://h:443/ ") == "https://h:443"
    with pytest.raises(ConfigError, match="invalid port"):
        base_url("http://h:99999")


def test_load_from_args():
    config = load_opd_config(argparse.Namespace(m2rl_opd=GOOD))
    assert set(config.teachers) == {"math", "code"}
    with pytest.raises(ConfigError, match="m2rl_opd is not set"):
        load_opd_config(argparse.Namespace())
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_opd_config(argparse.Namespace(m2rl_opd=["math"]))


def test_serve_validation_messages():
    from m2rl_slime.opd.config import ServeConfig

    with pytest.raises(ConfigError, match="exactly tp=2"):
        ServeConfig(model_path="/m", port=1, tp=2, gpus=(0,)).validate()
    with pytest.raises(ConfigError, match="not a TCP port"):
        ServeConfig(model_path="/m", port=0).validate()
    with pytest.raises(ConfigError, match="mem_fraction_static"):
        ServeConfig(model_path="/m", port=1, mem_fraction_static=1.5).validate()
