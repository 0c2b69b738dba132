"""Pins the SFT blend rules (`m2rl_slime.data.sft_rules`): parsing, exact counts, the seeded draw, the Table 1 YAML."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from m2rl_slime.data.sft_rules import Rule, SourceSpec, check_sources, copies, load_blend, read_blend, selection_rng
from m2rl_slime.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "kind", "valid", "wanted"),
    [
        ("all", "all", 7, 7),
        ("repeat=3", "repeat", 7, 21),
        ("sample=5", "sample", 7, 5),
        ("sample=20", "sample", 7, 20),
        ("sample=5", "sample", 0, 0),
        ("fraction=0.5", "fraction", 7, 4),
        ("fraction=1", "fraction", 7, 7),
        ("fraction=0.25", "fraction", 10, 3),
    ],
)
def test_rule_counts(text, kind, valid, wanted):
    rule = Rule.parse(text)
    assert rule.kind == kind and rule.wanted(valid) == wanted
    assert rule.needs_count == (kind in ("sample", "fraction"))
    assert Rule.parse(str(rule)) == rule


@pytest.mark.parametrize("text", ["some", "repeat", "repeat=0", "sample=-1", "sample=1.5", "fraction=0", "fraction=2"])
def test_bad_rules_are_config_errors(text):
    with pytest.raises(ConfigError, match="rule"):
        Rule.parse(text)


def test_source_spec_parse():
    spec = SourceSpec.parse("raw/a::b/c.jsonl::math:sample=10")
    assert spec.paths == ("raw/a::b/c.jsonl",) and spec.name == "math" and spec.rule == Rule("sample", 10)
    assert SourceSpec.parse("x.jsonl::code").rule == Rule()
    for bad in ("x.jsonl", "x.jsonl::", "::name", "x.jsonl::na me", "x.jsonl::n:bogus"):
        with pytest.raises(ConfigError):
            SourceSpec.parse(bad)


def test_duplicate_or_missing_sources_are_rejected():
    with pytest.raises(ConfigError, match="no sources"):
        check_sources([])
    with pytest.raises(ConfigError, match="twice: a"):
        check_sources([SourceSpec.parse("x.jsonl::a"), SourceSpec.parse("y.jsonl::a")])


@pytest.mark.parametrize(("valid", "wanted"), [(10, 0), (10, 1), (10, 4), (10, 10), (10, 23), (7, 70), (1, 5)])
def test_copies_sum_exactly_and_spread_at_most_one_apart(valid, wanted):
    plan = list(copies(valid, wanted, selection_rng(3, "s")))
    assert len(plan) == valid and sum(plan) == wanted
    assert max(plan) - min(plan) <= 1


def test_copies_are_seeded_per_source_and_uniform():
    def plan(seed, name):
        return list(copies(50, 10, selection_rng(seed, name)))

    assert plan(1, "a") == plan(1, "a")
    assert plan(1, "a") != plan(2, "a") and plan(1, "a") != plan(1, "b")
    hits = Counter()
    for seed in range(2000):
        hits.update(i for i, n in enumerate(copies(10, 3, selection_rng(seed, "u"))) if n)
    assert all(abs(hits[i] - 600) < 90 for i in range(10)), hits  # each row chosen with p = 3/10


def test_table1_blend_reproduces_the_papers_counts():
    sources, seed = load_blend(REPO / "recipes" / "data" / "sft_table1.yaml")
    assert seed == 42
    by_name = {s.name: s for s in sources}
    assert sum(s.rows for s in sources) == 14_121_873
    assert round(sum(s.share for s in sources), 2) == 100.0
    for source in sources:
        assert source.rule.kind in ("all", "sample")
        if source.rule.kind == "sample":
            assert source.rule.wanted(1) == source.rows
    # "repeat 10x": at the released sizes the sample is exactly ten copies of every row
    assert list(set(copies(226_334, by_name["science"].rows, selection_rng(42, "science")))) == [10]
    assert by_name["chat"].rule.wanted(430_978) == 10 * 430_978
    fill = read_blend(REPO / "recipes" / "data" / "sft_table1.yaml").fill
    assert {f.name: f.paths for f in fill} == {
        "taco": ("BAAI/TACO",),
        "apps": ("codeparrot/apps",),
        "code_contests": ("deepmind/code_contests",),
        "codeforces": ("open-r1/codeforces/data",),
    }


def test_blend_yaml_errors_name_the_key(tmp_path):
    bad = tmp_path / "b.yaml"
    bad.write_text("sources: {a: {path: x.jsonl, rule: repeat=0}}\n")
    with pytest.raises(ConfigError, match="repeat"):
        load_blend(bad)
    bad.write_text("sources: {a: {rule: all}}\n")
    with pytest.raises(ConfigError, match="sources.a: path"):
        load_blend(bad)
    bad.write_text("sources: {a: {path: x.jsonl, share: 120}}\n")
    with pytest.raises(ConfigError, match="share"):
        load_blend(bad)
    bad.write_text("source: {}\n")
    with pytest.raises(ConfigError, match="top-level"):
        load_blend(bad)
    bad.write_text("sources: {a: {path: x.jsonl}}\nfill_sources: {leetcode: x}\n")
    with pytest.raises(ConfigError, match="fill_sources.leetcode: unknown fill source .*known: taco, apps"):
        read_blend(bad)
    bad.write_text("sources: {a: {path: x.jsonl}}\nfill_sources: {taco: 3}\n")
    with pytest.raises(ConfigError, match="fill_sources.taco: expected a path"):
        read_blend(bad)
