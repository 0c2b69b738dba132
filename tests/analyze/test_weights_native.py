"""The native block kernel against the numpy one (the reference): every storage dtype, both rules,
non-finite elements, short last groups, pair subsets, permutation draws, projections, whole runs.

The extension is built by setup.py where a C compiler is available. Without it these tests skip, naming
it; with ``M2RL_REQUIRE_NATIVE=1`` (set by ``.ci/run``) a missing extension fails the suite instead.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from m2rl_slime.analyze.weights import kernel
from m2rl_slime.analyze.weights.config import GROUP, WeightsOptions
from m2rl_slime.analyze.weights.kernel import TensorJob, block_sums, native_built
from m2rl_slime.analyze.weights.srht import Srht
from m2rl_slime.errors import ConfigError

if not native_built():
    if os.environ.get("M2RL_REQUIRE_NATIVE") == "1":
        raise RuntimeError("M2RL_REQUIRE_NATIVE=1 but m2rl_slime.analyze.weights._native was not built (setup.py)")
    pytest.skip(
        "needs the C extension m2rl_slime.analyze.weights._native (built by setup.py)", allow_module_level=True
    )

STORAGE = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}
COUNTS = ("changed", "nonfinite", "inter", "perm", "group_cc", "tail_cc", "tail_inter")


def _stored(values: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values as the kernel receives them (bf16: the top half of the float32 bits, truncated)."""
    values = values.astype(np.float32)
    if dtype == "BF16":
        return (values.view(np.uint32) >> 16).astype(np.uint16)
    return values.astype(STORAGE[dtype])


def _family(n: int, e: int, dtype: str, seed: int, nonfinite: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    base = (0.05 * rng.standard_normal(n)).astype(np.float32)
    experts = []
    for i in range(e):
        moved = rng.random(n) < (0.2 + 0.15 * i)
        step = rng.choice([1e-4, 1e-3, 3e-2], size=n) * rng.standard_normal(n)
        experts.append(_stored(base * (1 + step * moved), dtype))
    base = _stored(base, dtype)
    if nonfinite:
        bad = np.array([np.nan, np.inf, -np.inf], np.float32)
        for arr in [base, *experts]:
            at = rng.choice(n, size=max(1, n // 5000), replace=False)
            arr[at] = _stored(rng.choice(bad, size=at.size), dtype)
    return base, experts


def _pair_jobs(n: int, e: int, dtype: str, bitwise: bool, pairs=None, shifts=(), projection=None, eta=1e-3):
    pairs = tuple((i, j) for i in range(e) for j in range(i + 1, e)) if pairs is None else pairs
    args = ("t", n, eta, bitwise, dtype, shifts, pairs, projection)
    return TensorJob(*args, native=False), TensorJob(*args, native=True)


def _assert_same(ref, got) -> None:
    for key in COUNTS:
        assert np.array_equal(getattr(ref, key), getattr(got, key)), key
    scale = max(1e-30, float(np.abs(ref.dot).max()))
    np.testing.assert_allclose(got.dot, ref.dot, rtol=2e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(got.sq, ref.sq, rtol=2e-5, atol=1e-6 * scale)
    if ref.proj is not None:
        np.testing.assert_allclose(got.proj, ref.proj, rtol=1e-4, atol=1e-5 * float(np.abs(ref.proj).max()))


@pytest.mark.parametrize("dtype", ["BF16", "F16", "F32"])
@pytest.mark.parametrize("bitwise", [True, False])
@pytest.mark.parametrize("nonfinite", [False, True])
def test_native_equals_numpy(dtype, bitwise, nonfinite):
    n, e = 2 * GROUP + 1234, 4  # two whole groups and a short last one
    base, experts = _family(n, e, dtype, seed=hash((dtype, bitwise, nonfinite)) % 1000, nonfinite=nonfinite)
    ref_job, job = _pair_jobs(n, e, dtype, bitwise, eta=1e-3 if bitwise else 2e-2)
    ref, got = block_sums(ref_job, 0, base, experts), block_sums(job, 0, base, experts)
    _assert_same(ref, got)
    assert (got.nonfinite.sum() > 0) == nonfinite
    assert 0 < got.changed.min() and got.changed.max() < n


@pytest.mark.parametrize("n", [1, 511, 513, GROUP, GROUP + 1])
@pytest.mark.parametrize("e", [1, 2, 6])
def test_native_sizes_and_expert_counts(n, e):
    base, experts = _family(n, e, "BF16", seed=n + e, nonfinite=False)
    ref_job, job = _pair_jobs(n, e, "BF16", True)
    _assert_same(block_sums(ref_job, 0, base, experts), block_sums(job, 0, base, experts))


def test_native_block_inside_a_tensor_with_pair_subset_draws_and_projection():
    """The second block of a longer tensor (its last group short), some pairs only, draws and the SRHT."""
    numel, start, e = 5 * GROUP + 999, 4 * GROUP, 3
    base, experts = _family(numel, e, "BF16", seed=3, nonfinite=True)
    proj = Srht.build("t", numel, seed=0, k=64, seeds=2)
    ref_job, job = _pair_jobs(numel, e, "BF16", True, pairs=((0, 2), (1, 2)), shifts=(7, 30000), projection=proj)
    cut = [x[start:] for x in (base, *experts)]
    ref, got = block_sums(ref_job, start, cut[0], cut[1:]), block_sums(job, start, cut[0], cut[1:])
    _assert_same(ref, got)
    assert got.tail_inter.sum() > 0 and got.perm.sum() > 0
    assert got.inter[0, 1] == 0  # not a requested pair


def test_native_reads_every_f16_pattern_exactly():
    """All 65536 float16 bit patterns against a zero base: the deltas are the values, Inf/NaN are counted."""
    values = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    base = np.zeros_like(values)
    d = np.empty((1, values.size), np.float32)
    mask = np.empty((1, values.size), np.bool_)
    nonfinite = np.empty(2, np.int64)
    counts = np.empty((1, 1, 1), np.int64)
    dot, sq = np.empty((1, 1)), np.empty((1, 1))
    kernel._native.block_stats(base, (values,), 1, True, 1e-3, GROUP, dot, sq, counts, nonfinite, d, mask)
    finite = np.isfinite(values)
    assert nonfinite.tolist() == [0, int((~finite).sum())]
    assert np.array_equal(d[0][finite], values[finite].astype(np.float32))
    assert np.array_equal(mask[0], finite & (values != 0))
    assert counts[0, 0, 0] == int(mask.sum())


def test_native_bf16_rule_equals_bitwise_inequality_on_every_neighbour():
    """Every positive bf16 value up to 2^31 against the next one up: the rule at eta=1e-3 always fires (the
    range keeps the sums of squared deltas finite; the numpy kernel's test covers every finite value)."""
    bits = np.arange(0, 0x4F00, dtype=np.uint16)  # +0 up to 2^31
    ref_job, job = _pair_jobs(bits.size, 2, "BF16", False)
    got = block_sums(job, 0, bits, [bits + 1, bits.copy()])
    assert got.changed.tolist() == [bits.size, 0]
    _assert_same(block_sums(ref_job, 0, bits, [bits + 1, bits.copy()]), got)


def test_native_refuses_wrong_buffers():
    base = np.zeros(1024, np.uint16)
    dot, sq, counts, nf = np.empty((1, 1)), np.empty((1, 1)), np.empty((1, 1, 1), np.int64), np.empty(2, np.int64)
    with pytest.raises(ValueError, match="expert"):
        kernel._native.block_stats(base, (base[:-1],), 0, True, 1e-3, GROUP, dot, sq, counts, nf, None, None)
    with pytest.raises(ValueError, match="counts"):
        kernel._native.block_stats(base, (base,), 0, True, 1e-3, GROUP, dot, sq, counts[:0], nf, None, None)
    with pytest.raises(ValueError, match="experts"):
        kernel._native.block_stats(base, (base,) * 65, 0, True, 1e-3, GROUP, dot, sq, counts, nf, None, None)
    with pytest.raises(ValueError, match="dtype"):
        kernel._native.block_stats(base, (base,), 7, True, 1e-3, GROUP, dot, sq, counts, nf, None, None)
    frozen = dot.copy()
    frozen.flags.writeable = False
    with pytest.raises((BufferError, ValueError)):  # an output numpy cannot lend for writing
        kernel._native.block_stats(base, (base,), 0, True, 1e-3, GROUP, frozen, sq, counts, nf, None, None)


def test_whole_runs_agree_and_record_their_kernel(tmp_path, family, quiet):
    base, experts = family
    out = {}
    for k in ("native", "numpy"):
        report = run(tmp_path / k, base, experts, quiet(kernel=k, perm_draws=2))
        assert report.weights["run"]["kernel"] == k
        out[k] = json.loads((tmp_path / k / "weights.json").read_text())
    a, b = out["native"]["table"]["groups"], out["numpy"]["table"]["groups"]
    assert a.keys() == b.keys()
    compared = 0
    for group in a:
        for pair, x in a[group].get("pairs", {}).items():
            y = b[group]["pairs"][pair]
            compared += 1
            for key in ("intersection", "union", "jaccard", "jaccard_indep", "jaccard_perm"):
                assert x[key] == y[key], (group, pair, key)
            for key in ("cosine", "cosine_projected"):
                assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-6), (group, pair, key)
    assert compared >= 9


def test_kernel_is_part_of_the_run_id(tmp_path, family, quiet):
    """A run interrupted under one kernel is not resumed under the other (the numbers would mix)."""
    from m2rl_slime.analyze.weights.analysis import open_inputs
    from m2rl_slime.analyze.weights.engine import run_id

    base, experts = family
    ids = set()
    for k in ("native", "numpy"):
        options = quiet(kernel=k)
        ids.add(run_id(open_inputs(str(base), list(experts.items()), options), options))
    assert len(ids) == 2


def test_native_requested_but_not_built_is_one_line(monkeypatch):
    monkeypatch.setattr(kernel, "_native", None)
    with pytest.raises(ConfigError, match="--kernel native.*--kernel numpy"):
        WeightsOptions(kernel="native").validate()
    assert WeightsOptions(kernel="auto").native() is False


def test_auto_without_the_extension_says_so_and_runs_numpy(tmp_path, family, quiet, monkeypatch, caplog):
    monkeypatch.setattr(kernel, "_native", None)
    base, experts = family
    with caplog.at_level("WARNING"):
        report = run(tmp_path / "out", base, experts, quiet())
    assert report.weights["run"]["kernel"] == "numpy"
    assert "native block kernel was not built" in caplog.text


def run(out, base, experts, options):
    from m2rl_slime.analyze.weights import run_weights

    return run_weights(str(base), [(k, str(v)) for k, v in experts.items()], out, options, figures=False)
