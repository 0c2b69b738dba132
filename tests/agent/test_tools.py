"""Every one of the 27 workplace tools against each workplace set's CSV data (tests/agent/workplaces.py).

Expected values are facts of each set (NeMo-Gym's were checked against its pandas implementation, e.g. the
tool outputs recorded in its example_rollouts.jsonl); aggregates are recomputed here with the csv module.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict

import pytest

from m2rl_slime.agent.env import ToolCall, WorkplaceEnv
from m2rl_slime.agent.tools import NOW, TOOLS


@pytest.fixture
def env(db) -> WorkplaceEnv:
    return WorkplaceEnv(db)


def run(env: WorkplaceEnv, tool: str, **arguments):
    result = env.step(ToolCall(tool, arguments))
    assert result.ok, result.output
    return result.output


def rows_of(env: WorkplaceEnv, table: str) -> list[dict]:
    t = env.state[table]
    return [t.record(row) for row in t.rows()]


def test_registry_has_the_27_tools_of_the_shipped_schemas(wa_dir):
    shipped = {}
    for path in sorted((wa_dir / "tools").glob("*.json")):
        shipped.update({t["name"]: t for t in json.loads(path.read_text()).get("tools", [])})
    assert set(TOOLS) == set(shipped) and len(TOOLS) == 27
    for name, ref in shipped.items():
        ours = TOOLS[name].schema()
        assert TOOLS[name].operation == ref["operation_type"], name
        assert {k: v["type"] for k, v in ours["parameters"]["properties"].items()} == {
            k: v["type"] for k, v in ref["parameters"]["properties"].items()
        }, name
        assert set(ours["parameters"]["required"]) == set(ref["parameters"]["required"]), name


# --- company directory ---------------------------------------------------------------------------------------


def test_find_email_address(env, wp):
    assert run(env, "company_directory_find_email_address", name=wp.person[0]) == [wp.person[1]]
    assert run(env, "company_directory_find_email_address", name=wp.surname[0]) == wp.surname[1]
    assert run(env, "company_directory_find_email_address") == "Name not provided."


# --- email ---------------------------------------------------------------------------------------------------


def test_get_email_information_by_id(env, wp):
    out = run(env, "email_get_email_information_by_id", email_id=wp.email_id, field="subject")
    assert out == {"subject": wp.email_subject}
    assert run(env, "email_get_email_information_by_id", email_id=wp.email_id, field="cc").startswith(
        "Field 'cc' not found. Available fields: email_id, inbox/outbox"
    )
    assert run(env, "email_get_email_information_by_id", email_id="99999999", field="body") == "Email not found."
    assert run(env, "email_get_email_information_by_id", field="body") == "Email ID not provided."


def test_search_emails_matches_the_reference_rollout_and_sorts_newest_first(env, wp):
    total = wp.search_total
    out = run(env, "email_search_emails", query=wp.search_query, page=1, page_size=1)
    assert out["emails"][0]["email_id"] == wp.email_id
    assert out["pagination"] == {"total_emails": total, "page": 1, "page_size": 1, "total_pages": total}
    everything = run(env, "email_search_emails", query=wp.search_query.title(), page_size=100)["emails"]
    assert [e["sent_datetime"] for e in everything] == sorted((e["sent_datetime"] for e in everything), reverse=True)
    assert all(wp.search_query in f"{e['subject']} {e['body']} {e['sender/recipient']}".lower() for e in everything)


def test_search_emails_dates_pages_and_misses(env, wp):
    day = run(env, "email_search_emails", date_min=wp.search_day, date_max=wp.search_day, page_size=50)
    assert day["emails"] and all(e["sent_datetime"].startswith(wp.search_day) for e in day["emails"])
    last = run(env, "email_search_emails", query=wp.search_query, page=999, page_size=10)
    pages, rest = -(-wp.search_total // 10), wp.search_total % 10 or 10
    assert last["pagination"]["page"] == pages and len(last["emails"]) == rest  # clamped to the last page
    assert run(env, "email_search_emails", query="no-such-word-anywhere") == "No emails found."
    assert run(env, "email_search_emails", query=wp.search_query, date_min="31st of Smarch").startswith(
        "Error searching emails"
    )


def test_send_email_appends_an_outbox_row(env, wp):
    assert run(env, "email_send_email", recipient=wp.colleague.title(), subject="Hi", body="Hello") == (
        "Email sent successfully."
    )
    new = rows_of(env, "emails")[-1]
    assert new == {
        "email_id": wp.new_email_ids[0],
        "inbox/outbox": "outbox",
        "sender/recipient": wp.colleague,
        "subject": "Hi",
        "sent_datetime": NOW,
        "body": "Hello",
    }
    assert (
        run(env, "email_send_email", recipient="nobody", subject="x", body="y") == "Invalid recipient email address."
    )
    assert run(env, "email_send_email", recipient="a@b.c", subject="x") == "Recipient, subject, or body not provided."


def test_delete_forward_and_reply(env, wp):
    email_id = wp.reply_email_id
    original = next(e for e in rows_of(env, "emails") if e["email_id"] == email_id)
    assert run(env, "email_forward_email", email_id=email_id, recipient=wp.person[1]) == (
        "Email forwarded successfully."
    )
    forwarded = rows_of(env, "emails")[-1]
    assert forwarded["subject"] == f"FW: {original['subject']}" and forwarded["body"] == original["body"]
    assert run(env, "email_reply_email", email_id=email_id, body="Thanks") == "Email replied successfully."
    reply = rows_of(env, "emails")[-1]
    assert (
        reply["subject"] == f"RE: {original['subject']}" and reply["sender/recipient"] == original["sender/recipient"]
    )
    assert reply["email_id"] == wp.new_email_ids[1]
    assert run(env, "email_delete_email", email_id=email_id) == "Email deleted successfully."
    assert run(env, "email_delete_email", email_id=email_id) == "Email not found."
    assert run(env, "email_reply_email", email_id=email_id, body="x") == "Email not found."


# --- calendar ------------------------------------------------------------------------------------------------


def test_get_event_information_by_id(env, wp):
    assert run(env, "calendar_get_event_information_by_id", event_id=wp.event_id, field="event_name") == {
        "event_name": wp.event_name
    }
    assert run(env, "calendar_get_event_information_by_id", event_id=wp.event_id.lstrip("0"), field="duration") == (
        "Invalid event ID format. Expected 8-digit ID."
    )
    assert run(env, "calendar_get_event_information_by_id", event_id=wp.event_id, field="room").startswith(
        "Invalid field."
    )


def test_search_events_latest_first_within_the_window(env, wp):
    day = wp.event_day
    out = run(env, "calendar_search_events", time_min=f"{day} 00:00:00", time_max=f"{day} 23:59:59")
    starts = [e["event_start"] for e in out["events"]]
    assert out["events"][0]["event_id"] == wp.event_id  # the last event of the day (task 1's ground truth)
    assert starts == sorted(starts, reverse=True) and all(s.startswith(day) for s in starts)
    query, address = wp.event_query
    assert run(env, "calendar_search_events", query=query, page_size=100)["events"][0]["participant_email"] == address
    assert run(env, "calendar_search_events", time_min="not a time") == (
        "Invalid time_min format. Expected YYYY-MM-DD HH:MM:SS."
    )
    assert run(env, "calendar_search_events", query="zzz-none") == "No events found."


def test_create_update_delete_event(env, wp):
    event_id = run(
        env,
        "calendar_create_event",
        event_name="Sync",
        participant_email=wp.colleague.title(),
        event_start="2023-12-04 10:00:00",
        duration="30",
    )
    assert event_id == wp.new_event_id
    assert rows_of(env, "calendar")[-1]["participant_email"] == wp.colleague
    assert (
        run(
            env,
            "calendar_create_event",
            event_name="x",
            participant_email="a@b.c",
            event_start="2023-12-04",
            duration="-5",
        )
        == "Duration must be a positive number of minutes."
    )
    assert (
        run(env, "calendar_create_event", event_name="x", participant_email="a@b.c", event_start="soon", duration="5")
        == "Invalid event_start format. Expected YYYY-MM-DD HH:MM:SS."
    )
    assert (
        run(
            env,
            "calendar_update_event",
            event_id=event_id,
            field="participant_email",
            new_value=wp.person[1].title(),
        )
        == "Event updated successfully."
    )
    assert rows_of(env, "calendar")[-1]["participant_email"] == wp.person[1]
    assert run(env, "calendar_update_event", event_id=event_id, field="event_id", new_value="1").startswith(
        "Invalid field."
    )
    assert run(env, "calendar_delete_event", event_id=event_id) == "Event deleted successfully."
    assert run(env, "calendar_delete_event", event_id=event_id) == "Event not found."


# --- analytics -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def visits(csv_dir):
    with open(f"{csv_dir}/processed/analytics_data.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_visitor_information(env, wp):
    out = run(env, "analytics_get_visitor_information_by_id", visitor_id=wp.visitor["visitor_id"])
    assert out[0] == wp.visitor
    assert run(env, "analytics_get_visitor_information_by_id", visitor_id="nobody") == "Visitor not found."


def test_daily_aggregates_match_a_recount(env, visits):
    window = [v for v in visits if "2023-11-20" <= v["date_of_visit"] <= "2023-11-30"]
    args = {"time_min": "2023-11-20", "time_max": "2023-11-30"}
    assert run(env, "analytics_total_visits_count", **args) == dict(
        sorted(Counter(v["date_of_visit"] for v in window).items())
    )
    engaged = defaultdict(int)
    seconds = defaultdict(list)
    for v in window:
        engaged[v["date_of_visit"]] += v["user_engaged"] == "True"
        seconds[v["date_of_visit"]].append(float(v["session_duration_seconds"]))
    assert run(env, "analytics_engaged_users_count", **args) == dict(sorted(engaged.items()))
    assert run(env, "analytics_get_average_session_duration", **args) == {
        d: sum(s) / len(s) for d, s in sorted(seconds.items())
    }
    direct = run(env, "analytics_traffic_source_count", traffic_source="direct", **args)
    assert set(direct) == set(engaged) and sum(direct.values()) == sum(v["traffic_source"] == "direct" for v in window)
    assert sum(run(env, "analytics_traffic_source_count").values()) == len(visits)


def test_create_plot(env):
    out = run(
        env,
        "analytics_create_plot",
        time_min="2023-11-01",
        time_max="2023-11-29",
        value_to_plot="total_visits",
        plot_type="bar",
    )
    assert out == "plots/2023-11-01_2023-11-29_total_visits_bar.png"
    assert rows_of(env, "plots") == [{"file_path": out}]
    assert run(
        env, "analytics_create_plot", time_min="a", time_max="b", value_to_plot="clicks", plot_type="bar"
    ).startswith("Value to plot must be one of")
    assert run(env, "analytics_create_plot", time_max="b") == "Start date not provided."


# --- project management --------------------------------------------------------------------------------------


def test_get_and_search_tasks(env, wp):
    assert run(env, "project_management_get_task_information_by_id", task_id=wp.task_id, field="task_name") == {
        "task_name": wp.task_name
    }
    found = run(env, "project_management_search_tasks", assigned_to_email=wp.assignee.title(), board=wp.board[0])
    assert found and all(t["assigned_to_email"] == wp.assignee and t["board"] == wp.board[1] for t in found)
    assert run(env, "project_management_search_tasks") == "No search parameters provided."
    assert run(env, "project_management_search_tasks", assigned_to_email="leila") == (
        "Invalid email format for assigned_to_email."
    )


def test_create_update_delete_task(env, wp):
    assert run(
        env,
        "project_management_create_task",
        task_name="T",
        assigned_to_email="nobody@atlas.com",
        list_name="Backlog",
        due_date="2023-12-10",
        board="Design",
    ) == ("Assignee email not valid. Please choose from the list of team members.")
    assert run(
        env,
        "project_management_create_task",
        task_name="T",
        assigned_to_email=wp.assignee,
        list_name="Done",
        due_date="2023-12-10",
        board="Design",
    ).startswith("List not valid.")
    task_id = run(
        env,
        "project_management_create_task",
        task_name="T",
        assigned_to_email=wp.assignee.title(),
        list_name="Backlog",
        due_date="2023-12-10",
        board="Design",
    )
    assert task_id == wp.new_task_id
    assert run(env, "project_management_update_task", task_id=task_id, field="list_name", new_value="In Review") == (
        "Task updated successfully."
    )
    assert rows_of(env, "tasks")[-1]["list_name"] == "In Review"
    assert (
        run(env, "project_management_update_task", task_id=task_id, field="owner", new_value="x") == "Field not valid."
    )
    assert run(env, "project_management_delete_task", task_id=task_id) == "Task deleted successfully."
    assert (
        run(env, "project_management_get_task_information_by_id", task_id=task_id, field="board") == "Task not found."
    )


# --- CRM -----------------------------------------------------------------------------------------------------


def test_search_customers(env, wp):
    name, customer_id = wp.customer
    out = run(env, "customer_relationship_manager_search_customers", customer_name=name, page=1, page_size=1)
    assert out["customers"][0]["customer_id"] == customer_id and out["customers"][0]["customer_phone"] is None
    assert out["pagination"] == {"total_customers": 1, "page": 1, "page_size": 1, "total_pages": 1}
    stale = run(env, "customer_relationship_manager_search_customers", **wp.stale_search, page_size=50)
    assert stale == "No customers found."  # the reference rollout's search
    assert run(env, "customer_relationship_manager_search_customers").startswith("No search parameters provided.")


def test_update_add_delete_customer(env, wp):
    customer_id = wp.customer[1]
    assert run(
        env, "customer_relationship_manager_update_customer", customer_id=customer_id, field="status", new_value="Gone"
    ).startswith("Status not valid.")
    assert (
        run(
            env,
            "customer_relationship_manager_update_customer",
            customer_id=customer_id,
            field="assigned_to_email",
            new_value=wp.colleague.title(),
        )
        == "Customer updated successfully."
    )
    assert next(c for c in rows_of(env, "crm") if c["customer_id"] == customer_id)["assigned_to_email"] == wp.colleague
    new_id = run(
        env,
        "customer_relationship_manager_add_customer",
        customer_name="Dakota Thomas",
        assigned_to_email=wp.person[1].title(),
        status="Lead",
    )
    assert new_id == wp.new_customer_id
    added = rows_of(env, "crm")[-1]
    assert added["assigned_to_email"] == wp.person[1] and added["notes"] == "" and added["customer_email"] is None
    assert run(env, "customer_relationship_manager_add_customer", customer_name="X").startswith(
        "Please provide all required fields"
    )
    assert run(env, "customer_relationship_manager_delete_customer", customer_id=customer_id) == (
        "Customer deleted successfully."
    )
    assert run(env, "customer_relationship_manager_delete_customer", customer_id=customer_id) == "Customer not found."
