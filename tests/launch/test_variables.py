"""Pins variable resolution: precedence, inline defaults, required and undeclared variables, cycles, typing."""

from __future__ import annotations

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.launch.variables import Resolver, VariableScope, references, resolve_tree


def scope(declared, overrides=None, environ=None, computed=None) -> Resolver:
    return Resolver(VariableScope(declared, overrides or {}, environ or {}, computed or {}, "r.yaml"))


def test_precedence_set_env_computed_default():
    declared = {"A": "declared"}
    assert scope(declared).substitute("${A}", "k") == "declared"
    assert scope(declared, computed={"A": "computed"}).substitute("${A}", "k") == "computed"
    assert scope(declared, environ={"A": "env"}, computed={"A": "c"}).substitute("${A}", "k") == "env"
    assert scope(declared, {"A": "set"}, {"A": "env"}).substitute("${A}", "k") == "set"


def test_empty_environment_value_counts_as_unset():
    assert scope({"A": "d"}, environ={"A": ""}).substitute("x${A}y", "k") == "xdy"


def test_defaults_reference_other_variables():
    resolver = scope({"ROOT": "/w", "DATA": "${ROOT}/data", "FILE": "${DATA}/m.jsonl"}, environ={"ROOT": "/e"})
    assert resolver.substitute("${FILE}", "k") == "/e/data/m.jsonl"
    assert resolver.resolved() == {"DATA": "/e/data", "FILE": "/e/data/m.jsonl", "ROOT": "/e"}


def test_inline_default_used_only_when_required_variable_is_unset():
    assert scope({"A": None}).substitute("${A:-fallback}", "k") == "fallback"
    assert scope({"A": None}, environ={"A": "v"}).substitute("${A:-fallback}", "k") == "v"


def test_required_variable_names_the_key_and_the_fix():
    with pytest.raises(
        ConfigError, match=r"^r\.yaml: slime\.ckpt\.load needs variable CKPT.*export CKPT=.*--set CKPT="
    ):
        scope({"CKPT": None}).substitute("${CKPT}/x", "r.yaml: slime.ckpt.load")


def test_undeclared_variable_is_an_error_listing_declared_ones():
    with pytest.raises(ConfigError, match=r"undeclared variable \$\{DATA_DRI\}.*declared: DATA_DIR"):
        scope({"DATA_DIR": "/d"}).substitute("${DATA_DRI}/m", "k")


def test_cycle_is_reported():
    with pytest.raises(ConfigError, match="cycle: A -> B -> A"):
        scope({"A": "${B}", "B": "${A}"}).substitute("${A}", "k")


def test_lower_case_and_omegaconf_interpolations_are_left_alone():
    assert scope({}).substitute("${oc.env:DATA_DIR}/x", "k") == "${oc.env:DATA_DIR}/x"
    assert references("${A}/${B:-x}/${oc.env:C}") == ["A", "B"]


def test_whole_value_reference_keeps_yaml_scalar_type():
    resolver = scope({"N": "8", "F": "0.5", "B": "true", "S": "/p", "E": "1e-6"})
    tree = {"n": "${N}", "f": "${F}", "b": "${B}", "s": "${S}", "mixed": "${N}x", "e": "${E}", "lit": 3}
    out = resolve_tree(tree, lambda text, key: resolver.substitute(text, key))
    assert out == {"n": 8, "f": 0.5, "b": True, "s": "/p", "mixed": "8x", "e": "1e-6", "lit": 3}
