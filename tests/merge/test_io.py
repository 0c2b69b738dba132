"""Streaming I/O: header parsing errors, checkpoint index checks, the shard writer's format and atomicity."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from m2rl_slime.errors import ConfigError
from m2rl_slime.merge import io
from m2rl_slime.merge.io import AdviseAhead, Checkpoint, FileCache, ReadAhead, map_array, map_range, read_header
from m2rl_slime.merge.writer import ShardWriter


def test_shard_writer_streams_a_valid_safetensors_file(tmp_path):
    a = torch.arange(10, dtype=torch.float32).reshape(2, 5).to(torch.bfloat16)
    b = torch.arange(7, dtype=torch.int64)
    w = ShardWriter(tmp_path / "s.safetensors", [("a", "BF16", (2, 5)), ("b", "I64", (7,))], {"format": "pt"})
    assert not (tmp_path / "s.safetensors").exists()
    w.write(a.reshape(-1)[:4])
    w.write(a.reshape(-1)[4:])
    w.write(b)
    size, sha = w.close()
    got = load_file(str(tmp_path / "s.safetensors"))
    assert torch.equal(got["a"], a) and torch.equal(got["b"], b)
    assert size == (tmp_path / "s.safetensors").stat().st_size and len(sha) == 64
    assert not list(tmp_path.glob("*.tmp"))


def test_shard_writer_refuses_short_data_and_abort_cleans_up(tmp_path):
    w = ShardWriter(tmp_path / "s.safetensors", [("a", "F32", (4,))], {})
    w.write(torch.zeros(3))
    with pytest.raises(Exception, match="expected"):
        w.close()
    assert not (tmp_path / "s.safetensors").exists()
    w = ShardWriter(tmp_path / "t.safetensors", [("a", "F32", (4,))], {})
    w.abort()
    assert not list(tmp_path.iterdir()) or not list(tmp_path.glob("t.*"))


def test_map_range_reads_slices_of_sharded_checkpoints(tmp_path):
    x = torch.randn(1000).to(torch.bfloat16)
    save_file({"pad": torch.zeros(3, dtype=torch.uint8), "x": x}, str(tmp_path / "model.safetensors"))
    ckpt = Checkpoint(tmp_path)
    files = FileCache()
    jobs = [(600, lambda s=s: map_range(files, ckpt.tensors["x"], s, min(s + 300, 1000))) for s in range(0, 1000, 300)]
    reads = ReadAhead(jobs, max_bytes=1200)
    parts = [reads.next() for _ in jobs]
    with pytest.raises(Exception, match="schedule exhausted"):
        reads.next()
    reads.close()
    files.close()
    assert torch.equal(torch.cat(parts), x)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_map_array_is_the_storage_of_map_range_without_torch(tmp_path, dtype):
    """numpy views of the same bytes: bf16 as its uint16 bit patterns, the others as numpy floats; misaligned
    data (an odd-sized tensor before it) is copied, not viewed."""
    import numpy as np

    x = torch.randn(1001).to(dtype)
    save_file({"a": torch.zeros(3, dtype=torch.uint8), "x": x}, str(tmp_path / "model.safetensors"))
    ckpt, files = Checkpoint(tmp_path), FileCache()
    for lo, hi in ((0, 1001), (17, 400), (5, 5)):
        got = map_array(files, ckpt.tensors["x"], lo, hi)
        want = x[lo:hi].view(torch.int16).numpy().view(np.uint16) if dtype == torch.bfloat16 else x[lo:hi].numpy()
        assert got.dtype == want.dtype and np.array_equal(got, want)
    files.close()


def test_blas_threads_pins_openblas_to_one_thread_and_restores_it():
    import ctypes

    import numpy as np

    from m2rl_slime.merge.runtime import _OPENBLAS_SETTERS, BlasThreads, _openblas_libraries

    getters = []
    for path in _openblas_libraries():
        lib = ctypes.CDLL(path)
        getters += [getattr(lib, g) for s, g in _OPENBLAS_SETTERS if hasattr(lib, s) and hasattr(lib, g)][:1]
    if "openblas" in np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]:
        assert getters  # numpy's own OpenBLAS is found
    before = [g() for g in getters]
    with BlasThreads():
        assert all(g() == 1 for g in getters)
    assert [g() for g in getters] == before


def test_header_and_index_errors(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(ConfigError, match="not a safetensors file"):
        read_header(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 4) + b"{x: ")
    with pytest.raises(ConfigError, match="corrupt safetensors header"):
        Checkpoint(tmp_path)
    save_file({"a": torch.zeros(2)}, str(tmp_path / "model-1.safetensors"))
    save_file({"b": torch.zeros(2)}, str(tmp_path / "model-2.safetensors"))
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="2 safetensors files but no model.safetensors.index.json"):
        Checkpoint(tmp_path)
    index = {"metadata": {}, "weight_map": {"a": "model-1.safetensors", "b": "model-1.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match="tensor 'b' is not in model-1.safetensors"):
        Checkpoint(tmp_path)
    index["weight_map"] = {"a": "model-1.safetensors", "b": "model-3.safetensors"}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match="model-3.safetensors is listed but missing"):
        Checkpoint(tmp_path)


def _infos(tmp_path, n=6, numel=10):
    save_file(
        {f"t{i}": torch.arange(numel, dtype=torch.float32) + i for i in range(n)}, str(tmp_path / "model.safetensors")
    )
    ckpt = Checkpoint(tmp_path)
    return [ckpt.tensors[f"t{i}"] for i in range(n)]


def test_advise_ahead_keeps_a_byte_budget_beyond_the_range_in_use(tmp_path, monkeypatch):
    infos = _infos(tmp_path)  # six ranges of 40 bytes
    calls = []
    monkeypatch.setattr(io, "advise_range", lambda files, info, start, stop: calls.append(info.name))
    files = FileCache()
    advise = AdviseAhead(files, [(i, 0, 10) for i in infos], max_bytes=100)
    advise.ahead(0)  # ranges starting before 40 + 100 bytes: 0..3
    assert calls == ["t0", "t1", "t2", "t3"]
    advise.ahead(0)  # nothing new
    advise.ahead(1)  # 80 + 100: up to the range starting at 160
    assert calls == ["t0", "t1", "t2", "t3", "t4"]
    advise.ahead(5)
    advise.ahead(6)  # past the end: no error, nothing more
    assert calls == [f"t{i}" for i in range(6)]
    calls.clear()
    AdviseAhead(files, [(i, 0, 10) for i in infos], max_bytes=0).ahead(2)  # the ranges up to the one in use
    assert calls == ["t0", "t1", "t2"]
    files.close()


def test_advise_ahead_reads_into_the_page_cache_for_real(tmp_path):
    infos = _infos(tmp_path)
    files = FileCache()
    AdviseAhead(files, [(i, 2, 8) for i in infos], max_bytes=1 << 20).ahead(0)  # posix_fadvise accepts it
    assert map_array(files, infos[3], 2, 8).tolist() == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    files.close()


def test_mapped_pages_fall_back_to_touching_where_populate_is_refused(tmp_path, monkeypatch):
    infos = _infos(tmp_path)
    files = FileCache()
    if io._POPULATE_READ is not None:
        monkeypatch.setattr(io, "_POPULATE_READ", 0x7FFF)  # an advice no kernel knows: EINVAL
    assert map_array(files, infos[1], 0, 10).tolist() == [float(x + 1) for x in range(10)]
    assert io._POPULATE_READ is None  # refused once, then never asked again
    assert map_array(files, infos[2], 5, 10).tolist() == [7.0, 8.0, 9.0, 10.0, 11.0]
    files.close()
