"""BFCL v3's test categories: names, file names (v3 and v4), how each is scored, and what is unavailable offline.

Category names are BFCL v3's (``simple``, ``java``, ``live_multiple``, ``multi_turn_base``, ...). bfcl-eval ships
the same data under v4 file names (``BFCL_v4_simple_python.json``, ...); both are accepted and the rows always
carry the v3 name, with the version that was read in ``metadata["bfcl_version"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["ast", "irrelevance", "relevance", "multi_turn"]
Group = Literal["non_live", "live", "multi_turn"]


@dataclass(frozen=True, slots=True)
class Category:
    """One BFCL category.

    Attributes:
        name: The v3 name (also the prefix of its ids in the v3 files).
        v4_name: Its name in bfcl-eval's v4 files, or None where v4 has no such file.
        kind: How it is scored: the AST checker, "no call is correct", "some call is correct", or the
            multi-turn state checker.
        group: The part of the overall score it belongs to.
        language: The language of its function docs (java/javascript change the AST checker's rules).
    """

    name: str
    v4_name: str | None
    kind: Kind
    group: Group
    language: Literal["python", "java", "javascript"] = "python"


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("simple", "simple_python", "ast", "non_live"),
        Category("multiple", "multiple", "ast", "non_live"),
        Category("parallel", "parallel", "ast", "non_live"),
        Category("parallel_multiple", "parallel_multiple", "ast", "non_live"),
        Category("java", "simple_java", "ast", "non_live", "java"),
        Category("javascript", "simple_javascript", "ast", "non_live", "javascript"),
        Category("irrelevance", "irrelevance", "irrelevance", "non_live"),
        Category("live_simple", "live_simple", "ast", "live"),
        Category("live_multiple", "live_multiple", "ast", "live"),
        Category("live_parallel", "live_parallel", "ast", "live"),
        Category("live_parallel_multiple", "live_parallel_multiple", "ast", "live"),
        Category("live_irrelevance", "live_irrelevance", "irrelevance", "live"),
        Category("live_relevance", "live_relevance", "relevance", "live"),
        Category("multi_turn_base", "multi_turn_base", "multi_turn", "multi_turn"),
        Category("multi_turn_miss_func", "multi_turn_miss_func", "multi_turn", "multi_turn"),
        Category("multi_turn_miss_param", "multi_turn_miss_param", "multi_turn", "multi_turn"),
        Category("multi_turn_long_context", "multi_turn_long_context", "multi_turn", "multi_turn"),
        # Only in the original v3 files; not part of v3's overall score, prepared only when asked for by name.
        Category("multi_turn_composite", None, "multi_turn", "multi_turn"),
    )
}

# Categories of the original v3 release that cannot be scored offline (or were never scored), with the reason.
UNAVAILABLE: dict[str, str] = {
    "exec_simple": "executes the calls against outside web APIs (RapidAPI, geocoding, OMDB keys)",
    "exec_multiple": "executes the calls against outside web APIs (RapidAPI, geocoding, OMDB keys)",
    "exec_parallel": "executes the calls against outside web APIs (RapidAPI, geocoding, OMDB keys)",
    "exec_parallel_multiple": "executes the calls against outside web APIs (RapidAPI, geocoding, OMDB keys)",
    "rest": "sends the generated REST requests to live web services",
    "sql": "not scored by the reference either (no checker in bfcl-eval)",
    "chatable": "not scored by the reference either (no checker in bfcl-eval)",
}

AST_CATEGORIES = tuple(n for n, c in CATEGORIES.items() if c.kind != "multi_turn")
MULTI_TURN_CATEGORIES = (
    "multi_turn_base",
    "multi_turn_miss_func",
    "multi_turn_miss_param",
    "multi_turn_long_context",
)
# `--categories` shorthands.
SELECTIONS: dict[str, tuple[str, ...]] = {
    "v3": AST_CATEGORIES + MULTI_TURN_CATEGORIES,
    "ast": AST_CATEGORIES,
    "multi_turn": MULTI_TURN_CATEGORIES,
}
_BY_V4 = {c.v4_name: c.name for c in CATEGORIES.values() if c.v4_name}


def canonical_category(name: str) -> str | None:
    """The v3 name of a v3 or v4 category name, or None if it is not a scorable category."""
    if name in CATEGORIES:
        return name
    return _BY_V4.get(name)


def category_of_id(entry_id: str) -> str | None:
    """The v3 category of a BFCL id (``live_simple_3-1-0`` -> ``live_simple``, ``simple_python_7`` -> ``simple``)."""
    return canonical_category(entry_id.rsplit("_", 1)[0]) if "_" in entry_id else None
