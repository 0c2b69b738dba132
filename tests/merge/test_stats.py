"""Delta statistics equal a dense recount from the inputs, the fp32 reference merge and the written output."""

from __future__ import annotations

import torch
from merge_reference import load, reference

from m2rl_slime.merge import run_merge
from m2rl_slime.merge.stats import DeltaCounts, summarize


def test_statistics_match_a_dense_recount(family, config_of, quiet, tmp_path):
    report = run_merge(config_of(family, "average"), tmp_path / "out", quiet(chunk_elems=65536, block_elems=65536))
    base_dir, experts = family
    base, out = load(base_dir), load(tmp_path / "out")
    exps = {n: load(p) for n, p in experts.items()}
    merged = reference("average", base, list(exps.values()), [1.0] * 3, {}, list(exps))
    want = {n: [0, 0, 0] for n in exps}
    merged_changed = merged_rounded = 0
    for name, b in base.items():
        same = out[name].view(torch.int16) == b.view(torch.int16)
        differs = merged[name] != b.float()
        merged_changed += int(differs.sum())
        merged_rounded += int((differs & same).sum())
        for n, e in exps.items():
            changed = e[name].view(torch.int16) != b.view(torch.int16)
            want[n][0] += int(changed.sum())
            want[n][1] += int((changed & same).sum())
            want[n][2] += int((changed & same & differs).sum())
    stats = report.manifest["statistics"]
    for n, (changed, vanished, rounded) in want.items():
        got = stats["experts"][n]
        assert (got["changed"], got["vanished"], got["rounded_back"]) == (changed, vanished, rounded), n
        assert rounded > 0
    assert stats["merged_changed"] == merged_changed and stats["merged_rounded_back"] == merged_rounded


def test_summary_warns_when_changes_round_back():
    counts = DeltaCounts(2, elements=100, per_expert=[[50, 40, 30], [10, 1, 0]])
    report, warnings = summarize(counts, ["math", "code"], warn_at=0.1)
    assert report["experts"]["math"]["rounded_back_fraction"] == 0.6
    assert len(warnings) == 1 and "'math': 60.0%" in warnings[0]
