"""Agent verifier throughput and state-copy cost, side by side with the reference approach, in one run.

Inputs: a workplace set's rollouts (`example_rollouts.jsonl`, NeMo-Gym's format) joined with the ground truth
derived for them, scored again and again. Default: the repository's own set
(`tests/examples/data/workplace_assistant` with `tests/agent/data/rollout_ground_truth.repo.jsonl`); the figures
in docs/benchmarks.md are on NeMo-Gym's (`--wa-dir` its `workplace_assistant` folder, `--ground-truth
tests/agent/data/rollout_ground_truth.jsonl`).

1. ours: `m2rl_slime.agent.verifier.verify` in one process (tables loaded once; ground-truth outcomes cached
   per process, as in the reward workers) and with that cache cleared before every call.
2. the reference approach, "replay on freshly loaded tables" (NeMo-Gym's `is_correct`: two fresh
   environments per verification, every CSV re-read):
   a. NeMo-Gym's own `utils.is_correct` with pandas, when `--nemo-gym-dir` points at a NeMo-Gym checkout and
      pandas is importable (its verdicts are also compared with the recorded rewards);
   b. always: the same approach with our tools, re-reading the CSVs with the csv module per verification
      (the load-per-verify cost without pandas).
3. state copies: `WorkplaceState.fresh` (copy-on-write) vs copying every row, and their share of a verify.
4. `--parity N` (needs 2a): N random 40-call episodes run on NeMo-Gym's tools and ours; counts of equal tool
   outputs and final states.

Target: ours >= 10x the reference approach. Prints one JSON object per measurement.
Run: `python benchmarks/agent.py [--wa-dir PATH/workplace_assistant --ground-truth FILE] [--nemo-gym-dir PATH]
[--seconds S] [--parity N]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
import warnings
from pathlib import Path

from m2rl_slime.agent import verifier
from m2rl_slime.agent.config import AgentConfig
from m2rl_slime.agent.env import ToolCall, WorkplaceEnv, replay
from m2rl_slime.agent.parsing import calls_from_responses_output
from m2rl_slime.agent.state import WorkplaceState
from m2rl_slime.agent.tables import load_db, read_db

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = {
    "cpu": platform.processor() or platform.machine(),
    "cores": os.cpu_count(),
    "python": platform.python_version(),
}


def emit(**record) -> None:
    print(json.dumps({**record, "hardware": HARDWARE}))


def load_items(wa_dir: Path, ground_truth: Path) -> list[dict]:
    rollouts = [json.loads(x) for x in (wa_dir / "example_rollouts.jsonl").read_text().splitlines() if x.strip()]
    gts = [json.loads(x) for x in ground_truth.read_text().splitlines()]
    items = []
    for row, gt in zip(rollouts, gts, strict=True):
        predicted = [c.to_dict() for c in calls_from_responses_output(row["response"]["output"])]
        metadata = {
            "ground_truth": gt["ground_truth"],
            "m2rl_agent": {"calls": predicted},
            "category": gt["category"],
            "tools": row["responses_create_params"]["tools"],
        }
        items.append({"metadata": metadata, "reward": row["reward"], "predicted": predicted})
    return items


def rate(fn, items: list[dict], seconds: float) -> tuple[float, list[float]]:
    """Verifications per second of `fn(item) -> score` over repeated passes, and the scores of one pass."""
    scores = [fn(item) for item in items]  # warm-up pass
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for item in items:
            fn(item)
        done += len(items)
    return done / (time.perf_counter() - start), scores


def ours(config: AgentConfig, *, cold_ground_truth: bool):
    def run(item: dict) -> float:
        if cold_ground_truth:
            verifier._ground_truth_outcome.cache_clear()
        return verifier.verify("", None, item["metadata"], config=config).score

    return run


def csv_reload(csv_dir: str):
    """Reference approach with our tools: two freshly loaded databases per verification."""

    def run(item: dict) -> float:
        md = item["metadata"]
        pred_state, _ = replay(
            read_db(csv_dir), [ToolCall(c["name"], c["arguments"]) for c in md["m2rl_agent"]["calls"]]
        )
        gt = verifier.ground_truth(None, md)
        gt_state, _ = replay(read_db(csv_dir), gt)
        return float(pred_state.delta("ordered_with_ids") == gt_state.delta("ordered_with_ids"))

    return run


def nemo_gym(nemo_dir: str):
    """NeMo-Gym's own `is_correct` (pandas), imported from a checkout."""
    sys.path.insert(0, nemo_dir)
    warnings.filterwarnings("ignore")
    from resources_servers.workplace_assistant.utils import is_correct

    def run(item: dict) -> float:
        pred = [{"name": c["name"], "arguments": json.dumps(c["arguments"])} for c in item["predicted"]]
        return float(is_correct(pred, item["metadata"]["ground_truth"], None))

    return run


def state_copies(db, items, config, seconds: float) -> None:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 4:
        WorkplaceState.fresh(db).fork()
        n += 1
    cow_us = (time.perf_counter() - start) / n * 1e6
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 4:
        {name: [list(row) for row in t.rows] for name, t in db.tables.items()}
        n += 1
    full_us = (time.perf_counter() - start) / n * 1e6
    per_verify, _ = rate(ours(config, cold_ground_truth=True), items, seconds / 2)
    emit(
        measure="state_copy",
        copy_on_write_us=round(cow_us, 2),
        full_row_copy_us=round(full_us, 1),
        ratio=round(full_us / cow_us, 1),
        share_of_a_verify=round(2 * cow_us / (1e6 / per_verify), 4),
        note="a verification makes 2 fresh states (prediction, ground truth)",
    )


def parity(nemo_dir: str, db, episodes: int) -> None:
    sys.path.insert(0, nemo_dir)
    from resources_servers.workplace_assistant.utils import get_tools

    def norm(x):
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {str(k): norm(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [norm(v) for v in x]
        return norm(x.item()) if hasattr(x, "item") else x

    equal = total = states = 0
    kinds: dict[str, int] = {}
    for seed in range(episodes):
        ref = get_tools(["email", "calendar", "analytics", "project_management", "customer_relationship_manager"])
        env = WorkplaceEnv(db)
        for name, args in random_calls(seed, 40):
            try:
                expected = norm(ref["functions"][name](**args))
            except Exception as exc:  # noqa: BLE001 - the reference server turns any exception into this
                expected = f"Error executing tool '{name}': {exc}"
            got = json.loads(json.dumps(env.step(ToolCall(name, args)).output))
            total += 1
            both_errors = all(isinstance(v, str) and v.startswith("Error") for v in (got, expected))
            if got == expected or both_errors:
                equal += 1
            else:
                kind = f"{name}: reference {'raised' if str(expected).startswith('Error executing') else 'returned'}"
                kinds[kind] = kinds.get(kind, 0) + 1
        tables = {
            "emails": ref["containers"]["email"]._emails,
            "calendar": ref["containers"]["calendar"]._calendar_events,
            "tasks": ref["containers"]["project_management"]._project_tasks,
            "crm": ref["containers"]["customer_relationship_manager"]._crm_data,
            "plots": ref["containers"]["analytics"]._plots_data,
        }
        states += all(
            norm(df.to_dict(orient="records")) == [env.state[n].record(r) for r in env.state[n].rows()]
            for n, df in tables.items()
        )
    emit(
        measure="parity",
        episodes=episodes,
        calls=total,
        equal_outputs=equal,
        equal_final_states=states,
        differences=kinds,
    )


_DATES = [None, "2023-11-01", "2023-11-30", "2023-12-01 10:00:00", "2023-09-01", "bad-date", "2023/11/05"]
_ID, _EMAIL_ID = "<id>", "<email id>"  # drawn per call: mostly real ids, sometimes malformed or unknown ones
# tool -> {argument: candidate values}; None means "leave the argument out"
CALL_SPACE: dict[str, dict[str, list]] = {
    "company_directory_find_email_address": {"name": ["kofi", "nadia", "raj", "", "Chen", "a.b"]},
    "email_get_email_information_by_id": {"email_id": [_EMAIL_ID], "field": ["subject", "body", "nope"]},
    "email_search_emails": {
        "query": ["kofi", "task update", "", "Sam", "zzz"],
        "date_min": _DATES,
        "date_max": _DATES,
        "page": [None, 1, 2, 7],
        "page_size": [None, 1, 3, 50],
    },
    "email_send_email": {"recipient": ["Kofi.Mensah@atlas.com", "bad"], "subject": ["Hi"], "body": ["B"]},
    "email_delete_email": {"email_id": [_EMAIL_ID]},
    "email_forward_email": {"email_id": [_EMAIL_ID], "recipient": ["nadia.moreau@atlas.com", "nope"]},
    "email_reply_email": {"email_id": [_EMAIL_ID], "body": ["Got it"]},
    "calendar_get_event_information_by_id": {"event_id": [_ID], "field": ["event_name", "bad"]},
    "calendar_search_events": {
        "query": ["sync", "aisha", "", "review"],
        "time_min": _DATES,
        "time_max": _DATES,
        "page_size": [None, 2, 10],
    },
    "calendar_create_event": {
        "event_name": ["Sync"],
        "participant_email": ["Raj.Patel@atlas.com"],
        "event_start": ["2023-12-04 10:00:00", "bad"],
        "duration": ["30", "-5", "x"],
    },
    "calendar_delete_event": {"event_id": [_ID]},
    "calendar_update_event": {
        "event_id": [_ID],
        "field": ["event_name", "participant_email", "event_start", "duration", "event_id"],
        "new_value": ["New", "Raj.Patel@atlas.com", "2023-12-05 11:00:00", "45"],
    },
    "analytics_get_visitor_information_by_id": {"visitor_id": ["0860", "4426", "9999"]},
    "analytics_create_plot": {
        "time_min": ["2023-11-01", ""],
        "time_max": ["2023-11-29"],
        "value_to_plot": ["total_visits", "bad"],
        "plot_type": ["bar", "pie"],
    },
    "analytics_total_visits_count": {"time_min": [None, "2023-11-25"], "time_max": ["2023-11-27"]},
    "analytics_engaged_users_count": {"time_min": [None, "2023-11-25"]},
    "analytics_traffic_source_count": {"time_min": ["2023-11-20"], "traffic_source": [None, "direct", "nope"]},
    "analytics_get_average_session_duration": {"time_min": [None, "2023-11-20"]},
    "project_management_get_task_information_by_id": {"task_id": [_ID], "field": ["board", "bad"]},
    "project_management_search_tasks": {
        "task_name": [None, "carousel"],
        "assigned_to_email": [None, "Leila.Azizi@atlas.com", "x"],
        "list_name": [None, "Backlog"],
        "board": [None, "design"],
    },
    "project_management_create_task": {
        "task_name": ["T"],
        "assigned_to_email": ["Leila.Azizi@atlas.com", "n@x.io"],
        "list_name": ["Backlog", "Done"],
        "due_date": ["2023-12-10"],
        "board": ["Design", "Ops"],
    },
    "project_management_delete_task": {"task_id": [_ID]},
    "project_management_update_task": {
        "task_id": [_ID],
        "field": ["list_name", "board", "due_date", "x"],
        "new_value": ["In Review", "Design", "2023-12-24"],
    },
    "customer_relationship_manager_search_customers": {
        "customer_name": [None, "casey"],
        "product_interest": [None, "Software", "hard"],
        "status": ["Lead", "Proposal", "Won"],
        "last_contact_date_max": [None, "2023-11-09"],
        "page_size": [None, 5, 50],
    },
    "customer_relationship_manager_update_customer": {
        "customer_id": [_ID],
        "field": ["status", "notes", "bogus"],
        "new_value": ["Lost", "note", "Bad"],
    },
    "customer_relationship_manager_add_customer": {
        "customer_name": ["Dakota Thomas"],
        "assigned_to_email": ["Nadia.Moreau@atlas.com"],
        "status": ["Lead", "Weird"],
    },
    "customer_relationship_manager_delete_customer": {"customer_id": [_ID]},
}


def random_calls(seed: int, n: int) -> list[tuple[str, dict]]:
    """`n` random calls over all 27 tools (`CALL_SPACE`), reproducible from `seed`."""
    r = random.Random(seed)
    ids = {
        _ID: lambda: f"{r.randrange(320):08d}" if r.random() < 0.9 else r.choice(["12", "abc", "00000500"]),
        _EMAIL_ID: lambda: f"{r.randrange(520):08d}",
    }
    calls = []
    for _ in range(n):
        name = r.choice(sorted(CALL_SPACE))
        args = {key: r.choice(values) for key, values in CALL_SPACE[name].items()}
        calls.append((name, {k: ids[v]() if v in ids else v for k, v in args.items() if v is not None}))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--wa-dir",
        default=str(ROOT / "tests/examples/data/workplace_assistant"),
        help="a workplace set in NeMo-Gym's layout (csv_data/, example_rollouts.jsonl); default: the repository's",
    )
    parser.add_argument(
        "--ground-truth",
        default=str(ROOT / "tests/agent/data/rollout_ground_truth.repo.jsonl"),
        help="the ground truth of each rollout of --wa-dir, in order (NeMo-Gym's: tests/agent/data/rollout_ground_truth.jsonl)",
    )
    parser.add_argument(
        "--nemo-gym-dir", help="a NeMo-Gym checkout (its resources_servers/ importable, pandas installed)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="time per throughput measurement")
    parser.add_argument(
        "--parity", type=int, default=0, help="random episodes for the tool parity check (needs --nemo-gym-dir)"
    )
    opts = parser.parse_args()
    wa_dir = Path(opts.wa_dir)
    csv_dir = str(wa_dir / "csv_data")
    config = AgentConfig(csv_dir=csv_dir)
    items = load_items(wa_dir, Path(opts.ground_truth))
    db = load_db(csv_dir)
    recorded = [item["reward"] for item in items]

    warm, warm_scores = rate(ours(config, cold_ground_truth=False), items, opts.seconds)
    cold, _ = rate(ours(config, cold_ground_truth=True), items, opts.seconds)
    emit(
        measure="ours",
        verifications_per_s=round(warm, 1),
        with_cold_ground_truth_per_s=round(cold, 1),
        agreement_with_recorded=f"{sum(a == b for a, b in zip(warm_scores, recorded))}/{len(items)}",
    )
    slow, slow_scores = rate(csv_reload(csv_dir), items, opts.seconds)
    emit(
        measure="reference_approach_csv_reload",
        verifications_per_s=round(slow, 2),
        ratio_ours=round(warm / slow, 1),
        ratio_ours_cold_ground_truth=round(cold / slow, 1),
        agreement_with_recorded=f"{sum(a == b for a, b in zip(slow_scores, recorded))}/{len(items)}",
    )
    if opts.nemo_gym_dir:
        ref, ref_scores = rate(nemo_gym(opts.nemo_gym_dir), items, opts.seconds)
        import pandas

        emit(
            measure="reference_nemo_gym_pandas",
            pandas=pandas.__version__,
            verifications_per_s=round(ref, 2),
            ratio_ours=round(warm / ref, 1),
            ratio_ours_cold_ground_truth=round(cold / ref, 1),
            agreement_with_recorded=f"{sum(a == b for a, b in zip(ref_scores, recorded))}/{len(items)}",
        )
    state_copies(db, items, config, opts.seconds)
    if opts.parity:
        if not opts.nemo_gym_dir:
            parser.error("--parity needs --nemo-gym-dir")
        parity(opts.nemo_gym_dir, db, opts.parity)


if __name__ == "__main__":
    main()
