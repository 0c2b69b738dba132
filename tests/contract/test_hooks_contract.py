"""Every path of `m2rl_slime.hooks` (its own, the target, the paths of earlier versions) loads the same object
through slime's own `load_function`, including the two hooks whose modules import slime.

Skipped (with the reason) when slime is not importable.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.contract

try:
    from slime.utils.misc import load_function
except Exception as exc:  # ImportError, or a slime dependency failing at import
    pytest.skip(f"slime is not importable ({type(exc).__name__}: {exc})", allow_module_level=True)

from m2rl_slime.hooks import HOOKS, accepted_paths


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_path_loads_the_same_hook(name):
    loaded = {path: load_function(path) for path in sorted(accepted_paths(name))}
    assert len({id(obj) for obj in loaded.values()}) == 1, loaded
    assert callable(next(iter(loaded.values())))
