"""The agent verifier on each set's tasks and rollouts, the two fixed holes, and its failure modes."""

from __future__ import annotations

import copy
import json
import pickle
import re

import pytest

from m2rl_slime.agent.config import AgentConfig
from m2rl_slime.agent.parsing import calls_from_responses_output
from m2rl_slime.agent.verifier import verify
from m2rl_slime.errors import ConfigError
from m2rl_slime.rewards.result import Reason

REFERENCE_RULES = {"noop_ground_truth": "reward_any", "created_rows": "ordered_with_ids"}


def calls(*items):
    return [{"name": name, "arguments": args} for name, args in items]


def meta(gt, predicted=None, **extra):
    out = {"domain": "agent", "ground_truth": gt, **extra}
    if predicted is not None:
        out["m2rl_agent"] = {"calls": predicted}
    return out


def rollout_metadata(row):
    predicted = [c.to_dict() for c in calls_from_responses_output(row["response"]["output"])]
    return meta(
        row["ground_truth"], predicted, category=row["category"], tools=row["responses_create_params"]["tools"]
    )


def test_shipped_tasks_ground_truth_scores_1_and_empty_scores_0(tasks, config):
    for task in tasks:
        gt = task["ground_truth"]
        as_objects = [{"name": c["name"], "arguments": json.loads(c["arguments"])} for c in gt]
        ok = verify("", None, meta(gt, as_objects), config=config)
        assert (ok.score, ok.reason) == (1.0, Reason.OK), task["id"]
        assert ok.details["ground_truth_changes_state"]  # the no-op rule affects none of the shipped tasks
        empty = verify("", None, meta(gt, []), config=config)
        assert (empty.score, empty.reason) == (0.0, Reason.WRONG)


def test_agreement_with_the_reference_rewards_of_the_shipped_rollouts(rollouts, config, wp):
    for rules in ({}, REFERENCE_RULES):
        cfg = AgentConfig(csv_dir=config.csv_dir, **rules)
        scores = [verify("", None, rollout_metadata(row), config=cfg).score for row in rollouts]
        assert scores == [row["reward"] for row in rollouts] == wp.rollout_rewards


def test_rollouts_scored_from_response_text_when_no_calls_were_recorded(rollouts, config):
    for row in rollouts:
        text = "".join(
            f"<tool_call>\n{json.dumps({'name': c.name, 'arguments': c.arguments})}\n</tool_call>"
            for c in calls_from_responses_output(row["response"]["output"])
        )
        result = verify(text, None, meta(row["ground_truth"], category=row["category"]), config=config)
        assert result.score == row["reward"] and result.details["calls_source"] == "response_text"


def test_hole_swapped_creates_still_match(config, wp):
    a = (
        "calendar_create_event",
        {
            "event_name": "Sync",
            "participant_email": wp.colleague,
            "event_start": "2023-12-04 10:00:00",
            "duration": "30",
        },
    )
    b = (
        "calendar_create_event",
        {
            "event_name": "Sync",
            "participant_email": wp.colleague2,
            "event_start": "2023-12-04 11:00:00",
            "duration": "30",
        },
    )
    metadata = meta(calls(a, b), calls(b, a))
    assert verify("", None, metadata, config=config).score == 1.0
    reference = verify("", None, metadata, config=AgentConfig(csv_dir=config.csv_dir, **REFERENCE_RULES))
    assert reference.score == 0.0 and reference.details["mismatched_tables"] == ["calendar"]
    assert verify("", None, meta(calls(a, b), calls(a, a)), config=config).score == 0.0


def test_hole_noop_ground_truth_needs_the_lookup(config, wp):
    search = ("email_search_emails", {"query": wp.search_query})
    gt = calls(search)
    assert verify("", None, meta(gt, []), config=config).details["missing_tools"] == ["email_search_emails"]
    assert verify("", None, meta(gt, []), config=AgentConfig(csv_dir=config.csv_dir, **REFERENCE_RULES)).score == 1.0
    assert (
        verify("", None, meta(gt, calls(("email_search_emails", {"query": wp.other_query}))), config=config).score
        == 1.0
    )
    bad_args = calls(("email_search_emails", {"query": wp.search_query, "folder": "inbox"}))  # rejected: not a lookup
    assert verify("", None, meta(gt, bad_args), config=config).score == 0.0
    wrote = calls(search, ("email_delete_email", {"email_id": wp.email_id}))
    assert verify("", None, meta(gt, wrote), config=config).reason is Reason.WRONG


def test_empty_ground_truth_needs_a_call_of_the_task_toolkit(config, wp):
    crm = "workplace_assistant_customer_relationship_manager"
    lookup = calls(("customer_relationship_manager_search_customers", {"status": "Proposal"}))
    elsewhere = calls(("email_search_emails", {"query": wp.search_query}))
    assert verify("", None, meta([], [], category=crm), config=config).score == 0.0
    assert verify("", None, meta([], lookup, category=crm), config=config).score == 1.0
    failed = verify("", None, meta([], elsewhere, category=crm), config=config)
    assert failed.score == 0.0 and failed.details["required_toolkit"] == "customer_relationship_manager"
    assert verify("", None, meta([], elsewhere), config=config).score == 1.0  # no category: any lookup


def test_calls_the_task_does_not_offer_are_not_replayed(tasks, config):
    gt = tasks[0]["ground_truth"]
    tools = [t for t in tasks[0]["responses_create_params"]["tools"] if t["name"] != "email_reply_email"]
    predicted = [{"name": c["name"], "arguments": c["arguments"]} for c in gt]
    result = verify("", None, meta(gt, predicted, tools=tools), config=config)
    assert result.score == 0.0 and result.details["failed_calls"] == 1


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"domain": "agent"}, "no ground truth"),
        (meta([{"name": "email_delete_email", "arguments": "{oops"}]), r"ground_truth\[0\].arguments: not valid JSON"),
        (meta(calls(("email_archive", {}))), "unknown tool"),
        (meta([], "not-a-list"), "m2rl_agent.calls"),
    ],
)
def test_bad_labels(config, metadata, message):
    result = verify("", None, metadata, config=config)
    assert result.reason is Reason.BAD_LABEL and result.score == 0.0
    assert re.search(message, result.details["error"])


def test_m2rl_key_and_label_are_accepted(tasks, config):
    gt = tasks[1]["ground_truth"]
    assert verify("", None, {"ground_truth_tool_calls": gt, "m2rl_agent": {"calls": gt}}, config=config).score == 1.0
    assert verify("", json.dumps(gt), {"m2rl_agent": {"calls": gt}}, config=config).score == 1.0


def test_missing_database_is_a_config_error():
    with pytest.raises(ConfigError, match="m2rl_agent.csv_dir"):
        verify("", None, meta([]), config=None)
    with pytest.raises(ConfigError, match="m2rl_agent.csv_dir"):
        verify("", None, meta([]), config=AgentConfig())


def test_pure_inputs_untouched_and_picklable(tasks, config):
    metadata = meta(tasks[2]["ground_truth"], [])
    before = copy.deepcopy(metadata)
    result = verify("", None, metadata, config=config)
    assert metadata == before
    assert pickle.loads(pickle.dumps(config)) == config
    assert pickle.loads(pickle.dumps(result)) == result
