"""Strict plugin-settings parsing (`m2rl_slime.config.parse_dataclass`)."""

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest

from m2rl_slime.config import parse_dataclass, plugin_setting
from m2rl_slime.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Inner:
    gpus: tuple[int, ...] = ()

    def validate(self):
        if len(self.gpus) > 2:
            raise ConfigError("gpus must list at most 2 GPUs")


@dataclass(frozen=True, slots=True)
class Outer:
    CONFIG_ALIASES: ClassVar[dict] = {"if": "if_"}
    mode: Literal["a", "b"] = "a"
    rate: float = 0.5
    count: int = 1
    flag: bool = False
    name: str | None = None
    inner: Inner | None = None
    table: dict[str, float] = field(default_factory=dict)
    if_: int = 0


def test_defaults_and_coercion():
    cfg = parse_dataclass(Outer, {"rate": 1, "if": 3, "table": {"x": 2}}, "here")
    assert cfg.rate == 1.0 and isinstance(cfg.rate, float) and cfg.if_ == 3 and cfg.table == {"x": 2.0}
    assert parse_dataclass(Outer, None, "here") == Outer()


@pytest.mark.parametrize(
    "data,message",
    [
        ({"mdoe": "a"}, "here: unknown key(s) mdoe; valid keys: count, flag, if, inner"),
        ({"mode": "c"}, "here.mode: 'c' is not one of 'a', 'b'"),
        ({"count": 1.5}, "here.count: expected an integer"),
        ({"count": True}, "here.count: expected an integer"),
        ({"flag": "yes"}, "here.flag: expected true or false"),
        ({"rate": "fast"}, "here.rate: expected a number"),
        ({"inner": {"gpus": [0, 1, 2]}}, "gpus must list at most 2 GPUs"),
        ({"inner": {"gpu": [0]}}, "here.inner: unknown key(s) gpu"),
        ({"if": "x"}, "here.if: expected an integer"),
    ],
)
def test_errors_name_the_key_and_the_fix(data, message):
    with pytest.raises(ConfigError) as info:
        parse_dataclass(Outer, data, "here")
    assert message in str(info.value)


def test_plugin_setting_reads_our_keys_only():
    from argparse import Namespace

    assert plugin_setting(Namespace(m2rl_reward={"a": 1}), "m2rl_reward") == {"a": 1}
    assert plugin_setting(Namespace(), "m2rl_data") == {}
    with pytest.raises(ConfigError, match="must be a mapping"):
        plugin_setting(Namespace(m2rl_opd=[1]), "m2rl_opd")
    with pytest.raises(ConfigError, match="unknown plugin setting"):
        plugin_setting(Namespace(), "reward")
