"""Multi-domain data: prepare the Nemotron RL blend, and mix domains per rollout batch in slime.

slime hooks implemented here (all also under `m2rl_slime.hooks`):

- ``--data-source-path m2rl_slime.data.MultiDomainDataSource`` (`slime_hooks.py`; settings: ``m2rl_data``
  in ``--custom-config-path``; see `m2rl_slime.data.config.DataConfig`);
- ``--rollout-all-samples-process-path m2rl_slime.data.curriculum.observe`` (optional curriculum);
- ``--data-source-path m2rl_slime.data.SFTDataSource`` (`sft_source.py`; SFT: streams a prepared blend,
  ``--prompt-data DIR``) with ``--rollout-function-path m2rl_slime.data.sft_rollout.generate_rollout``
  (``m2rl_data.sft``);
- ``--dynamic-sampling-filter-path m2rl_slime.data.keep_domain_quota`` (`slime_quota.py`: exact per-domain
  counts of each trained batch under over-sampling, dynamic filters and partial rollout).

Modules: `mixing` (the pure mixing core), `mixture` (weights and sampler), `quota`, `curriculum`,
`source_domains` (blend source name -> domain), `schema` and `templates` (prepared rows), `prepare` /
`evalsets` / `sft_blend` (the CLI).

CLI: ``python -m m2rl_slime.data prepare ...`` / ``prepare-eval ...`` / ``prepare-sft ...`` (``--help`` on each).

Names resolve lazily: importing this package imports neither slime nor any heavy dependency;
``MultiDomainDataSource`` and ``SFTDataSource`` import slime on first access.
"""

from __future__ import annotations

from .._dotted import lazy_exports

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DataConfig": "m2rl_slime.data.config.DataConfig",
        "MixingSource": "m2rl_slime.data.mixing.MixingSource",
        "MixtureSampler": "m2rl_slime.data.mixture.MixtureSampler",
        "MultiDomainDataSource": "m2rl_slime.data.slime_hooks.MultiDomainDataSource",
        "SFTDataSource": "m2rl_slime.data.sft_source.SFTDataSource",
        "keep_domain_quota": "m2rl_slime.data.slime_quota.keep_domain_quota",
        "prepare_blend": "m2rl_slime.data.prepare.prepare_blend",
        "prepare_eval": "m2rl_slime.data.evalsets.prepare_eval",
        "prepare_sft": "m2rl_slime.data.sft_blend.prepare_sft",
    },
)
