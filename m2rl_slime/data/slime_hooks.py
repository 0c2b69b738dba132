"""slime glue: `MultiDomainDataSource` for ``--data-source-path m2rl_slime.data.MultiDomainDataSource``.

The only module of `m2rl_slime.data` that imports slime. It reads the `m2rl_data` plugin setting once,
loads every prompt file with slime's own `Dataset` (so chat templates, tools and
``--rollout-max-prompt-len`` behave exactly as for ``--prompt-data``), and delegates mixing, buffering,
indices and state to the pure `MixingSource`. With ``--dynamic-sampling-filter-path
m2rl_slime.data.keep_domain_quota`` it also holds the per-domain quotas of each trained batch
(`m2rl_slime.data.slime_quota`). ``--prompt-data`` is ignored: prompts come from
``m2rl_data.prompt_files``. Run with ``--input-key prompt --label-key label --metadata-key metadata
--tool-key tools --apply-chat-template`` for files written by ``python -m m2rl_slime.data prepare``.
"""

from __future__ import annotations

import gc
import json
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

from slime.rollout.data_source import RolloutDataSourceWithBuffer
from slime.utils.data import Dataset
from slime.utils.misc import load_function
from slime.utils.processing_utils import load_processor, load_tokenizer
from slime.utils.types import Sample

from ..config import parse_dataclass, plugin_setting
from ..errors import ConfigError
from ..hooks import accepted_paths
from .config import DataConfig
from .files import atomic_writer, first_row_keys
from .mixing import MixingSource
from .mixture import mixture_weights
from .quota import BatchQuota
from .slime_quota import QUOTA_FILTER_PATHS, group_pool, register

logger = logging.getLogger(__name__)

WHERE = "--custom-config-path m2rl_data"
CURRICULUM_HOOK = "m2rl_slime.hooks.observe"


def state_path(root: str, rollout_id: int) -> str:
    """Where the state of rollout `rollout_id` lives under slime's ``--save``/``--load`` dir."""
    return os.path.join(root, "rollout", f"m2rl_data_source_{rollout_id}.json")


class PromptRecord(NamedTuple):
    """What a pool keeps of one prompt: 2 GC-tracked containers instead of a `Sample`'s ~10."""

    prompt: Any
    label: Any
    metadata: dict
    multimodal_inputs: dict | None


def compact(samples: list[Sample], interned: dict[str, list]) -> list[PromptRecord]:
    """Pool records of slime `Dataset` samples; identical ``metadata["tools"]`` lists become one shared list.

    Fewer tracked objects keep the process's full garbage-collection passes short (their cost grows with
    every live container); one workbench row carries ~140 containers of tool schemas, all identical.
    """
    records = []
    for sample in samples:
        metadata = sample.metadata
        tools = metadata.get("tools")
        if isinstance(tools, list):
            key = json.dumps(tools, sort_keys=True, ensure_ascii=False)
            metadata["tools"] = interned.setdefault(key, tools)
        records.append(PromptRecord(sample.prompt, sample.label, metadata, sample.multimodal_inputs))
    return records


def make_sample(prompt: PromptRecord, pool: str, group_index: int, index: int) -> Sample:
    """A fresh sample sharing the prompt's immutable payload; metadata is copied one level deep.

    Nested metadata values (tools, unit tests, options, ...) are shared by every sample of the prompt
    (slime deep-copies them); hooks must replace them rather than mutate them in place.
    """
    metadata = dict(prompt.metadata)
    metadata["source_name"] = pool
    multimodal = prompt.multimodal_inputs
    return Sample(
        group_index=group_index,
        index=index,
        prompt=prompt.prompt,
        label=prompt.label,
        metadata=metadata,
        multimodal_inputs=dict(multimodal) if multimodal is not None else None,
    )


class MultiDomainDataSource(RolloutDataSourceWithBuffer):
    """Multi-domain mixing data source (see `m2rl_slime.data.mixing.MixingSource` for the semantics).

    Args:
        args: slime's parsed args; reads ``m2rl_data`` plus the data-key, tokenizer, seed, save/load and
            buffer flags.
    """

    def __init__(self, args: Any):
        self._core: MixingSource | None = None
        self.inner_filter = None
        if not getattr(args, "rollout_global_dataset", True):
            super().__init__(args)  # slime's own no-dataset behaviour: empty Sample() groups
            logger.warning("MultiDomainDataSource: --disable-rollout-global-dataset is set; no prompts are mixed")
            return
        self.args = args
        self.metadata: dict = {}
        self.dataset = None
        self.epoch_id = self.sample_offset = self.sample_group_index = self.sample_index = 0
        path = getattr(args, "buffer_filter_path", None)
        self.buffer_filter = load_function(path) if path else None
        self.config = parse_dataclass(DataConfig, plugin_setting(args, "m2rl_data"), WHERE)
        self._core = self._build_core(args, self.config)
        self.buffer = self._core.buffer
        if self._core.batch_quota is not None and self.config.quota.filter:
            self.inner_filter = load_function(self.config.quota.filter)
        register(args, self)
        if self.config.gc_freeze:
            gc.collect()
            gc.freeze()
            logger.warning(
                "MultiDomainDataSource: froze %d objects of this process out of cyclic GC (m2rl_data.gc_freeze, "
                "on by default): removes full-collection pauses of 0.4-1.4 s every few get_samples calls "
                "(p95 29.5 ms instead of 895 ms in benchmarks/data_source.py); set m2rl_data.gc_freeze: false "
                "to keep slime's garbage collection untouched",
                gc.get_freeze_count(),
            )

    def _build_core(self, args: Any, config: DataConfig) -> MixingSource:
        if not config.prompt_files:
            raise ConfigError(f"{WHERE}.prompt_files is empty; map each domain to a prepared prompt file")
        if getattr(args, "prompt_data", None):
            logger.warning("MultiDomainDataSource ignores --prompt-data; prompts come from m2rl_data.prompt_files")
        if args.label_key is None:
            raise ConfigError("--label-key is unset; files from `m2rl_slime.data prepare` need --label-key label")
        pools = self._load_pools(args, config)
        sizes = {name: len(pool) for name, pool in pools.items()}
        weights = mixture_weights(config.mixture, sizes, config.weights, config.temperature)
        seed = config.seed if config.seed is not None else getattr(args, "rollout_seed", 42)
        if getattr(args, "rollout_all_samples_process_path", None) not in accepted_paths("observe"):
            logger.info("curriculum off (enable with --rollout-all-samples-process-path %s)", CURRICULUM_HOOK)
        logger.info("MultiDomainDataSource: pools %s, %s mixture %s, seed %s", sizes, config.mixture, weights, seed)
        shuffle = bool(getattr(args, "rollout_shuffle", False))
        if not shuffle:
            logger.warning(
                "MultiDomainDataSource: --rollout-shuffle is unset, so every pool is read in file order (as "
                "slime's own data source does); set --rollout-shuffle to shuffle each pool per epoch"
            )
        return MixingSource(
            pools,
            weights,
            seed,
            args.n_samples_per_prompt,
            make_sample,
            curriculum=config.curriculum,
            take_from_buffer=self._take_from_buffer,
            shuffle=shuffle,
            batch_quota=self._batch_quota(args, config),
            pool_of=group_pool,
        )

    @staticmethod
    def _batch_quota(args: Any, config: DataConfig) -> BatchQuota | None:
        """Per-domain quotas when the quota filter is set; otherwise say when slime's loop skews the counts."""
        path = getattr(args, "dynamic_sampling_filter_path", None)
        if path in QUOTA_FILTER_PATHS:
            if getattr(args, "buffer_filter_path", None):
                raise ConfigError(
                    f"--buffer-filter-path {args.buffer_filter_path} cannot be combined with the quota filter "
                    "(buffered groups are served by domain); drop one of them"
                )
            return BatchQuota(args.rollout_batch_size, config.quota.patience)
        if config.quota.filter:
            raise ConfigError(
                f"{WHERE}.quota.filter is set but --dynamic-sampling-filter-path is {path!r}; set it to "
                "m2rl_slime.data.keep_domain_quota (which runs quota.filter), or drop quota.filter"
            )
        batch = getattr(args, "rollout_batch_size", None)
        over = getattr(args, "over_sampling_batch_size", None) or batch
        if batch is not None and (path or over > batch):
            logger.warning(
                "MultiDomainDataSource: with --over-sampling-batch-size %s > --rollout-batch-size %s or "
                "--dynamic-sampling-filter-path %s, slime trains on the first groups to finish, so domains with "
                "long responses lose their share; for exact per-domain counts use --dynamic-sampling-filter-path "
                "m2rl_slime.data.keep_domain_quota (your filter goes in m2rl_data.quota.filter)",
                over,
                batch,
                path,
            )
        return None

    @property
    def batch_quota(self) -> BatchQuota | None:
        """The per-domain quota state of the current trained batch (None without the quota filter)."""
        return None if self._core is None else self._core.batch_quota

    def _load_pools(self, args: Any, config: DataConfig) -> dict[str, list[PromptRecord]]:
        for name, path in config.prompt_files.items():
            missing = {args.input_key, args.label_key} - first_row_keys(path)
            if missing:
                raise ConfigError(
                    f"{WHERE}.prompt_files.{name}: {path} has no key(s) {', '.join(sorted(missing))} "
                    "(check --input-key/--label-key; prepared files use prompt/label)"
                )
        tokenizer = load_tokenizer(args.hf_checkpoint, trust_remote_code=True)
        processor = load_processor(args.hf_checkpoint, trust_remote_code=True)
        if (dump := getattr(args, "dump_details", None)) is not None:
            tokenizer.save_pretrained(Path(dump) / "tokenizer")
        pools, interned = {}, {}
        for name, path in config.prompt_files.items():
            dataset = Dataset(
                path,
                tokenizer=tokenizer,
                processor=processor,
                max_length=args.rollout_max_prompt_len,
                prompt_key=args.input_key,
                multimodal_keys=args.multimodal_keys,
                label_key=args.label_key,
                metadata_key=args.metadata_key,
                tool_key=args.tool_key,
                apply_chat_template=args.apply_chat_template,
                apply_chat_template_kwargs=args.apply_chat_template_kwargs,
                seed=args.rollout_seed,
            )
            if len(dataset.origin_samples) == 0:
                raise ConfigError(f"{WHERE}.prompt_files.{name}: {path} has no prompts (after the length filter)")
            # held once, compactly; the Dataset is dropped (its shuffle would reseed the global RNG anyway)
            pools[name] = compact(dataset.origin_samples, interned)
        return pools

    def _take_from_buffer(self, buffer: list[list[Sample]], n: int) -> list[list[Sample]]:
        if self.buffer_filter is None:
            taken = buffer[:n]
            del buffer[:n]
            return taken
        return self.buffer_filter(self.args, None, buffer, n)

    def get_samples(self, num_samples: int) -> list[list[Sample]]:
        if self._core is None:
            return super().get_samples(num_samples)
        return self._core.get_samples(num_samples)

    def add_samples(self, samples: list[list[Sample]]) -> None:
        if self._core is None:
            return super().add_samples(samples)
        self._core.add_samples(samples)

    def observe_rewards(self, stats: Any) -> None:
        """Curriculum entry point (called by `m2rl_slime.data.curriculum.observe`)."""
        if self._core is not None:
            self._core.observe_rewards(stats)

    def save(self, rollout_id: int) -> None:
        if self._core is None:
            return
        if not getattr(self.args, "save", None):
            logger.warning("MultiDomainDataSource.save(%s): --save is unset, state not saved", rollout_id)
            return
        path = state_path(self.args.save, rollout_id)
        with atomic_writer(path) as f:
            json.dump(self._core.state_dict(), f)

    def load(self, rollout_id: int | None = None) -> None:
        if self._core is None or not getattr(self.args, "load", None):
            return
        path = state_path(self.args.load, rollout_id)
        if not os.path.exists(path):
            logger.info("MultiDomainDataSource: no state at %s, starting fresh", path)
            return
        with open(path, encoding="utf-8") as f:
            self._core.load_state_dict(json.load(f))
        logger.info("MultiDomainDataSource: resumed from %s", path)

    def __len__(self) -> int:
        if self._core is None:
            return super().__len__()
        return len(self._core)
