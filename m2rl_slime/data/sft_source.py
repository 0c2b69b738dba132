"""slime glue: `SFTDataSource` for ``--data-source-path m2rl_slime.data.SFTDataSource``.

It serves the rows of a blend built by ``python -m m2rl_slime.data prepare-sft`` (``--prompt-data`` names
the blend directory or its ``manifest.json``) to slime's SFT rollout without loading them: it keeps the
shard index (jsonl line offsets, memory-mapped; parquet row groups) and one epoch permutation (4 bytes a
row), and decodes only the rows of the batch being drawn. slime's `Dataset` instead builds a `Sample` per
row of the whole file at start-up.

A sample looks exactly like one of slime's `Dataset` without ``--apply-chat-template``: ``prompt`` is the
row's ``--input-key`` value (the conversation), ``metadata`` is the row's ``--metadata-key`` object plus
``tools`` (the ``--tool-key`` value, decoded from a JSON string if needed), and ``label`` the
``--label-key`` value when that flag is set. ``metadata["source_name"]`` is the row's blend source, so
slime's train side logs per source.

Order, save and load follow slime's `RolloutDataSource` (see `m2rl_slime.data.sft_cursor`): seeded
per-epoch permutations with ``--rollout-shuffle`` (seed: ``m2rl_data.sft.seed``, else
``--rollout-seed``), state in ``{--save}/rollout/m2rl_sft_data_source_{rollout_id}.json``, restored from
``--load``. One difference: slime's ``train_async.py`` draws batch r+1 before it saves rollout r, so
slime's own source resumes one batch late; this source remembers the state before each draw and saves
the one taken before batch r+1, so a resumed run draws exactly the batches the interrupted run would have.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from typing import Any

from slime.rollout.data_source import RolloutDataSourceWithBuffer, pop_first
from slime.utils.misc import load_function
from slime.utils.types import Sample

from ..config import parse_dataclass, plugin_setting
from ..errors import ConfigError, LabelError
from .config import DataConfig
from .files import atomic_writer
from .sft_cursor import EpochCursor
from .sft_shards import BlendReader

logger = logging.getLogger(__name__)

_HISTORY = 8  # draws whose starting state is remembered (train_async runs one draw ahead)


def state_path(root: str, rollout_id: int) -> str:
    """Where the state saved at rollout `rollout_id` lives under slime's ``--save``/``--load`` dir."""
    return os.path.join(root, "rollout", f"m2rl_sft_data_source_{rollout_id}.json")


class SFTDataSource(RolloutDataSourceWithBuffer):
    """Streaming data source over a prepared SFT blend.

    Args:
        args: slime's parsed args; reads ``--prompt-data``, the data keys, ``--rollout-shuffle``,
            ``--rollout-seed``, ``--n-samples-per-prompt``, ``--save``/``--load``, ``--buffer-filter-path``
            and ``m2rl_data.sft``.
    """

    def __init__(self, args: Any):
        self._reader: BlendReader | None = None
        if not getattr(args, "rollout_global_dataset", True):
            super().__init__(args)  # slime's no-dataset behaviour: empty Sample() groups
            logger.warning("SFTDataSource: --disable-rollout-global-dataset is set; no rows are served")
            return
        self.args, self.metadata, self.dataset, self.buffer = args, {}, None, []
        path = getattr(args, "buffer_filter_path", None)
        self.buffer_filter = load_function(path) if path else pop_first
        config = parse_dataclass(DataConfig, plugin_setting(args, "m2rl_data"), "--custom-config-path m2rl_data").sft
        if not getattr(args, "prompt_data", None):
            raise ConfigError(
                "SFTDataSource needs --prompt-data DIR: a blend written by `m2rl_slime.data prepare-sft`"
            )
        self._reader = BlendReader(args.prompt_data)
        self.seed = config.seed if config.seed is not None else int(getattr(args, "rollout_seed", 42))
        self.shuffle = bool(getattr(args, "rollout_shuffle", False))
        self._cursor = EpochCursor(len(self._reader), self.seed, self.shuffle)
        self.sample_group_index = self.sample_index = 0
        self._next_draw, self._before = 0, {}
        self._warned_metadata = False
        self._check_args(args)
        logger.info(
            "SFTDataSource: %d rows from %s (%s shards, shuffle=%s, seed=%d)",
            len(self._reader),
            args.prompt_data,
            self._reader.format,
            self.shuffle,
            self.seed,
        )

    def _check_args(self, args: Any) -> None:
        if getattr(args, "apply_chat_template", False):
            logger.warning("SFTDataSource hands conversations unrendered; --apply-chat-template is ignored")
        if getattr(args, "multimodal_keys", None):
            raise ConfigError("SFTDataSource serves text conversations; unset --multimodal-keys")
        if getattr(args, "rollout_max_prompt_len", None) is not None:
            logger.warning("SFTDataSource: --rollout-max-prompt-len does not apply to conversations (slime skips it)")
        ((source, row),) = self._reader.read([0])
        if args.input_key not in row:
            raise ConfigError(
                f"--input-key {args.input_key!r}: the blend's rows have no such key (they carry "
                f"{', '.join(sorted(row))}; prepare-sft writes `messages`)"
            )

    # -- drawing -------------------------------------------------------------------------------------

    def begin_rollout(self, rollout_id: int) -> None:
        """Called by `m2rl_slime.data.sft_rollout.generate_rollout` before it draws rollout `rollout_id`."""
        self._next_draw = rollout_id

    def _state(self) -> dict[str, Any]:
        return {
            **self._cursor.state_dict(),
            "sample_group_index": self.sample_group_index,
            "sample_index": self.sample_index,
        }

    def get_samples(self, num_samples: int) -> list[list[Sample]]:
        if self._reader is None:
            return super().get_samples(num_samples)
        self._before[self._next_draw] = self._state()
        for old in [k for k in self._before if k < self._next_draw - _HISTORY]:
            del self._before[old]
        self._next_draw += 1
        groups = self._get_samples_from_buffer(num_samples)
        wanted = num_samples - len(groups)
        if wanted <= 0:
            return groups
        ids = self._cursor.take(wanted)
        for row_id, (source, row) in zip(ids.tolist(), self._reader.read(ids)):
            first = self._sample(row_id, source, row)
            group = [first] + [copy.deepcopy(first) for _ in range(self.args.n_samples_per_prompt - 1)]
            for sample in group:
                sample.group_index, sample.index = self.sample_group_index, self.sample_index
                self.sample_index += 1
            self.sample_group_index += 1
            groups.append(group)
        return groups

    def _sample(self, row_id: int, source: str, row: dict) -> Sample:
        args = self.args
        metadata = row.get(args.metadata_key) if args.metadata_key else None
        if not isinstance(metadata, dict):
            if metadata is not None and not self._warned_metadata:
                logger.warning("SFTDataSource: row field %r is not an object; using {}", args.metadata_key)
                self._warned_metadata = True
            metadata = {}
        if args.tool_key is not None and args.tool_key in row:
            tools = row[args.tool_key]
            tools = json.loads(tools) if isinstance(tools, str) else tools
            if not isinstance(tools, list):
                raise LabelError(f"blend row {row_id} ({source}): {args.tool_key} must be a list")
            metadata["tools"] = tools
        metadata["source_name"] = source
        label = None
        if args.label_key is not None:
            if args.label_key not in row:
                raise ConfigError(f"--label-key {args.label_key!r}: blend row {row_id} ({source}) has no such key")
            label = row[args.label_key]
        return Sample(prompt=row[args.input_key], label=label, metadata=metadata)

    # -- state ---------------------------------------------------------------------------------------

    def save(self, rollout_id: int) -> None:
        if self._reader is None:
            return
        if not getattr(self.args, "save", None):
            logger.warning("SFTDataSource.save(%s): --save is unset, state not saved", rollout_id)
            return
        state = self._before.get(rollout_id + 1, self._state())
        document = {
            **state,
            "blend_sha256": self._reader.manifest["blend_sha256"],
            "rows": len(self._reader),
            "seed": self.seed,
            "shuffle": self.shuffle,
            "metadata": self.metadata,
        }
        with atomic_writer(state_path(self.args.save, rollout_id)) as f:
            json.dump(document, f)

    def load(self, rollout_id: int | None = None) -> None:
        if self._reader is None:
            return
        self._next_draw = (rollout_id if rollout_id is not None else -1) + 1
        if not getattr(self.args, "load", None) or rollout_id is None:
            return
        path = state_path(self.args.load, rollout_id)
        if not os.path.exists(path):
            logger.info("SFTDataSource: no state at %s, starting fresh", path)
            return
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        if state.get("blend_sha256") != self._reader.manifest["blend_sha256"]:
            raise ConfigError(
                f"{path}: saved for another blend than {self.args.prompt_data}; restore that blend or resume "
                "into a fresh --save directory"
            )
        if (state.get("seed"), state.get("shuffle")) != (self.seed, self.shuffle):
            logger.warning(
                "SFTDataSource: the seed/shuffle changed since %s (%s/%s -> %s/%s); the order differs from here on",
                path,
                state.get("seed"),
                state.get("shuffle"),
                self.seed,
                self.shuffle,
            )
        self._cursor.load_state_dict(state)
        self.sample_group_index = int(state["sample_group_index"])
        self.sample_index = int(state["sample_index"])
        self.metadata = state.get("metadata", {})
        logger.info(
            "SFTDataSource: resumed from %s (epoch %d, row %d)", path, state["epoch_id"], state["sample_offset"]
        )

    def __len__(self) -> int:
        if self._reader is None:
            return super().__len__()
        return len(self._reader)
