"""Tool-call execution: argument validation, error observations, task tool lists, output caps."""

from __future__ import annotations

from m2rl_slime.agent.env import StepResult, ToolCall, WorkplaceEnv, allowed_tools, execute
from m2rl_slime.agent.state import WorkplaceState


def test_errors_become_observations_and_change_nothing(db, wp):
    state = WorkplaceState.fresh(db)
    unknown = execute(state, ToolCall("email_archive", {}))
    assert not unknown.ok and unknown.output.startswith("Error executing tool 'email_archive': no such tool")
    extra = execute(state, ToolCall("email_delete_email", {"email_id": wp.email_id, "force": True}))
    assert not extra.ok and "unexpected argument 'force'" in extra.output
    page = execute(state, ToolCall("email_search_emails", {"query": wp.search_query, "page": "2"}))
    assert not page.ok and "'page' must be an integer" in page.output
    regex = execute(state, ToolCall("calendar_search_events", {"query": "sync ("}))
    assert not regex.ok and "invalid search pattern" in regex.output
    assert not execute(state, ToolCall("email_delete_email", [wp.email_id])).ok
    assert not state.modified


def test_numbers_for_string_parameters_become_strings_and_none_is_dropped(db, wp):
    state = WorkplaceState.fresh(db)
    out = execute(
        state,
        ToolCall(
            "calendar_create_event",
            {
                "event_name": "Sync",
                "participant_email": wp.colleague,
                "event_start": "2023-12-04 10:00:00",
                "duration": 30,
                "unused": None,
            },
        ),
    )
    assert not out.ok  # 'unused' is not a parameter, even with a None value
    out = execute(
        state,
        ToolCall(
            "calendar_create_event",
            {
                "event_name": "Sync",
                "participant_email": wp.colleague,
                "event_start": "2023-12-04 10:00:00",
                "duration": 30,
            },
        ),
    )
    assert out.ok and state["calendar"].values("duration")[-1] == "30"
    assert execute(state, ToolCall("email_search_emails", {"query": wp.search_query, "date_min": None})).ok


def test_task_tool_list_restricts_calls(db, tasks, wp):
    allowed = allowed_tools(tasks[0]["responses_create_params"]["tools"])
    assert len(allowed) == 27
    env = WorkplaceEnv(db, allowed={"email_search_emails"})
    blocked = env.step(ToolCall("email_delete_email", {"email_id": wp.email_id}))
    assert not blocked.ok and "available tools: email_search_emails" in blocked.output
    assert not env.state.modified and len(env.calls) == 1
    nested = [{"type": "function", "function": {"name": "email_send_email"}}]  # chat-completions format
    assert allowed_tools(nested) == {"email_send_email"}
    assert allowed_tools(None) is None and allowed_tools([]) is None


def test_observation_text_and_cap():
    assert StepResult("plain").text() == "plain"
    assert StepResult({"a": [1, "é"]}).text() == '{"a": [1, "é"]}'
    cut = StepResult("x" * 50).text(max_chars=10)
    assert cut.startswith("x" * 10) and "40 more characters cut" in cut


def test_reset_starts_over(db, wp):
    env = WorkplaceEnv(db)
    env.step(ToolCall("email_delete_email", {"email_id": wp.email_id}))
    env.reset()
    assert not env.state.modified and env.calls == []
