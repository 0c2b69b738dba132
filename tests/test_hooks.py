"""`m2rl_slime.hooks`: one index of the slime hooks. Every path it declares (its own, the target, the
paths of earlier versions) loads the same object, the way slime's `load_function` loads it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from m2rl_slime.hooks import HOOKS, accepted_paths

REPO = Path(__file__).resolve().parents[1]
NEEDS_SLIME = {"MultiDomainDataSource", "SFTDataSource", "generate", "keep_domain_quota"}  # import slime


def load(path: str):
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_the_index_covers_every_hook_and_its_flag():
    assert sorted(HOOKS) == sorted(
        ["reward", "log_rollout", "log_eval", "MultiDomainDataSource", "observe", "keep_domain_quota",
         "SFTDataSource", "generate_rollout", "generate", "attach_teacher_log_probs", "opd_loss", "deferred_reward"]
    )  # fmt: skip
    assert all(hook.flag.startswith("--") for hook in HOOKS.values())
    assert "m2rl_slime.hooks.opd_loss" in accepted_paths("opd_loss")


@pytest.mark.parametrize("name", sorted(set(HOOKS) - NEEDS_SLIME))
def test_every_path_of_a_hook_loads_the_same_object(name):
    objects = {id(load(path)) for path in accepted_paths(name)}
    assert len(objects) == 1, sorted(accepted_paths(name))


@pytest.mark.parametrize("name", sorted(NEEDS_SLIME))
def test_slime_importing_targets_define_the_hook(name):
    module, _, attr = HOOKS[name].target.rpartition(".")
    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    assert attr in defined


def test_recipes_name_only_indexed_hook_paths():
    known = set().union(*(accepted_paths(name) for name in HOOKS))
    text = "\n".join(p.read_text() for p in sorted((REPO / "recipes").rglob("*.yaml")))
    used = {word.strip("[],") for word in text.split() if word.startswith(("m2rl_slime.", "[m2rl_slime."))}
    hook_paths = {w for w in used if w.rpartition(".")[2] in HOOKS}
    assert hook_paths and hook_paths <= known, sorted(hook_paths - known)
