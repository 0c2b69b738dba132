"""The work directory of a merge and its resume state.

Until a merge is complete and validated, everything it writes lives in ``OUT/incomplete_merge/``: the
shards, ``progress.json`` (the plan id and every finished shard with its size and sha256) and, after a
failed validation, the manifest that records why. Nothing there is loadable: it has no config.json and
no index. `publish` then moves the shards, the side files and the manifest up into ``OUT`` and writes
``model.safetensors.index.json`` last, so an ``OUT`` with an index is a complete, validated merge, and a
merge that fails or is killed at any point leaves nothing that ``from_pretrained`` would load.

``--resume`` refuses a different plan, re-hashes the finished shards (moving back any that an
interrupted `publish` had already moved up), deletes temporary files and continues at the first shard
that is missing or does not verify.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import ConfigError, M2RLError
from .io import INDEX_NAME, TMP_SUFFIX, fsync_dir, sha256_file, write_atomic
from .manifest import MANIFEST, write_index
from .plan import MergePlan

log = logging.getLogger(__name__)
WORK_DIR = "incomplete_merge"
PROGRESS = "progress.json"


class MergeIOError(M2RLError):
    """Reading an input or writing the output failed (disk full, I/O error); the work directory is kept."""


def io_error(exc: OSError, work: Path) -> MergeIOError:
    """One-line error for an OSError during a merge: what failed, and how to continue."""
    where = f"{exc.filename}: " if exc.filename else ""
    return MergeIOError(
        f"{where}{exc.strerror or exc}; nothing loadable was written, the partial merge is kept in {work} "
        "(fix the cause and rerun with --resume)"
    )


class Progress:
    """Completed shards of one plan in one work directory, persisted after every shard.

    Attributes:
        out: The output directory.
        work: ``out / WORK_DIR``, where shards are written until `publish`.
        done: Finished shards (file, bytes, sha256), in plan order.
        finished: The manifest, when `out` already holds this merge (complete and published).
    """

    def __init__(self, out: Path, plan: MergePlan):
        self.out = out
        self.work = out / WORK_DIR
        self.plan_id = plan.plan_id
        self.done: list[dict[str, Any]] = []
        self.stats: dict[str, Any] = {}
        self.model_stats: Any = None
        self.finished: dict[str, Any] | None = None

    @classmethod
    def start(cls, out: Path, plan: MergePlan, resume: bool) -> Progress:
        """Prepare `out` for `plan`: a fresh empty directory, or a verified partial one with `resume`.

        Raises:
            ConfigError: `out` holds something else, or a different merge.
        """
        state = cls(out, plan)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a directory")
        if not (out.is_dir() and any(out.iterdir())) or (resume and state._nothing_written()):
            state.work.mkdir(parents=True, exist_ok=True)
            state._clean_tmp()
            state.save()
            return state
        interrupted = (state.work / PROGRESS).is_file()
        if not resume:
            if interrupted:
                raise ConfigError(
                    f"--out {out} holds an interrupted merge ({WORK_DIR}/); pass --resume to continue it"
                )
            raise ConfigError(f"--out {out} is not empty; pass --resume to continue a merge there or use an empty dir")
        manifest = state._read(out / MANIFEST) if (out / MANIFEST).is_file() else {}
        if manifest.get("plan_id") == plan.plan_id and (out / INDEX_NAME).is_file():
            state.done, state.finished = manifest["shards"], manifest
            shutil.rmtree(state.work, ignore_errors=True)  # a kill after the index left it behind
            return state
        if not interrupted:
            raise ConfigError(f"--resume: {out} has no {WORK_DIR}/{PROGRESS} (not an interrupted m2rl merge)")
        data = state._read(state.work / PROGRESS)
        if data.get("plan_id") != plan.plan_id:
            raise ConfigError(
                f"--resume: {out} holds a merge of different inputs, parameters or version; refusing "
                f"(delete {out} to start over, or use another --out)"
            )
        state.model_stats = data.get("model_stats")
        state._verify(data.get("done", []), data.get("stats", {}), plan)
        return state

    def _nothing_written(self) -> bool:
        """`out` holds only a work directory without progress: killed before its first save."""
        entries = list(self.out.iterdir())
        if entries != [self.work] or not self.work.is_dir():
            return False
        return all(p.name.endswith(TMP_SUFFIX) for p in self.work.iterdir())

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--resume: {path} is unreadable ({exc}); delete {self.out} and rerun") from None
        if not isinstance(data, dict):
            raise ConfigError(f"--resume: {path} is not a merge record; delete {self.out} and rerun")
        return data

    def _clean_tmp(self) -> None:
        for d in (self.out, self.work):
            for tmp in d.glob("*" + TMP_SUFFIX):
                tmp.unlink()

    def _verify(self, done: list[dict[str, Any]], stats: dict[str, Any], plan: MergePlan) -> None:
        self._clean_tmp()
        expected = [s.file for s in plan.shards]
        for name in expected:  # an interrupted publish may have moved some shards up already
            if (self.out / name).is_file() and not (self.work / name).exists():
                os.replace(self.out / name, self.work / name)
        for i, entry in enumerate(done):
            path = self.work / entry["file"]
            if (
                i >= len(expected)
                or entry["file"] != expected[i]
                or not path.is_file()
                or path.stat().st_size != entry["bytes"]
                or sha256_file(path) != entry["sha256"]
            ):
                log.warning("resume: shard %s is missing or does not verify; continuing from it", entry["file"])
                break
            self.done.append(entry)
            self.stats[entry["file"]] = stats[entry["file"]]
        for name in expected[len(self.done) :]:
            (self.work / name).unlink(missing_ok=True)
        self.save()
        log.info("resume: %d of %d shards verified", len(self.done), len(expected))

    def record(self, file: str, nbytes: int, sha256: str, stats: dict[str, Any]) -> None:
        """Persist one completed shard."""
        self.done.append({"file": file, "bytes": nbytes, "sha256": sha256})
        self.stats[file] = stats
        self.save()

    def save(self) -> None:
        data = {"plan_id": self.plan_id, "done": self.done, "stats": self.stats, "model_stats": self.model_stats}
        write_atomic(self.work / PROGRESS, json.dumps(data, indent=1).encode())


def publish(progress: Progress, plan: MergePlan, side_files: list[str]) -> None:
    """Move the validated shards, the side files and the manifest from the work directory up into `out`,
    write the index there last, then delete the work directory.

    Args:
        side_files: Names of the files (config, tokenizer, manifest) already written into the work directory.
    """
    out, work = progress.out, progress.work
    for name in [s.file for s in plan.shards] + side_files:
        os.replace(work / name, out / name)
    fsync_dir(out)
    write_index(out, plan)  # the commit point: only now does `out` look like a checkpoint
    shutil.rmtree(work)
    fsync_dir(out)
