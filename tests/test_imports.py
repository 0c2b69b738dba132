"""The package's import graph, read from the source (every import statement, at module level or inside a
function): no cycle between subpackages, no forbidden edge, and light modules that stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "m2rl_slime"

# Modules every subpackage may import: they import no subpackage themselves (checked below).
CORE = {"m2rl_slime", "m2rl_slime._dotted", "m2rl_slime.config", "m2rl_slime.domains", "m2rl_slime.errors",
        "m2rl_slime.hooks", "m2rl_slime.result"}  # fmt: skip

# subpackage -> subpackages it must not import. The sandbox only executes; data, opd and agent know the
# domains through m2rl_slime.domains and the verdict type through m2rl_slime.result, not through rewards.
FORBIDDEN = {
    "sandbox": {"rewards", "data", "opd", "agent", "merge", "launch", "eval", "analyze"},
    "data": {"rewards", "opd", "agent", "sandbox", "merge"},
    "opd": {"rewards", "data", "agent", "sandbox", "merge"},
    "agent": {"rewards", "data", "opd", "sandbox", "merge"},
    "merge": {"rewards", "data", "opd", "agent", "sandbox", "launch"},
    "launch": {"rewards", "data", "opd", "agent", "sandbox", "merge"},
}


# Single module edges allowed across a forbidden pair, each with its reason.
ALLOWED = {
    # prepare-eval keeps only rows the verifiers can grade: AIME golds found by the verifiers' own box
    # scanner, IF rows whose every instruction id has a checker (lazy imports, at prepare time)
    "m2rl_slime.data.evalsets -> m2rl_slime.rewards.answer_extract",
    "m2rl_slime.data.evalsets -> m2rl_slime.rewards.instruction",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The m2rl_slime modules a file imports (``from pkg import name`` counts as pkg.name when that is a module)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base)
    return {name for name in found if name == "m2rl_slime" or name.startswith("m2rl_slime.")}


def _group(module: str) -> str:
    """The node of the graph: a subpackage (``rewards``) or a top-level module (``m2rl_slime.config``)."""
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return ".".join(parts[:2])


def _graph() -> dict[str, dict[str, set[str]]]:
    """node -> imported node -> the importing modules (for the failure message)."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_name(path)
        for target in _imports(path):
            a, b = _group(source), _group(target)
            if a != b:
                graph.setdefault(a, {}).setdefault(b, set()).add(f"{source} -> {target}")
    return graph


def _cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_walk_sees_the_known_edges():
    graph = _graph()
    assert "m2rl_slime.rewards.code.verifier -> m2rl_slime.sandbox.base" in graph["rewards"]["sandbox"]
    assert any("m2rl_slime.domains" in edge for edge in graph["data"]["m2rl_slime.domains"])


def test_no_cycle_between_subpackages():
    graph = _graph()
    cycle = _cycle(graph)
    if cycle:
        edges = [sorted(graph[a][b])[0] for a, b in zip(cycle, cycle[1:])]
        pytest.fail("import cycle " + " -> ".join(cycle) + ":\n" + "\n".join(edges))


def test_no_forbidden_edge():
    graph = _graph()
    bad = [edge for a, banned in FORBIDDEN.items() for b in banned & set(graph.get(a, {})) for edge in graph[a][b]]
    bad = [edge for edge in bad if edge not in ALLOWED]
    assert not bad, "forbidden imports:\n" + "\n".join(sorted(bad))


def test_core_modules_import_no_subpackage():
    graph = _graph()
    bad = [edge for node in CORE for target, edges in graph.get(node, {}).items() if target not in CORE
           for edge in edges]  # fmt: skip
    assert not bad, "\n".join(sorted(bad))


@pytest.mark.parametrize(
    "module",
    ["m2rl_slime.hooks", "m2rl_slime.domains", "m2rl_slime.rewards", "m2rl_slime.data", "m2rl_slime.opd",
     "m2rl_slime.agent", "m2rl_slime.rewards.metrics", "m2rl_slime.rewards.slime_hook"],
)  # fmt: skip
def test_light_modules_import_neither_slime_torch_nor_aiohttp(module):
    code = (
        f"import sys, {module}\n"
        "print([m for m in ('slime', 'torch', 'aiohttp', 'transformers', 'sympy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": set()}, "b": {"c": set()}}) is None


def test_the_command_index_lists_every_command_line():
    """`python -m m2rl_slime` names every subpackage that has a `__main__`, and the demo."""
    from m2rl_slime.__main__ import COMMANDS

    mains = {path.parent.name for path in PACKAGE.glob("*/__main__.py")}
    assert mains, "no subpackage command line found"
    assert set(COMMANDS) == mains | {"demo"}
