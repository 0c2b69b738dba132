"""Multi-domain data: prepare the Nemotron RL blend, and mix domains per rollout batch in slime.

slime hooks implemented here (all also under `m2rl_slime.hooks`):

- ``--data-source-path m2rl_slime.data.MultiDomainDataSource`` (`slime_hooks.py`; settings: ``m2rl_data``
  in ``--custom-config-path``; see `m2rl_slime.data.config.DataConfig`);
- ``--rollout-all-samples-process-path m2rl_slime.data.curriculum.observe`` (optional curriculum).

Modules: `mixing` (the pure mixing core), `mixture` (weights and sampler), `curriculum`, `source_domains`
(blend source name -> domain), `schema` and `templates` (prepared rows), `prepare` / `evalsets` (the CLI).

CLI: ``python -m m2rl_slime.data prepare ...`` / ``prepare-eval ...`` (``--help`` on each).

Names resolve lazily: importing this package imports neither slime nor any heavy dependency;
``MultiDomainDataSource`` imports slime on first access.
"""

from __future__ import annotations

from .._dotted import lazy_exports

__all__ = [
    "DataConfig",
    "MixingSource",
    "MixtureSampler",
    "MultiDomainDataSource",
    "prepare_blend",
    "prepare_eval",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DataConfig": "m2rl_slime.data.config.DataConfig",
        "MixingSource": "m2rl_slime.data.mixing.MixingSource",
        "MixtureSampler": "m2rl_slime.data.mixture.MixtureSampler",
        "MultiDomainDataSource": "m2rl_slime.data.slime_hooks.MultiDomainDataSource",
        "prepare_blend": "m2rl_slime.data.prepare.prepare_blend",
        "prepare_eval": "m2rl_slime.data.evalsets.prepare_eval",
    },
)
