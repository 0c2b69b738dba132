"""Command line of the agent domain: `serve` the environment, `score` rollouts offline, print the `tools`.

python -m m2rl_slime.agent serve --csv-dir PATH/csv_data --port 12000
python -m m2rl_slime.agent score examples/agent_demo.jsonl --demo --check
python -m m2rl_slime.agent tools
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from ..config import parse_dataclass
from ..errors import M2RLError
from .config import AgentConfig
from .parsing import calls_from_responses_output
from .verifier import RECORD_KEY, verify

logger = logging.getLogger(__name__)


def demo_csv_dir() -> str:
    """The tiny synthetic workplace database shipped with the package (for the quick-start demo only)."""
    return str(resources.files("m2rl_slime.agent") / "demo_data")


def _config(opts: argparse.Namespace) -> AgentConfig:
    csv_dir = demo_csv_dir() if getattr(opts, "demo", False) else opts.csv_dir
    if csv_dir is None:
        raise M2RLError("no database: pass --csv-dir PATH (NeMo-Gym's csv_data) or --demo for the shipped demo one")
    settings = {"csv_dir": csv_dir, "noop_ground_truth": opts.noop_ground_truth, "created_rows": opts.created_rows}
    return parse_dataclass(AgentConfig, settings, "command line")


def score_row(row: Mapping[str, Any], config: AgentConfig) -> Any:
    """Score one jsonl row: a prepared/demo row (`metadata`, `response` text) or a NeMo-Gym rollout
    (`response.output` with function calls, `ground_truth`, `responses_create_params.tools`)."""
    response = row.get("response")
    if isinstance(response, Mapping):
        calls = calls_from_responses_output(response.get("output"), "response.output")
        params = row.get("responses_create_params")
        metadata = {
            "ground_truth": row.get("ground_truth"),
            RECORD_KEY: {"calls": [c.to_dict() for c in calls]},
            "tools": params.get("tools") if isinstance(params, Mapping) else None,
            "category": row.get("category"),
        }
        return verify("", None, metadata, config=config)
    metadata = dict(row.get("metadata") or {})
    if "tools" in row and "tools" not in metadata:
        metadata["tools"] = row["tools"]
    return verify(response if isinstance(response, str) else "", row.get("label"), metadata, config=config)


def _agrees(result: Any, row: Mapping[str, Any]) -> bool | None:
    """Whether a result matches the row's `expected_reward` (or NeMo-Gym's `reward`) and `expected_reason`."""
    expected = row.get("expected_reward", row.get("reward"))
    if not isinstance(expected, (int, float)):
        return None
    reason = row.get("expected_reason")
    return result.score == float(expected) and (reason is None or reason == result.reason.value)


def _score(opts: argparse.Namespace) -> int:
    config = _config(opts)
    with open(opts.file, encoding="utf-8") as fh:
        rows = [(n, json.loads(line)) for n, line in enumerate(fh, start=1) if line.strip()]
    verdicts = []
    total = 0.0
    for line_no, row in rows:
        result = score_row(row, config)
        total += result.score
        agrees = _agrees(result, row)
        verdicts.append(agrees)
        if opts.json:
            print(json.dumps({"line": line_no, "id": row.get("id"), **result.to_dict(), "agrees": agrees}))
        else:
            mark = {None: "", True: "as expected", False: "DIFFERS from expected"}[agrees]
            print(
                f"{opts.file}:{line_no}  {row.get('id', '-')!s:<8} {result.score:.1f}  {result.reason.value:<10} {mark}"
            )
    checked = [v for v in verdicts if v is not None]
    summary = f"{len(rows)} rows, mean reward {total / max(len(rows), 1):.3f}"
    if checked:
        summary += f", agreement with expected rewards {sum(checked)}/{len(checked)}"
    print(summary, file=sys.stderr if opts.json else sys.stdout)
    return 1 if opts.check and not all(checked) else 0


def _serve(opts: argparse.Namespace) -> int:
    from aiohttp import web

    from .server import build_app
    from .tables import load_db
    from .tools import TOOLS

    config = _config(opts)
    db = load_db(config.require_csv_dir())
    app = build_app(config, db, max_sessions=opts.max_sessions, session_ttl_s=opts.session_ttl_s)
    logger.info("serving %d-tool workplace environment from %s on %s:%d", len(TOOLS), db.source, opts.host, opts.port)
    web.run_app(app, host=opts.host, port=opts.port, print=None)
    return 0


def _tools(opts: argparse.Namespace) -> int:
    from .tools import TOOLS

    print(json.dumps([spec.schema() for spec in TOOLS.values()], indent=2))
    return 0


def _add_db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv-dir", help="workplace database: NeMo-Gym's csv_data (or its processed/) directory")
    p.add_argument("--demo", action="store_true", help="use the tiny synthetic demo database shipped with the package")
    p.add_argument(
        "--noop-ground-truth",
        choices=("require_reads", "reward_any"),
        default="require_reads",
        help="scoring of tasks whose ground truth changes nothing (default: require_reads)",
    )
    p.add_argument(
        "--created-rows",
        choices=("ignore_generated_ids", "ordered_with_ids"),
        default="ignore_generated_ids",
        help="comparison of created rows (default: ignore_generated_ids)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m m2rl_slime.agent", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the environment over the NeMo-Gym resources-server API")
    _add_db_options(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=12000, help="port (default 12000)")
    p.add_argument("--max-sessions", type=int, default=4096, help="live sessions kept (LRU beyond; default 4096)")
    p.add_argument("--session-ttl-s", type=float, default=3600.0, help="idle seconds before a session is freed")
    p.set_defaults(run=_serve)
    p = sub.add_parser("score", help="score a jsonl of agent rollouts offline and compare with expected rewards")
    p.add_argument("file", help="jsonl: demo/prepared rows (metadata + response text) or NeMo-Gym rollouts")
    _add_db_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON result per row")
    p.add_argument("--check", action="store_true", help="exit 1 when a reward differs from the row's expected one")
    p.set_defaults(run=_score)
    p = sub.add_parser("tools", help="print the 27 tool schemas (OpenAI Responses function format)")
    p.set_defaults(run=_tools)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line error for bad input or settings)."""
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return opts.run(opts)
    except (M2RLError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
