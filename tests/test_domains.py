"""The domain registry: every per-domain table derives from `m2rl_slime.domains.SPECS`, and a sixth domain is
one spec plus one verifier module (the worked example of docs/extending.md, scored end to end)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import textwrap
from argparse import Namespace
from types import SimpleNamespace

import pytest

from m2rl_slime import domains
from m2rl_slime.domains import SPECS, DomainSpec, canonical_domain, check_specs, get_spec
from m2rl_slime.errors import ConfigError, UnknownNameError
from m2rl_slime.result import Reason

# The verifier module of the toy domain, as a user would write it (docs/extending.md).
CHEM_VERIFIER = '''
"""Chemistry formulas: the last `Answer:` line must name the gold formula (blanks ignored)."""

from m2rl_slime.result import Reason, Result


def verify(response, label, metadata, *, config=None):
    if not isinstance(label, str) or not label.strip():
        return Result.fail(Reason.BAD_LABEL, error="label must be a formula")
    lines = [line for line in response.splitlines() if line.strip().startswith("Answer:")]
    if not lines:
        return Result.fail(Reason.NO_ANSWER)
    answer = "".join(lines[-1].split(":", 1)[1].split())
    gold = "".join(label.split())
    return Result.correct(extracted=answer) if answer == gold else Result.fail(Reason.WRONG, extracted=answer)
'''

CHEM = DomainSpec(
    name="chem",
    verifier="chem_verifier.verify",
    aliases=("chemistry",),
    sources=("chem_olympiad",),
    eval_kinds=("chembench",),
)


@pytest.fixture
def chem(tmp_path, monkeypatch):
    """The toy domain registered for one test (the registry is restored afterwards)."""
    (tmp_path / "chem_verifier.py").write_text(textwrap.dedent(CHEM_VERIFIER))
    monkeypatch.setitem(SPECS, "chem", CHEM)
    return tmp_path


def test_the_registry_is_consistent():
    check_specs()
    assert tuple(SPECS) == ("math", "code", "science", "if", "agent", "bfcl")  # bfcl: eval only


@pytest.mark.parametrize(
    "clash",
    [
        {"math": dataclasses.replace(domains.MATH, aliases=("gpqa",)), "science": domains.SCIENCE},
        {"math": domains.MATH, "code": dataclasses.replace(domains.CODE, sources=("dapo",))},
        {"maths": domains.MATH},
    ],
)
def test_check_specs_names_a_clash(clash):
    with pytest.raises(ValueError, match="claimed by both|holds the spec"):
        check_specs(clash)


def test_derived_tables_are_the_documented_ones():
    from m2rl_slime.data.evalsets import eval_kinds
    from m2rl_slime.data.source_domains import default_sources
    from m2rl_slime.data.templates import MATH_TEMPLATE, SCIENCE_TEMPLATE, default_templates
    from m2rl_slime.rewards import registry
    from m2rl_slime.rewards.config import RewardConfig
    from m2rl_slime.rewards.router import TEXT_DOMAINS, warm_domains

    assert registry.POOLED == {"math", "science", "if", "agent", "bfcl"}
    assert TEXT_DOMAINS == {"math", "science", "if", "code", "bfcl"}
    assert warm_domains() == ("math", "science", "if")
    assert registry.ALIASES["workbench"] == "agent" and registry.ALIASES["stem"] == "science"
    assert registry.VERIFIERS["agent"] == "m2rl_slime.agent.verifier.verify"
    config = RewardConfig()
    assert config.for_domain("math") is config.math and config.for_domain("agent") is None
    assert default_sources()["structured_outputs"] == "exclude" and default_sources()["taco"] == "code"
    assert eval_kinds() == {k: d for d, ks in [("math", "math aime"), ("science", "gpqa mcq"),
                                               ("if", "if ifeval ifbench"), ("bfcl", "bfcl")] for k in ks.split()}  # fmt: skip
    templates = default_templates()
    assert templates["math"] is MATH_TEMPLATE and templates["science"] is SCIENCE_TEMPLATE
    assert templates["code"].template == "{prompt}" and not templates["agent"].replace_prefix


def test_unknown_names_list_domains_and_aliases():
    with pytest.raises(UnknownNameError, match="known: .*agent.*deepscaler"):
        canonical_domain("poetry")
    assert get_spec(" GPQA ").name == "science"


def test_domains_imports_nothing_heavy():
    code = (
        "import sys, m2rl_slime.domains\n"
        "print(sorted(m for m in sys.modules if m.startswith('m2rl_slime')))\n"
        "print([m for m in ('torch', 'slime', 'aiohttp', 'sympy', 'math_verify') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["['m2rl_slime', 'm2rl_slime.domains', 'm2rl_slime.errors']", "[]"]


def test_a_sixth_domain_is_one_spec_and_one_verifier(chem, private_router):
    from m2rl_slime.rewards.router import Item

    router = private_router(chem)
    answer = "<think>water</think>It is water.\nAnswer: H2 O"
    assert router.score(Item("chemistry", answer, "H2O")).reason is Reason.OK
    assert router.score(Item("chem", "<think>x</think>Answer: CO2", "H2O")).details["extracted"] == "CO2"
    # the router's text policy applies to it like to every graded-text domain
    assert router.score(Item("chem", "Answer: H2O", "H2O")).reason is Reason.NO_THINK_CLOSE
    assert router.score(Item("chem", "</think>Answer: H2O", "")).reason is Reason.BAD_LABEL


def test_the_sixth_domain_reaches_every_table(chem):
    from m2rl_slime.config import parse_dataclass
    from m2rl_slime.data.evalsets import eval_kinds
    from m2rl_slime.data.schema import convert_row
    from m2rl_slime.data.source_domains import SourceTable
    from m2rl_slime.data.templates import IDENTITY, default_templates
    from m2rl_slime.opd.config import OPDConfig
    from m2rl_slime.rewards.config import RewardConfig
    from m2rl_slime.rewards.slime_hooks import sample_domain

    assert sample_domain({"rm_type": "Chemistry"}, None, "sample 0") == "chem"
    with pytest.raises(ConfigError, match="one of math, code, science, if, agent, bfcl, chem"):
        sample_domain({}, None, "sample 0")
    assert RewardConfig.from_mapping({"default_domain": "chem"}).default_domain == "chem"
    assert SourceTable().resolve("chem_olympiad_2024") == "chem"
    assert eval_kinds()["chembench"] == "chem"
    assert default_templates()["chem"] is IDENTITY
    with pytest.raises(ConfigError, match="no row converter"):
        convert_row({"responses_create_params": {"input": [{"role": "user", "content": "q"}]}}, "chem", "s", IDENTITY)
    teachers = {"chem": {"urls": ["http://127.0.0.1:1"]}}
    assert set(parse_dataclass(OPDConfig, {"teachers": teachers}, "m2rl_opd").teachers) == {"chem"}
    with pytest.raises(ConfigError, match="alias of 'chem'"):
        parse_dataclass(OPDConfig, {"teachers": {"chemistry": teachers["chem"]}}, "m2rl_opd")


def test_the_sixth_domain_through_the_slime_hook(chem, private_router):
    from m2rl_slime.rewards import slime_hooks

    router = private_router(chem)
    args = Namespace(m2rl_reward={}, reward_key=None)
    sample = SimpleNamespace(response="<think>.</think>Answer: NaCl", label="NaCl", metadata={"domain": "chem"})
    with pytest.MonkeyPatch.context() as patch:  # the hook's router for these args is the private one
        patch.setattr(slime_hooks, "_router", lambda _args: router)
        assert asyncio.run(slime_hooks.reward(args, sample)) == 1.0
    assert sample.metadata["m2rl_reward"]["domain"] == "chem"
