"""The agent-domain verifier: final-state equality between the predicted and the ground-truth calls.

Both call lists are replayed on fresh copies of the seed database and the resulting changes compared
table by table (what NeMo-Gym's `is_correct` does), with two holes closed:

* created rows are compared without their generated ids, so independent creates in another order match
  (`AgentConfig.created_rows`);
* when the ground truth changes nothing, the prediction must change nothing *and* have consulted the data:
  every tool of the ground truth executed (for an empty ground truth, at least one tool of the task's
  toolkit, or any tool when the category names none), so an empty trajectory no longer scores 1
  (`AgentConfig.noop_ground_truth`).

Pure: no slime import, no I/O beyond the once-per-process table load, inputs never mutated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ..errors import ConfigError, LabelError
from ..result import Reason, Result
from .config import AgentConfig, missing_csv_dir_message
from .env import StepResult, ToolCall, allowed_tools, replay
from .parsing import call_list, parse_transcript
from .state import CreatedRows
from .tables import WorkplaceDB, load_db
from .tools import TOOLKITS, TOOLS, toolkit_of

RECORD_KEY = "m2rl_agent"  # sample.metadata[RECORD_KEY]["calls"]: the calls the rollout executed
GROUND_TRUTH_KEYS = ("ground_truth", "ground_truth_tool_calls")


def ground_truth(label: Any, metadata: Mapping[str, Any]) -> list[ToolCall]:
    """The ground-truth calls of a sample: `metadata.ground_truth` (or M2RL's `ground_truth_tool_calls`),
    else a label that is a list (or a JSON string of one).

    Raises:
        LabelError: none is present or it is malformed (the message names the field).
    """
    for key in GROUND_TRUTH_KEYS:
        if metadata.get(key) is not None:
            calls = call_list(metadata[key], f"metadata.{key}")
            break
    else:
        if isinstance(label, list) or (isinstance(label, str) and label.lstrip().startswith("[")):
            calls = call_list(label, "label")
        else:
            raise LabelError(
                "agent sample has no ground truth: expected metadata.ground_truth (or "
                "metadata.ground_truth_tool_calls) as a list of {name, arguments}"
            )
    unknown = sorted({c.name for c in calls} - set(TOOLS))
    if unknown:
        raise LabelError(f"ground truth names unknown tool(s) {', '.join(unknown)}")
    return calls


def predicted_calls(response: Any, metadata: Mapping[str, Any]) -> tuple[list[ToolCall], str, int]:
    """The calls the policy made: those the rollout recorded in `metadata["m2rl_agent"]["calls"]`, else the
    `<tool_call>` blocks of the response text. Returns (calls, source, malformed block count)."""
    record = metadata.get(RECORD_KEY)
    if isinstance(record, Mapping) and "calls" in record:
        return call_list(record["calls"], f"metadata.{RECORD_KEY}.calls"), "metadata", 0
    calls, malformed = parse_transcript(response if isinstance(response, str) else "")
    return calls, "response_text", malformed


def _key(calls: list[ToolCall]) -> str:
    return json.dumps([[c.name, c.arguments] for c in calls], sort_keys=True, default=str)


@lru_cache(maxsize=2048)
def _ground_truth_outcome(db: WorkplaceDB, key: str, created_rows: CreatedRows) -> tuple[dict[str, Any], int]:
    """Changes and failing-call count of a ground truth (cached: a prompt's samples share it)."""
    calls = [ToolCall(name, arguments) for name, arguments in json.loads(key)]
    state, results = replay(db, calls, writes_only=True)
    return state.delta(created_rows), sum(r is not None and not r.ok for r in results)


def _category_toolkit(category: Any) -> str | None:
    if isinstance(category, str):
        for toolkit in TOOLKITS:
            if category.endswith(toolkit):
                return toolkit
    return None


def _noop_check(
    gt: list[ToolCall], pred: list[ToolCall], results: list[StepResult | None], metadata: Mapping[str, Any]
) -> dict[str, Any] | None:
    """None when a prediction for a no-op ground truth consulted the data, else what it lacks."""
    executed = {call.name for call, result in zip(pred, results) if result is not None and result.ok}
    needed = sorted({call.name for call in gt})
    if needed:
        missing = [name for name in needed if name not in executed]
        return {"required_tools": needed, "missing_tools": missing} if missing else None
    toolkit = _category_toolkit(metadata.get("category"))
    if any(toolkit is None or toolkit_of(name) == toolkit for name in executed):
        return None
    return {"required_toolkit": toolkit or "any", "executed_tools": sorted(executed)}


def verify(response: str, label: Any, metadata: Mapping[str, Any], *, config: AgentConfig | None = None) -> Result:
    """Score one agent episode by final-state equality with its ground truth.

    Args:
        response: The response text; used only when the rollout recorded no calls (offline scoring).
        label: Unused unless it carries the ground-truth list (metadata is preferred).
        metadata: `ground_truth` (list of {name, arguments}), optionally `m2rl_agent.calls` (the executed
            calls), `tools` (the task's tool schemas; other tools were rejected live) and `category`.
        config: The `m2rl_agent` settings; `csv_dir` is required.

    Returns:
        1.0 / OK when the final states agree (and, for a no-op ground truth, the data was consulted),
        0.0 / WRONG otherwise, 0.0 / BAD_LABEL for a missing or malformed ground truth or record.

    Raises:
        ConfigError: no config or no `csv_dir` (naming `m2rl_agent.csv_dir`), or an unreadable database.
    """
    if config is None:
        raise ConfigError(missing_csv_dir_message())
    db = load_db(config.require_csv_dir())
    if not isinstance(metadata, Mapping):
        return Result.fail(Reason.BAD_LABEL, error=f"metadata must be a mapping, got {type(metadata).__name__}")
    try:
        gt = ground_truth(label, metadata)
        pred, source, malformed = predicted_calls(response, metadata)
    except LabelError as exc:
        return Result.fail(Reason.BAD_LABEL, error=str(exc))
    gt_delta, gt_errors = _ground_truth_outcome(db, _key(gt), config.created_rows)
    noop_rule = not gt_delta and config.noop_ground_truth == "require_reads"
    # reads cannot change the state: they are replayed only when the no-op rule needs to know they ran
    pred_state, results = replay(db, pred, allowed_tools(metadata.get("tools")), writes_only=not noop_rule)
    pred_delta = pred_state.delta(config.created_rows)
    details: dict[str, Any] = {
        "calls_source": source,
        "predicted_calls": len(pred),
        "failed_calls": sum(r is not None and not r.ok for r in results),
        "ground_truth_calls": len(gt),
        "ground_truth_changes_state": bool(gt_delta),
    }
    if malformed:
        details["malformed_tool_calls"] = malformed
    if gt_errors:
        details["ground_truth_failed_calls"] = gt_errors
    if pred_delta != gt_delta:
        tables = set(pred_delta) | set(gt_delta)
        mismatched = sorted(name for name in tables if pred_delta.get(name) != gt_delta.get(name))
        return Result.fail(Reason.WRONG, mismatched_tables=mismatched, **details)
    if noop_rule:
        lacking = _noop_check(gt, pred, results, metadata)
        if lacking is not None:
            return Result.fail(Reason.WRONG, rule="noop_ground_truth", **lacking, **details)
    return Result.correct(**details)
