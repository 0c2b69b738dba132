"""Multi-domain data: prepare the Nemotron RL blend, and mix domains per rollout batch in slime.

slime hooks implemented here:

- ``--data-source-path m2rl_slime.data.MultiDomainDataSource`` (settings: ``m2rl_data`` in
  ``--custom-config-path``; see `m2rl_slime.data.config.DataConfig`);
- ``--rollout-all-samples-process-path m2rl_slime.data.curriculum.observe`` (optional curriculum);
- ``--data-source-path m2rl_slime.data.SFTDataSource`` (SFT: streams a prepared blend, ``--prompt-data DIR``)
  with ``--rollout-function-path m2rl_slime.data.sft_rollout.generate_rollout`` (``m2rl_data.sft``).
- ``--dynamic-sampling-filter-path m2rl_slime.data.keep_domain_quota`` (exact per-domain counts of each
  trained batch under over-sampling, dynamic filters and partial rollout).

CLI: ``python -m m2rl_slime.data prepare ...`` / ``prepare-eval ...`` / ``prepare-sft ...`` (``--help`` on each).

Names resolve lazily: importing this package imports neither slime nor any heavy dependency;
``MultiDomainDataSource`` and ``SFTDataSource`` import slime on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DataConfig",
    "MixingSource",
    "MixtureSampler",
    "MultiDomainDataSource",
    "SFTDataSource",
    "keep_domain_quota",
    "prepare_blend",
    "prepare_eval",
    "prepare_sft",
]

_LAZY = {
    "DataConfig": "m2rl_slime.data.config",
    "MixingSource": "m2rl_slime.data.source",
    "MixtureSampler": "m2rl_slime.data.mixture",
    "MultiDomainDataSource": "m2rl_slime.data.slime_source",
    "keep_domain_quota": "m2rl_slime.data.slime_quota",
    "prepare_blend": "m2rl_slime.data.prepare",
    "prepare_eval": "m2rl_slime.data.evalsets",
    "SFTDataSource": "m2rl_slime.data.sft_source",
    "prepare_sft": "m2rl_slime.data.sft_blend",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
