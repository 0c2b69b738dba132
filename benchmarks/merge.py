"""Benchmark `python -m m2rl_slime.merge` against mergekit and the raw I/O floor, side by side in one run.

Inputs: 1 base + N experts (default 5), Qwen3-shaped, bf16, generated once under ``--work`` (git-ignored
``bench_out/merge`` by default). The default shape is Qwen3-0.6B's (hidden 1024, 28 layers, MLP 3072,
16/8 heads x 128, vocab 151936, tied embeddings): 596 M parameters, 1.19 GB per checkpoint in bf16,
written as 3 shards. Experts are the base plus a sparse, RL-like delta (35% of the elements move).

Measured, each in its own process (wall time from spawn to exit plus the fsync of its output; peak RSS =
VmHWM, and peak RssAnon/RssFile, sampled from /proc every 20 ms):

* the I/O floor: read every input byte (64 MB preads with POSIX_FADV_SEQUENTIAL, the fastest cold read
  of every byte measured on this box), then write and fsync one output of the merged size; measured
  first and last, the faster of the two counts;
* our ties / ta_dare / average / ta (``python -m m2rl_slime.merge``);
* mergekit's closest configurations (ties density 0.2, dare_linear density 0.2, linear, task_arithmetic;
  dtype float32, out_dtype bfloat16, --random-seed 0), installed from PyPI into a separate venv
  (torch==2.13.0 first, so no CUDA wheels are pulled).

By default every contender starts with the inputs out of the page cache (``posix_fadvise(DONTNEED)`` on
our own input files only; ``--cache warm`` reads them first instead). Finally the outputs of both tools are
compared element by element.

Run:  python benchmarks/merge.py   (--skip-mergekit: ours + floor only; --preset tiny: smoke test)
Prints one JSON line per measurement, then a summary table with the ratios against the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESETS = {
    # name: (hidden, intermediate, layers, heads, kv_heads, head_dim, vocab)
    "qwen3-0.6b": (1024, 3072, 28, 16, 8, 128, 151936),
    "tiny": (256, 768, 4, 4, 2, 64, 32000),
}
METHODS = {  # ours -> (our params, mergekit merge_method, mergekit parameters)
    "ties": ([], "ties", {"density": 0.2, "weight": 1.0}, {"normalize": True, "lambda": 1.0}),
    "ta_dare": (["--drop", "0.8"], "dare_linear", {"density": 0.2, "weight": 1.0}, {"lambda": 1.0}),
    "average": ([], "linear", {"weight": 1.0}, {}),
    "ta": ([], "task_arithmetic", {"weight": 1.0}, {"lambda": 1.0}),
}


def shapes(preset: str) -> dict[str, tuple[int, ...]]:
    h, i, n, nh, nkv, hd, v = PRESETS[preset]
    out = {"model.embed_tokens.weight": (v, h)}
    for layer in range(n):
        p = f"model.layers.{layer}."
        out.update(
            {
                p + "input_layernorm.weight": (h,),
                p + "self_attn.q_proj.weight": (nh * hd, h),
                p + "self_attn.k_proj.weight": (nkv * hd, h),
                p + "self_attn.v_proj.weight": (nkv * hd, h),
                p + "self_attn.o_proj.weight": (h, nh * hd),
                p + "self_attn.q_norm.weight": (hd,),
                p + "self_attn.k_norm.weight": (hd,),
                p + "post_attention_layernorm.weight": (h,),
                p + "mlp.gate_proj.weight": (i, h),
                p + "mlp.up_proj.weight": (i, h),
                p + "mlp.down_proj.weight": (h, i),
            }
        )
    out["model.norm.weight"] = (h,)
    return out


def _config(preset: str) -> dict:
    h, i, n, nh, nkv, hd, v = PRESETS[preset]
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "hidden_size": h,
        "intermediate_size": i,
        "num_hidden_layers": n,
        "num_attention_heads": nh,
        "num_key_value_heads": nkv,
        "head_dim": hd,
        "vocab_size": v,
        "tie_word_embeddings": True,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 4096,
        "rope_theta": 1000000.0,
        "hidden_act": "silu",
        "torch_dtype": "bfloat16",
    }


def _save(path: Path, tensors: dict, preset: str, shard_bytes: int = 512_000_000) -> None:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(_config(preset), indent=2))
    groups, size = [[]], 0
    for name, t in tensors.items():
        if groups[-1] and size + t.numel() * 2 > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += t.numel() * 2
    weight_map = {}
    for k, names in enumerate(groups):
        fname = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: tensors[n] for n in names}, str(path / fname), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(names, fname))
    total = sum(t.numel() * 2 for t in tensors.values())
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )


def generate(work: Path, preset: str, n_experts: int) -> tuple[Path, list[Path]]:
    """Write (once) the base and expert checkpoints; return their directories."""
    import torch

    root = work / f"inputs-{preset}-{n_experts}"
    dirs = [root / "base"] + [root / f"expert{k}" for k in range(n_experts)]
    if (root / ".done").exists():
        return dirs[0], dirs[1:]
    shutil.rmtree(root, ignore_errors=True)
    g = torch.Generator().manual_seed(0)
    base = {}
    for name, shape in shapes(preset).items():
        scale = 1.0 if name.endswith("norm.weight") else 0.0
        base[name] = (scale + 0.02 * torch.randn(shape, generator=g)).to(torch.bfloat16)
    _save(dirs[0], base, preset)
    for k, path in enumerate(dirs[1:]):
        expert = {}
        for name, b in base.items():
            moved = torch.rand(b.shape, generator=g) < 0.35
            delta = torch.randn(b.shape, generator=g).mul_(0.002 * (1 + k) / n_experts).mul_(moved)
            expert[name] = delta.add_(b).to(torch.bfloat16)
            del moved, delta
        _save(path, expert, preset)
        print(f"generated {path}", file=sys.stderr, flush=True)
    (root / ".done").write_text("ok")
    return dirs[0], dirs[1:]


def ensure_mergekit(venv: Path) -> Path:
    """A separate venv with torch==2.13.0 (CPU wheel) then mergekit from PyPI; returns mergekit-yaml."""
    exe = venv / "bin" / "mergekit-yaml"
    if exe.exists():
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "mergekit"], check=True)
    return exe


class _Sampler(threading.Thread):
    """Peak VmHWM / RssAnon / RssFile of a process, sampled every 20 ms from /proc.

    VmHWM restarts at exec, unlike wait4's ru_maxrss, which also counts the pages the child shared with
    this (torch-importing) parent between fork and exec.
    """

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.hwm, self.anon, self.file, self.stop = pid, 0, 0, 0, threading.Event()

    def _sample(self) -> bool:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return False
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if "VmHWM" not in fields:  # zombie
            return False
        kb = {k: int(fields.get(k, "0 kB").split()[0]) * 1024 for k in ("VmHWM", "RssAnon", "RssFile")}
        self.hwm = max(self.hwm, kb["VmHWM"])
        self.anon, self.file = max(self.anon, kb["RssAnon"]), max(self.file, kb["RssFile"])
        return True

    def run(self) -> None:
        while not self.stop.is_set() and self._sample():
            time.sleep(0.02)


def measure(label: str, cmd: list[str], out: Path | None = None) -> dict:
    """Run cmd to completion; wall time (incl. fsync of `out`) and peak memory."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    sampler = _Sampler(proc.pid)
    sampler.start()
    output = proc.stdout.read().decode(errors="replace")
    sampler.stop.set()
    sampler.join()
    rc = proc.wait()
    if out is not None and out.exists():
        for f in out.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    wall = time.perf_counter() - t0
    rec = {
        "label": label,
        "rc": rc,
        "wall_s": round(wall, 2),
        "peak_rss_gb": round(sampler.hwm / 1e9, 3),
        "peak_anon_gb": round(sampler.anon / 1e9, 3),
        "peak_file_gb": round(sampler.file / 1e9, 3),
    }
    if rc != 0:
        rec["error"] = output[-2000:]
    print(json.dumps(rec), flush=True)
    return rec


FLOOR = r"""
import os, sys
files, out, size = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
buf = memoryview(bytearray(64 << 20))
# read: pread in 64 MB pieces with POSIX_FADV_SEQUENTIAL, the fastest cold read of every byte measured on
# this box (plain pread and mmap+MAP_POPULATE+touch are up to 1.5-2x slower)
for f in files:
    fd = os.open(f, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    while os.readv(fd, [buf]) > 0:
        pass
    os.close(fd)
with open(out, "wb") as fh:
    left = size
    while left > 0:
        left -= fh.write(buf[: min(left, len(buf))])
    fh.flush()
    os.fsync(fh.fileno())
"""


def _inputs_files(dirs: list[Path]) -> list[Path]:
    return [f for d in dirs for f in sorted(d.glob("*.safetensors"))]


def set_cache(dirs: list[Path], mode: str) -> None:
    """cold: drop our input files from the page cache (posix_fadvise DONTNEED: only these files, nobody
    else's); warm: read them once so every contender starts from the same hot cache."""
    for f in _inputs_files(dirs):
        fd = os.open(f, os.O_RDONLY)
        try:
            if mode == "cold":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                buf = bytearray(64 << 20)
                while os.readv(fd, [buf]) > 0:
                    pass
        finally:
            os.close(fd)


def run_floor(work: Path, dirs: list[Path]) -> dict:
    files = _inputs_files(dirs)
    size = sum(f.stat().st_size for f in _inputs_files(dirs[:1]))
    target = work / "floor.bin"
    rec = measure("io_floor", [sys.executable, "-c", FLOOR, ",".join(map(str, files)), str(target), str(size)])
    rec["read_gb"] = round(sum(f.stat().st_size for f in files) / 1e9, 2)
    rec["write_gb"] = round(size / 1e9, 2)
    target.unlink(missing_ok=True)
    return rec


def run_ours(work: Path, base: Path, experts: list[Path], method: str, threads: int) -> dict:
    out = work / f"ours-{method}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "m2rl_slime.merge",
        "--method",
        method,
        "--base",
        str(base),
        "--out",
        str(out),
        "--no-progress",
        "--threads",
        str(threads),
        *METHODS[method][0],
    ]
    for k, e in enumerate(experts):
        cmd += ["--expert", f"e{k}={e}"]
    rec = measure(f"ours:{method}", cmd, out)
    if rec["rc"] == 0:
        manifest = json.loads((out / "merge_manifest.json").read_text())
        rec["internal_s"] = manifest["run"]["seconds"]
    return rec


def run_mergekit(work: Path, exe: Path, base: Path, experts: list[Path], method: str) -> dict:
    _, mk_method, model_params, global_params = METHODS[method]
    out = work / f"mergekit-{method}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = {
        "merge_method": mk_method,
        "dtype": "float32",
        "out_dtype": "bfloat16",
        "models": [{"model": str(e), "parameters": model_params} for e in experts],
    }
    if mk_method != "linear":
        cfg["base_model"] = str(base)
    if global_params:
        cfg["parameters"] = global_params
    path = work / f"mergekit-{method}.yaml"
    path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
    return measure(f"mergekit:{mk_method}", [str(exe), str(path), str(out), "--random-seed", "0"], out)


def compare(a: Path, b: Path) -> dict:
    """Fraction of output elements that are bit-identical, and the largest absolute difference."""
    from safetensors import safe_open

    def tensors(path):
        index = path / "model.safetensors.index.json"
        if index.exists():
            return {n: path / f for n, f in json.loads(index.read_text())["weight_map"].items()}
        with safe_open(path / "model.safetensors", "pt") as f:
            return dict.fromkeys(f.keys(), path / "model.safetensors")

    ta, tb = tensors(a), tensors(b)
    same = total = 0
    worst = 0.0
    for name in ta.keys() & tb.keys():
        with safe_open(ta[name], "pt") as fa, safe_open(tb[name], "pt") as fb:
            x, y = fa.get_tensor(name), fb.get_tensor(name)
        same += int((x == y).sum())
        total += x.numel()
        worst = max(worst, float((x.float() - y.float()).abs().max()))
    return {
        "identical_fraction": round(same / max(total, 1), 6),
        "max_abs_diff": worst,
        "tensors_only_in_one": len(ta.keys() ^ tb.keys()),
    }


def hardware() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem / 1e9, 1),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
    }


def _summary(records: dict, preset: str, n: int) -> None:
    floor = records["io_floor"]
    print(
        f"\n== merge benchmark: 1 base + {n} experts, {preset}, bf16, {floor['write_gb']} GB each, "
        f"{floor['read_gb']} GB read, {records['cache']} page cache =="
    )
    print(f"{'run':28s} {'wall s':>7s} {'merge s':>8s} {'RSS GB':>7s} {'anon GB':>8s}  {'vs floor':>16s}  vs mergekit")
    for label, rec in records.items():
        if not isinstance(rec, dict) or "wall_s" not in rec:
            continue
        inner = rec.get("internal_s")
        ratio = f"{rec['wall_s'] / floor['wall_s']:.2f}x"
        if inner is not None:
            ratio += f" ({inner / floor['wall_s']:.2f}x)"
        mk = ""
        other = records.get(f"mergekit-for:{label[5:]}") if label.startswith("ours:") else None
        if other and other.get("rc") == 0 and rec.get("rc") == 0:
            mk = f"{other['wall_s'] / rec['wall_s']:.2f}x faster, {rec['peak_rss_gb'] / other['peak_rss_gb']:.2f}x RSS"
        merge_s = f"{inner:8.1f}" if inner is not None else " " * 8
        print(
            f"{label:28s} {rec['wall_s']:7.1f} {merge_s} {rec['peak_rss_gb']:7.2f} {rec['peak_anon_gb']:8.2f}  "
            f"{ratio:>16s}  {mk}"
        )
    print(
        "wall s: process start to exit incl. fsync of the output; merge s: our run_merge time (without the\n"
        "interpreter and torch import). Targets: ours:ties >= 3x faster than mergekit ties with <= 0.5x its peak\n"
        "RSS; ours:average and ours:ta <= 2x the I/O floor."
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=REPO / "bench_out" / "merge")
    p.add_argument("--preset", choices=sorted(PRESETS), default="qwen3-0.6b")
    p.add_argument("--experts", type=int, default=5)
    p.add_argument("--methods", default="ties,ta_dare,average,ta")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip-mergekit", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep merged outputs")
    p.add_argument(
        "--cache",
        choices=["cold", "warm"],
        default="cold",
        help="page cache state of the inputs at the start of every contender (default cold)",
    )
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"hardware": hardware(), "cache": args.cache}), flush=True)
    base, experts = generate(args.work, args.preset, args.experts)
    exe = None if args.skip_mergekit else ensure_mergekit(args.work / "mergekit-venv")
    dirs = [base, *experts]
    set_cache(dirs, args.cache)
    records: dict = {"cache": args.cache, "io_floor": run_floor(args.work, dirs)}
    for method in args.methods.split(","):
        set_cache(dirs, args.cache)
        records[f"ours:{method}"] = run_ours(args.work, base, experts, method, args.threads)
        if exe is not None:
            set_cache(dirs, args.cache)
            rec = run_mergekit(args.work, exe, base, experts, method)
            records[f"mergekit-for:{method}"] = rec
            if rec["rc"] == 0 and records[f"ours:{method}"]["rc"] == 0:
                agree = compare(args.work / f"ours-{method}", args.work / f"mergekit-{method}")
                print(json.dumps({"compare": method, **agree}), flush=True)
        if not args.keep:
            for d in args.work.glob(f"*-{method}"):
                shutil.rmtree(d, ignore_errors=True)
    set_cache(dirs, args.cache)
    again = run_floor(args.work, dirs)
    if again["wall_s"] < records["io_floor"]["wall_s"]:  # the floor is the faster of the two measurements
        records["io_floor"] = again
    print(json.dumps({"load_avg_after": os.getloadavg()}), flush=True)
    _summary(records, args.preset, args.experts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
