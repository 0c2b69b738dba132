"""``analyze kl`` end to end against fake SGLang servers whose samples and log-probs are scripted: every cell
equals the closed-form KL of the scripted distributions, the neighbourhood rule picks the expected experts,
delta-Perf comes from the summaries, the scoring went through the teacher client at the sampling
temperature, ``--api chat`` re-tokenizes, and a later ``--multi`` reuses the stored trajectories."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from behaviour_fakes import VOCAB, FakeLM, build_tokenizer_dir, kl, tempered

from m2rl_slime.analyze.cli import main


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    return build_tokenizer_dir(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def tokenizer(tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tok_dir)


@pytest.fixture(scope="module")
def vocab(tokenizer) -> list[int]:
    ids = tokenizer.convert_tokens_to_ids(list(VOCAB))
    assert len(set(ids)) == 4 and all(isinstance(i, int) for i in ids)
    return ids


def write_prompts(path: Path, domain: str, n: int) -> Path:
    rows = [{"prompt": [{"role": "user", "content": f"[{domain}] prompt number {i}"}], "label": None,
             "metadata": {"uid": f"{domain}-{i}", "domain": domain}, "tools": []} for i in range(n)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def weights(vocab, *values):
    return dict(zip(vocab, values))


def models(tokenizer, vocab):
    """Expert math, expert code, and two multi models; weights are counts of the sampled multiset."""
    w = lambda *v: weights(vocab, *v)  # noqa: E731
    return {
        "math": FakeLM(tokenizer, {"math": w(4, 2, 1, 1), "code": w(4, 2, 1, 1)}, model_id="math"),
        "code": FakeLM(tokenizer, {"math": w(1, 1, 1, 1), "code": w(1, 1, 1, 1)}, model_id="code"),
        "multi": FakeLM(tokenizer, {"math": w(1, 1, 1, 1), "code": w(4, 2, 1, 1)}, model_id="multi"),
        "merge": FakeLM(tokenizer, {"math": w(4, 2, 1, 1), "code": w(2, 3, 1, 2)}, model_id="merge"),
    }


def argv(tmp_path, servers, tok_dir, out, *extra, multis=("multi",)):
    prompts = [f"--prompts=math={write_prompts(tmp_path / 'math.jsonl', 'math', 3)}",
               f"--prompts=code={write_prompts(tmp_path / 'code.jsonl', 'code', 3)}"]  # fmt: skip
    return ["kl", *prompts, f"--expert=math={servers['math'].url}", f"--expert=code={servers['code'].url}",
            *(f"--multi={m}={servers[m].url}" for m in multis), f"--tokenizer={tok_dir}", f"--out={out}",
            "--n-prompts=0", "--concurrency=3", "--no-progress", *extra]  # fmt: skip


def test_cells_equal_the_closed_form_kl_and_neighbours_follow_eq1(tmp_path, tokenizer, vocab, tok_dir, capsys):
    servers = models(tokenizer, vocab)
    for name, (m, c) in {"sft": (0.2, 0.1), "math": (0.5, 0.15), "code": (0.3, 0.4)}.items():
        d = tmp_path / f"eval_{name}"
        d.mkdir()
        bench = {"aime24": {"avg": m}, "aime25": {"avg": m + 0.1}, "lcb_v5": {"avg": c}}
        (d / "summary.json").write_text(json.dumps({"benchmarks": bench}))
    out = tmp_path / "kl"
    with servers["math"], servers["code"], servers["multi"]:
        code = main(argv(tmp_path, servers, tok_dir, out, *(f"--summary={n}={tmp_path / f'eval_{n}'}" for n in
                                                              ("sft", "math", "code"))))  # fmt: skip
        assert code == 0, capsys.readouterr()
    report = json.loads((out / "kl.json").read_text())
    cells = report["matrices"]["multi"]["cells"]
    for b in ("math", "code"):
        for a in ("math", "code"):
            p, q = tempered(servers[b].weights[a], 1.0), tempered(servers["multi"].weights[a], 1.0)
            cell = cells[b][a]
            length = sum(servers[b].weights[a].values())
            assert cell["n_sequences"] == 3 and cell["n_tokens"] == 3 * length
            assert cell["per_token"]["k1"]["value"] == pytest.approx(kl(p, q), abs=1e-9)
            assert cell["per_token"]["k3"]["value"] == pytest.approx(kl(p, q), abs=1e-9)
            assert cell["per_sequence"]["k1"]["value"] == pytest.approx(length * kl(p, q), abs=1e-9)
            assert cell["per_sequence"]["k1"]["se"] == pytest.approx(0.0, abs=1e-9)
    # math expert vs uniform multi on math: KL > 0; the code expert is uniform too: KL = 0 < eps -> neighbour
    assert report["matrices"]["multi"]["eps"]["math"] == pytest.approx(math.log(4) - 1.75 * math.log(2), abs=1e-9)
    assert report["matrices"]["multi"]["neighbours"] == {"math": ["code"], "code": ["math"]}
    assert cells["math"]["math"]["diagonal"] and not cells["math"]["math"]["neighbour"]
    delta = report["perf"]["delta"]
    assert delta["math"]["math"] == pytest.approx(100 * (0.55 - 0.25)) and delta["code"]["code"] == pytest.approx(30)
    assert cells["code"]["math"]["delta_perf"] == pytest.approx(100 * (0.35 - 0.25))
    csv_lines = (out / "kl.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 4 and csv_lines[0].startswith("multi,expert,domain")
    scoring = [r for r in servers["multi"].requests if r["sampling_params"]["max_new_tokens"] == 0]
    assert len(scoring) == 12 and all(
        r["return_logprob"] and r["sampling_params"]["temperature"] == 1.0 for r in scoring
    )
    printed = capsys.readouterr().out
    assert "multi = multi" in printed and "12 trajectories sampled" in printed


def test_a_later_multi_reuses_the_trajectories_and_rules_change_without_servers(tmp_path, tokenizer, vocab, tok_dir):
    servers = models(tokenizer, vocab)
    out = tmp_path / "kl"
    with servers["math"], servers["code"], servers["multi"], servers["merge"]:
        assert main(argv(tmp_path, servers, tok_dir, out)) == 0
        sampled = len([r for r in servers["math"].requests if r["sampling_params"]["max_new_tokens"] > 0])
        multi_requests = len(servers["multi"].requests)
        assert main(argv(tmp_path, servers, tok_dir, out, multis=("multi", "merge"))) == 0
    assert len([r for r in servers["math"].requests if r["sampling_params"]["max_new_tokens"] > 0]) == sampled == 6
    assert len(servers["multi"].requests) == multi_requests  # nothing scored twice
    assert len(servers["merge"].requests) == 12
    report = json.loads((out / "kl.json").read_text())
    merge = report["matrices"]["merge"]["cells"]
    p, q = tempered(servers["code"].weights["code"], 1.0), tempered(servers["merge"].weights["code"], 1.0)
    assert merge["code"]["code"]["per_token"]["k1"]["value"] == pytest.approx(kl(p, q), abs=1e-9)
    assert merge["math"]["math"]["per_token"]["k1"]["value"] == pytest.approx(0.0, abs=1e-12)
    # another rule from the stored records, no server running
    assert main(["kl", f"--out={out}", "--report-only", "--rule=rank", "--rank=1", "--normalise=sequence"]) == 0
    ranked = json.loads((out / "kl.json").read_text())
    assert ranked["rule"]["rule"] == "rank" and ranked["matrices"]["multi"]["neighbours"]["math"] == ["code"]
    assert ranked["matrices"]["multi"]["eps"]["math"] is None


def test_tempered_scoring_and_the_temperature_check(tmp_path, tokenizer, vocab, tok_dir):
    """At T = 0.5 the sampler's multiset is w^2 and both models score at 0.5 (the teacher client also
    checks once per model that the server scales input log-probs)."""
    w = lambda *v: weights(vocab, *v)  # noqa: E731
    servers = {
        # non-uniform everywhere: a uniform distribution is the same at every temperature, and the teacher
        # client would (rightly) refuse a server whose log-probs do not change with the temperature
        "math": FakeLM(tokenizer, {"math": w(2, 1, 1, 1), "code": w(1, 1, 2, 1)}),
        "code": FakeLM(tokenizer, {"math": w(1, 2, 1, 1), "code": w(2, 2, 1, 1)}),
        "multi": FakeLM(tokenizer, {"math": w(1, 2, 3, 1), "code": w(3, 1, 1, 2)}),
    }
    out = tmp_path / "kl"
    with servers["math"], servers["code"], servers["multi"]:
        assert main(argv(tmp_path, servers, tok_dir, out, "--temperature=0.5")) == 0
    cells = json.loads((out / "kl.json").read_text())["matrices"]["multi"]["cells"]
    p, q = tempered(servers["math"].weights["math"], 0.5), tempered(servers["multi"].weights["math"], 0.5)
    assert cells["math"]["math"]["per_token"]["k1"]["value"] == pytest.approx(kl(p, q), abs=1e-9)
    temps = [r["sampling_params"]["temperature"] for r in servers["multi"].requests]
    # every sample at T, plus the scaling check at 1.0 (once per model; concurrent first requests may each check)
    assert temps.count(0.5) == 12 and 1 <= temps.count(1.0) <= 3 and len(temps) == temps.count(0.5) + temps.count(1.0)


def test_chat_api_retokenizes_and_appends_the_end_of_turn(tmp_path, tokenizer, vocab, tok_dir):
    w = lambda *v: weights(vocab, *v)  # noqa: E731
    servers = {
        "math": FakeLM(tokenizer, {"math": w(4, 2, 1, 1), "code": w(1, 1, 1, 1)}, other_logprob=-5.0),
        "code": FakeLM(tokenizer, {"math": w(1, 1, 1, 1), "code": w(1, 1, 1, 1)}, other_logprob=-5.0),
        "multi": FakeLM(tokenizer, {"math": w(1, 1, 1, 1), "code": w(1, 1, 1, 1)}, other_logprob=-7.0),
    }
    out = tmp_path / "kl"
    with servers["math"], servers["code"], servers["multi"]:
        assert main(argv(tmp_path, servers, tok_dir, out, "--api=chat")) == 0
    cell = json.loads((out / "kl.json").read_text())["matrices"]["multi"]["cells"]["math"]["math"]
    p, q = tempered(servers["math"].weights["math"], 1.0), tempered(servers["multi"].weights["math"], 1.0)
    # 8 vocabulary tokens (KL each on average) + the end-of-turn token scored -5 vs -7 (log-ratio 2)
    assert cell["n_tokens"] == 3 * 9
    assert cell["per_token"]["k1"]["value"] == pytest.approx((8 * kl(p, q) + 2.0) / 9, abs=1e-9)
    assert cell["per_token"]["k3"]["value"] == pytest.approx((8 * kl(p, q) + math.expm1(-2.0) + 2.0) / 9, abs=1e-9)
    assert tokenizer.eos_token_id in servers["multi"].requests[-1]["input_ids"]


def test_bad_input_is_one_line(tmp_path, tok_dir, capsys):
    assert main(["kl", f"--out={tmp_path / 'kl'}", "--report-only"]) == 2
    assert "no run.json" in capsys.readouterr().err
    assert main(["kl", f"--out={tmp_path / 'kl'}", "--prompts=math"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["kl", f"--out={tmp_path / 'kl'}", "--rule=absolute"]) == 2
    assert "--eps" in capsys.readouterr().err


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_a_killed_run_resumes_without_duplicates(tmp_path, tokenizer, vocab, tok_dir):
    import os
    import signal
    import subprocess
    import sys
    import time

    from m2rl_slime.analyze.keyed_log import read_records
    from m2rl_slime.analyze.neighbours.sampling import PAIR_KEY, TRAJECTORY_KEY

    servers = models(tokenizer, vocab)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    killed, fresh = tmp_path / "killed", tmp_path / "fresh"
    command = lambda out: [sys.executable, "-m", "m2rl_slime.analyze", *argv(tmp_path, servers, tok_dir, out)]  # noqa: E731
    with servers["math"], servers["code"], servers["multi"]:
        for server in servers.values():
            server.latency = 0.2
        proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while _lines(killed / "trajectories.jsonl") < 3:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run wrote no trajectory"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.stderr.close()
        partial = _lines(killed / "trajectories.jsonl")
        assert 3 <= partial < 12
        for server in servers.values():
            server.latency = 0.0
        sampled_before = len([r for r in servers["math"].requests if r["sampling_params"]["max_new_tokens"] > 0])
        sampled_before += len([r for r in servers["code"].requests if r["sampling_params"]["max_new_tokens"] > 0])
        assert main(argv(tmp_path, servers, tok_dir, killed)) == 0  # the rerun (in-process: no second start-up)
        sampled = len(
            [r for s in ("math", "code") for r in servers[s].requests if r["sampling_params"]["max_new_tokens"] > 0]
        )
        assert sampled - sampled_before <= 12 - partial + 3  # only what was missing (+ what was in flight)
        assert main(argv(tmp_path, servers, tok_dir, fresh)) == 0
    for name, key in (("trajectories.jsonl", TRAJECTORY_KEY), ("pairs.jsonl", PAIR_KEY)):
        keys = [tuple(r[k] for k in key) for _, r in read_records(killed / name, key)]
        assert len(keys) == len(set(keys)) == 12
    cells = lambda out: json.loads((out / "kl.json").read_text())["matrices"]  # noqa: E731
    assert cells(killed) == cells(fresh)
