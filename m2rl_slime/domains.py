"""The RLVR domains: one `DomainSpec` per domain, from which every per-domain table of the package is derived.

A spec names its verifier, its aliases, how the reward router runs it (pooled or awaited, graded text or
not, where its settings come from, its warm-up item), and what the data package needs to prepare its rows
(row converter, prompt template, blend source names, eval kinds). Everything else reads `SPECS`:
the reward registry and router, the verifier pool's warm-up, the data source table, row converters and
templates, the eval kinds, OPD's teacher routing and the agent rollout's domain check.

Not a slime hook. This module imports nothing heavy: code is referenced by dotted path and imported on
first use (`m2rl_slime._dotted.load_dotted`). Adding a domain is one spec here plus its verifier module
(docs/extending.md walks through one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UnknownNameError


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """Everything the package knows about one domain.

    Attributes:
        name: The canonical domain name (``metadata["domain"]`` of prepared rows).
        verifier: Dotted path of ``verify(response, label, metadata, *, config=None) -> Result``; a
            coroutine function when `pooled` is False.
        aliases: Other names accepted for the domain (M2RL's ``metadata["rm_type"]`` values and the like).
        pooled: True: a pure, CPU-bound verifier, run in the verifier pool under a hard deadline. False:
            an async verifier, awaited in the caller's event loop (it awaits I/O, e.g. a sandbox).
        graded_text: True: the router grades the text after ``</think>`` and applies the length cap.
            False: the verifier gets the whole response (the agent verifier reads the episode record).
        config_field: The `RewardConfig` field (``m2rl_reward.<key>``) holding the verifier's settings;
            None: the verifier runs with its defaults, or reads `settings_key`.
        settings_key: A plugin section of its own that the verifier needs (``m2rl_agent``); a sample of
            the domain without it is a configuration error.
        settings_help: What the section must hold, quoted in that error.
        warm_up: One ``(response, label, metadata)`` item each pool worker verifies before it reports
            ready, so heavy imports and caches are loaded before the first real sample.
        converter: Dotted path of the ``prepare`` row converter ``(raw_row, messages) -> (label,
            metadata, tools)``; None: rows of the domain cannot be prepared from the blend.
        template: Dotted path of the default `PromptTemplate` of ``prepare``; None: prompts unchanged.
        sources: Blend source names (the ``dataset`` column, after prefix stripping) of the domain.
        eval_kinds: ``prepare-eval --kind`` values whose rows belong to the domain.
        preparers: ``(kind, dotted path)`` pairs for eval kinds whose input is not one row per benchmark
            item (a folder of files, say): ``prepare(input_path, out_path, config, options) -> Tally``
            replaces the generic row loop of ``prepare-eval`` for that kind.
    """

    name: str
    verifier: str
    aliases: tuple[str, ...] = ()
    pooled: bool = True
    graded_text: bool = True
    config_field: str | None = None
    settings_key: str | None = None
    settings_help: str = ""
    warm_up: tuple[str, Any, Mapping[str, Any]] | None = None
    converter: str | None = None
    template: str | None = None
    sources: tuple[str, ...] = ()
    eval_kinds: tuple[str, ...] = ()
    preparers: tuple[tuple[str, str], ...] = ()


_SCHEMA = "m2rl_slime.data.schema"
_TEMPLATES = "m2rl_slime.data.templates"

MATH = DomainSpec(
    name="math",
    verifier="m2rl_slime.rewards.math_answer.verify",
    aliases=("deepscaler", "dapo"),
    config_field="math",
    # Not a fast-path pair (integers, decimals, fractions are decided without math-verify): this one loads
    # math-verify's parser and sympy in every worker before the first real sample.
    warm_up=("\\boxed{\\sqrt{2}/2}", "\\frac{1}{\\sqrt{2}}", {}),
    converter=f"{_SCHEMA}.math_row",
    template=f"{_TEMPLATES}.MATH_TEMPLATE",
    sources=("dapo17k", "dapo", "skywork", "math", "aime"),
    eval_kinds=("math", "aime"),
)
CODE = DomainSpec(
    name="code",
    verifier="m2rl_slime.rewards.code_tests.verify",
    aliases=("unit_test",),
    pooled=False,
    config_field="code",
    converter=f"{_SCHEMA}.code_row",
    sources=("comp_coding", "code_gen", "taco", "apps", "code_contests", "codeforces"),
)
SCIENCE = DomainSpec(
    name="science",
    verifier="m2rl_slime.rewards.mcq.verify",
    aliases=("gpqa", "mcqa", "stem"),
    config_field="science",
    warm_up=("Answer: B", "B", {"valid_letters": "ABCD"}),
    converter=f"{_SCHEMA}.science_row",
    template=f"{_TEMPLATES}.SCIENCE_TEMPLATE",
    sources=("stem_mcqa", "mcqa", "gpqa"),
    eval_kinds=("gpqa", "mcq"),
)
IF = DomainSpec(
    name="if",
    verifier="m2rl_slime.rewards.instruction.verify",
    aliases=("ifevalg", "ifeval", "ifbench", "instruction_following"),
    config_field="if_",
    # Loads langdetect's language profiles (about 1.5 s) before the first real item needs them.
    warm_up=(
        "all lowercase english words here.",
        None,
        {"instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]},
    ),
    converter=f"{_SCHEMA}.if_row",
    sources=("instruction_following", "ifeval", "ifbench"),
    eval_kinds=("if", "ifeval", "ifbench"),
)
AGENT = DomainSpec(
    name="agent",
    verifier="m2rl_slime.agent.verifier.verify",
    aliases=("workbench", "workplace_assistant"),
    graded_text=False,
    settings_key="m2rl_agent",
    settings_help="at least m2rl_agent.csv_dir, the workplace database",
    converter=f"{_SCHEMA}.agent_row",
    sources=("workbench", "workplace_assistant"),
)

# Eval-only: BFCL v3 AST / irrelevance / relevance rows (multi-turn rows are scored by `python -m
# m2rl_slime.eval`, which runs BFCL's API classes in their own environment).
BFCL = DomainSpec(
    name="bfcl",
    verifier="m2rl_slime.eval.bfcl.verifier.verify",
    eval_kinds=("bfcl",),
    preparers=(("bfcl", "m2rl_slime.eval.bfcl.prepare.prepare_eval_kind"),),
)

# The registry: canonical name -> spec. Order is the order in which domains are listed to users.
SPECS: dict[str, DomainSpec] = {spec.name: spec for spec in (MATH, CODE, SCIENCE, IF, AGENT, BFCL)}


def domain_names() -> tuple[str, ...]:
    """The canonical domain names, in registry order."""
    return tuple(SPECS)


def alias_table() -> dict[str, str]:
    """Alias -> canonical domain, over every spec."""
    return {alias: spec.name for spec in SPECS.values() for alias in spec.aliases}


def canonical_domain(name: object) -> str:
    """Map a domain name or alias (case-insensitive, surrounding blanks ignored) to its canonical domain.

    Raises:
        UnknownNameError: `name` is neither a domain nor an alias; the message lists both.
    """
    if isinstance(name, str):
        key = name.strip().lower()
        if key in SPECS:
            return key
        aliases = alias_table()
        if key in aliases:
            return aliases[key]
    raise UnknownNameError("reward domain", name, [*SPECS, *alias_table()])


def get_spec(name: object) -> DomainSpec:
    """The spec of a domain name or alias.

    Raises:
        UnknownNameError: as `canonical_domain`.
    """
    return SPECS[canonical_domain(name)]


def check_specs(specs: Mapping[str, DomainSpec] | None = None) -> None:
    """Check that a registry is consistent: keys are the specs' names, and no name, alias, source name or
    eval kind is claimed twice.

    Raises:
        ValueError: naming the clash.
    """
    specs = SPECS if specs is None else specs
    claimed: dict[tuple[str, str], str] = {}
    for key, spec in specs.items():
        if key != spec.name:
            raise ValueError(f"SPECS[{key!r}] holds the spec named {spec.name!r}")
        names = [("domain name or alias", n) for n in (spec.name, *spec.aliases)]
        names += [("source name", s) for s in spec.sources] + [("eval kind", k) for k in spec.eval_kinds]
        for kind, value in names:
            if (kind, value) in claimed:
                raise ValueError(f"{kind} {value!r} is claimed by both {claimed[kind, value]!r} and {spec.name!r}")
            claimed[kind, value] = spec.name
