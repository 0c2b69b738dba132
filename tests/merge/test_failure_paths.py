"""Failure paths: a merge that fails validation, runs out of disk, meets Inf or is killed leaves nothing that
``from_pretrained`` loads, reports one line, and ``--resume`` still produces the bytes of a clean run."""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from merge_reference import load
from safetensors.torch import save_file

from m2rl_slime.merge import run_merge
from m2rl_slime.merge.cli import main
from m2rl_slime.merge.workdir import WORK_DIR, MergeIOError

SHARDS = {"shard_bytes": 100_000, "chunk_elems": 65536}


def _args(family, out, *extra):
    base, experts = family
    args = ["--base", str(base)]
    for name, path in experts.items():
        args += ["--expert", f"{name}={path}"]
    return [*args, "--no-progress", "--shard-size", "100000", "--chunk-elems", "65536", "--out", str(out), *extra]


def _shard_bytes(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.glob("model-*.safetensors"))}


def assert_not_loadable(out):
    """Neither the output directory nor its work directory loads as a model."""
    from transformers import Qwen3ForCausalLM

    for path in (out, out / WORK_DIR):
        with pytest.raises(OSError):
            Qwen3ForCausalLM.from_pretrained(path)
    assert not (out / "model.safetensors.index.json").exists()
    assert not list((out / WORK_DIR).glob("model.safetensors.index.json"))


@pytest.fixture(scope="module")
def clean(family, tmp_path_factory):
    """An uninterrupted ties merge, the bytes every recovered merge must reproduce."""
    from m2rl_slime.merge import ExpertSpec, MergeConfig, MergeOptions

    base, experts = family
    cfg = MergeConfig("ties", str(base), tuple(ExpertSpec(n, str(p)) for n, p in experts.items()), {"density": 0.2})
    out = tmp_path_factory.mktemp("clean") / "out"
    run_merge(cfg, out, MergeOptions(progress=False, **SHARDS))
    assert len(_shard_bytes(out)) >= 3
    return out


def _assert_like_clean(out, clean):
    from transformers import Qwen3ForCausalLM

    assert _shard_bytes(out) == _shard_bytes(clean)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean.iterdir())
    assert (out / "model.safetensors.index.json").read_bytes() == (clean / "model.safetensors.index.json").read_bytes()
    Qwen3ForCausalLM.from_pretrained(out)


def _with_bad_value(expert_dir, dst, tensor, value):
    bad = shutil.copytree(expert_dir, dst)
    tensors = load(bad)
    tensors[tensor].view(-1)[17] = value
    save_file(tensors, str(bad / "model.safetensors"), metadata={"format": "pt"})
    return bad


def test_failed_validation_publishes_nothing(family, tmp_path, capsys):
    base, experts = family
    name = "model.layers.1.self_attn.k_proj.weight"
    bad = _with_bad_value(experts["code"], tmp_path / "nan", name, float("nan"))
    fam = (base, {**experts, "code": bad})
    out = tmp_path / "out"
    assert main(_args(fam, out, "--method", "ta")) == 1
    err = capsys.readouterr().err
    assert err.startswith("m2rl-merge: failed: merged checkpoint failed validation") and err.count("\n") == 1
    assert name in err and str(out / WORK_DIR) in err
    assert [p.name for p in out.iterdir()] == [WORK_DIR]
    assert_not_loadable(out)
    manifest = json.loads((out / WORK_DIR / "merge_manifest.json").read_text())
    assert manifest["validation"]["ok"] is False and manifest["validation"]["nonfinite"] == {name: 1}
    # a rerun refuses to mix into it; --resume --no-scan publishes it unscanned, without recomputing
    assert main(_args(fam, out, "--method", "ta")) == 2
    assert "holds an interrupted merge" in capsys.readouterr().err
    assert main(_args(fam, out, "--method", "ta", "--resume", "--no-scan")) == 0
    published = json.loads((out / "merge_manifest.json").read_text())
    assert published["validation"]["ok"] and not published["validation"]["scanned"]
    assert not (out / WORK_DIR).exists()


@pytest.mark.parametrize("method", ["sce", "ties", "ta_dare"])
def test_inf_in_an_expert_is_a_one_line_validation_failure(family, tmp_path, capsys, method):
    base, experts = family
    name = "model.layers.0.mlp.up_proj.weight"
    bad = _with_bad_value(experts["math"], tmp_path / "inf", name, float("inf"))
    fam = (base, {**experts, "math": bad})
    params = {"sce": ["--select-topk", "0.5"], "ties": ["--density", "0.3"], "ta_dare": ["--drop", "0.5"]}[method]
    out = tmp_path / "out"
    assert main(_args(fam, out, "--method", method, *params)) == 1
    err = capsys.readouterr().err
    assert err.startswith("m2rl-merge: failed: merged checkpoint failed validation") and err.count("\n") == 1, err
    assert "NaN/Inf" in err and name in err
    assert_not_loadable(out)


class FullDisk:
    """A filesystem with `room` bytes left, as a buffered writer sees it: what does not fit stays in the
    buffer and every write, flush and close fails with ENOSPC until the file is gone."""

    def __init__(self, room: int):
        self.room = room
        self.real_open = builtins.open

    def open(self, path, mode="r", *args, **kwargs):
        if "w" not in mode:
            return self.real_open(path, mode, *args, **kwargs)
        return _FullFile(self, self.real_open(path, mode, buffering=0))


class _FullFile:
    def __init__(self, disk: FullDisk, raw):
        self._disk, self._raw, self._pending = disk, raw, 0

    def write(self, data):
        data = memoryview(data).cast("B")
        n = min(len(data), self._disk.room)
        self._raw.write(data[:n])
        self._disk.room -= n
        if n < len(data):
            self._pending += len(data) - n
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(data)

    def flush(self):
        if self._pending:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def close(self):
        try:
            self.flush()
        finally:
            self._raw.close()

    def fileno(self):
        return self._raw.fileno()

    def tell(self):
        return self._raw.tell()

    @property
    def closed(self):
        return self._raw.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.mark.parametrize("room", [200, 30_000, 150_000, 260_000])
def test_disk_full_leaves_no_temporary_file_and_resumes(family, config_of, quiet, tmp_path, monkeypatch, clean, room):
    from m2rl_slime.merge import io, writer

    disk = FullDisk(room)
    monkeypatch.setattr(writer, "open", disk.open, raising=False)
    monkeypatch.setattr(io, "open", disk.open, raising=False)
    cfg = config_of(family, "ties", {"density": 0.2})
    out = tmp_path / "out"
    with pytest.raises(MergeIOError, match="No space left on device.*rerun with --resume"):
        run_merge(cfg, out, quiet(**SHARDS))
    assert not list(out.rglob("*.tmp")), "a temporary file survived the full disk"
    assert [p.name for p in out.iterdir()] == [WORK_DIR]
    assert_not_loadable(out)
    monkeypatch.undo()  # space freed
    run_merge(cfg, out, quiet(resume=True, **SHARDS))
    _assert_like_clean(out, clean)


def test_disk_full_on_the_command_line_is_one_line(family, tmp_path, monkeypatch, capsys):
    from m2rl_slime.merge import writer

    monkeypatch.setattr(writer, "open", FullDisk(50_000).open, raising=False)
    assert main(_args(family, tmp_path / "out", "--method", "ta")) == 1
    err = capsys.readouterr().err
    assert err.startswith("m2rl-merge: failed: ") and err.count("\n") == 1
    assert "No space left on device" in err and "--resume" in err


# Runs the CLI in a child process that SIGKILLs itself at one point of the merge.
_KILL = """
import os, signal, sys
from m2rl_slime.merge import cli, core, workdir, writer

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

point = sys.argv[1]
if point == "mid_shard":  # inside the second shard: its .tmp stays behind
    write, calls = writer.ShardWriter.write, []
    def write_then_die(self, tensor):
        calls.append(1)
        write(self, tensor)
        if len(calls) == 4:
            die()
    writer.ShardWriter.write = write_then_die
elif point == "validation":
    core.validate_output = die
elif point == "publishing":
    class _Os:
        moved = 0
        def __getattr__(self, name):
            return getattr(os, name)
        def replace(self, src, dst):
            _Os.moved += 1
            if _Os.moved == 3:
                die()
            os.replace(src, dst)
    workdir.os = _Os()
elif point == "index":
    workdir.write_index = die
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("point", ["mid_shard", "validation", "publishing", "index"])
def test_sigkill_leaves_nothing_loadable_and_resume_completes(family, tmp_path, clean, point):
    out = tmp_path / "out"
    args = _args(family, out, "--method", "ties", "--density", "0.2")
    proc = subprocess.run([sys.executable, "-c", _KILL, point, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert_not_loadable(out)
    if point == "mid_shard":
        assert len(list((out / WORK_DIR).glob("*.safetensors.tmp"))) == 1
    assert main([*args, "--resume"]) == 0
    _assert_like_clean(out, clean)


def test_resume_of_a_finished_merge_revalidates_it(family, tmp_path, clean, capsys):
    out = tmp_path / "out"
    shutil.copytree(clean, out)
    args = _args(family, out, "--method", "ties", "--density", "0.2")
    assert main([*args, "--resume"]) == 0
    _assert_like_clean(out, clean)
    shard = min(out.glob("model-*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:-2])
    capsys.readouterr()
    assert main([*args, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "failed validation" in err and shard.name in err and err.count("\n") == 1


def test_unexpected_errors_are_one_line(family, tmp_path, monkeypatch, capsys):
    from m2rl_slime.merge import core

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(core, "validate_output", broken)
    assert main(_args(family, tmp_path / "out", "--method", "ta")) == 1
    err = capsys.readouterr().err
    assert err == "m2rl-merge: internal error: RuntimeError: boom second line (rerun with -v for the traceback)\n"
    assert_not_loadable(tmp_path / "out")


def test_tensor_passes_do_not_hide_an_inf_from_the_radix_select():
    """NaN from Inf - Inf has its sign bit set; the variance select must rank it, not crash on it."""
    from m2rl_slime.merge.methods.sce import _variance

    deltas = [torch.tensor([float("inf"), 1.0, 0.0]), torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])]
    var = _variance(deltas)
    assert torch.isnan(var[0]) and var.view(torch.int32)[0] > 0 and var[2] == 0
