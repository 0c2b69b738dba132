"""`m2rl_slime.opd` exports its hooks lazily: importing the package, the config or the CLI pulls in neither
torch, slime nor aiohttp, and the hook paths slime loads resolve to the real functions."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["m2rl_slime.opd", "m2rl_slime.opd.config", "m2rl_slime.opd.cli"])
def test_import_is_light(module):
    code = (
        f"import sys, {module}\n"
        "heavy = [m for m in ('torch', 'slime', 'aiohttp', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_hook_paths_resolve_like_slimes_load_function():
    import importlib

    from m2rl_slime import opd
    from m2rl_slime.opd import slime_hooks

    for path in ("m2rl_slime.opd.attach_teacher_log_probs", "m2rl_slime.opd.opd_loss"):
        module, _, attr = path.rpartition(".")
        assert getattr(importlib.import_module(module), attr) is getattr(slime_hooks, attr)
    assert sorted(opd.__all__) == ["OPDConfig", "attach_teacher_log_probs", "opd_loss", "rollout_metrics"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = opd.nope
