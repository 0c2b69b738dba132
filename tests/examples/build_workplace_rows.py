"""Regenerate the JSONL files of the test workplace set from the hand-written CSVs and the definitions below.

    python tests/examples/build_workplace_rows.py

Writes, under ``tests/examples/data/workplace_assistant/``, in NeMo-Gym's formats:

- ``example.jsonl``: tasks (system + user message, the 27 tool schemas, ground-truth calls);
- ``example_rollouts.jsonl``: rollouts (``response.output`` with each call and the output our tools give on
  the CSVs) and the reward of the reference rule (final-state equality), worked out by hand below;
- ``tools/<toolkit>.json``: the tool schemas by toolkit, with their operation types;

and ``tests/agent/data/rollout_ground_truth.repo.jsonl``, the ground truth of each rollout. The tool schemas
are our own tool specs, so rerun this after changing one (the tests compare the specs with these files).
"""

from __future__ import annotations

import json
from pathlib import Path

from m2rl_slime.agent.env import ToolCall, WorkplaceEnv
from m2rl_slime.agent.tables import read_db
from m2rl_slime.agent.tools import TOOLKITS, TOOLS, toolkit_of

HERE = Path(__file__).parent / "data" / "workplace_assistant"
GROUND_TRUTH = Path(__file__).parents[1] / "agent" / "data" / "rollout_ground_truth.repo.jsonl"
SYSTEM = (
    "Today's date is Thursday, 2023-11-30 and the current time is 23:59:00. Remember the current date and time "
    "when answering queries. Meetings must not start before 9am or end after 6pm."
)
OMAR, CHIARA = "omar.haddad@harbor.example", "chiara.romano@harbor.example"

# (user message, category, ground-truth calls)
TASKS = [
    (
        "Reply to Chiara's last email about 'Supplier review notes' with 'Thanks, I will read them tonight.'",
        "email",
        [("email_reply_email", {"email_id": "00000004", "body": "Thanks, I will read them tonight."})],
    ),
    (
        "Can you change the name of the last event on December 1 to Vendor Review",
        "calendar",
        [("calendar_update_event", {"event_id": "00000006", "field": "event_name", "new_value": "Vendor Review"})],
    ),
    (
        "Omar is taking over all of Chiara's customers. Can you reassign them in the crm?",
        "customer_relationship_manager",
        [
            ("customer_relationship_manager_update_customer", {"customer_id": c, "field": "assigned_to_email",
                                                               "new_value": OMAR})
            for c in ("00000002", "00000007")
        ],
    ),
    (
        "Move Felix's pricing page task to In Progress",
        "project_management",
        [("project_management_update_task", {"task_id": "00000003", "field": "list_name", "new_value": "In Progress"})],
    ),
    (
        "Send an email to Zoe with the subject 'Photo' and the body 'I will be there at noon.'",
        "email",
        [("email_send_email", {"recipient": "zoe.martin@harbor.example", "subject": "Photo",
                               "body": "I will be there at noon."})],
    ),
]  # fmt: skip

# (user message, category, ground truth, the calls of the rollout, reward, how the ground truth was derived)
ROLLOUTS = [
    (
        "Create a line chart of engaged users since November 28",
        "analytics",
        [("analytics_create_plot", {"time_min": "2023-11-28", "time_max": "2023-11-30",
                                    "value_to_plot": "user_engaged", "plot_type": "line"})],
        [("analytics_create_plot", {"time_min": "2023-11-28", "time_max": "2024-01-31",
                                    "value_to_plot": "user_engaged", "plot_type": "line"})],
        0.0,
        "time_max = the last day of analytics_data (2023-11-30); the rollout's 2024-01-31 writes another plot file",
    ),
    (
        "Move all customers that haven't responded to a proposal for the training product in 5 weeks to lost",
        "customer_relationship_manager",
        [],
        [("customer_relationship_manager_search_customers", {"product_interest": "Training", "status": "Proposal",
                                                             "last_contact_date_max": "2023-10-26"})],
        1.0,
        "the one Training proposal (00000003) was last contacted on 2023-11-02, within 5 weeks: nothing to move",
    ),
    (
        "Delete Jordan Blake from the crm",
        "customer_relationship_manager",
        [("customer_relationship_manager_delete_customer", {"customer_id": "00000002"})],
        [("customer_relationship_manager_search_customers", {"customer_name": "Jordan Blake", "page": 1, "page_size": 1}),
         ("customer_relationship_manager_delete_customer", {"customer_id": "00000002"})],
        1.0,
        "Jordan Blake is customer 00000002",
    ),
    (
        "Add Riley Moss as a new lead in the crm and assign them to Chiara",
        "customer_relationship_manager",
        [("customer_relationship_manager_add_customer", {"customer_name": "Riley Moss", "assigned_to_email": CHIARA,
                                                         "status": "Lead"})],
        [("company_directory_find_email_address", {"name": "Chiara"}),
         ("customer_relationship_manager_add_customer", {"customer_name": "Riley Moss", "assigned_to_email": CHIARA,
                                                         "status": "Lead"})],
        1.0,
        "Chiara's address from the directory",
    ),
    (
        "Delete my last email from bruno",
        "email",
        [("email_delete_email", {"email_id": "00000011"})],
        [("email_search_emails", {"query": "bruno", "page": 1, "page_size": 1}),
         ("email_delete_email", {"email_id": "00000011"})],
        1.0,
        "the newest e-mail matching bruno is 00000011 (2023-11-29)",
    ),
]  # fmt: skip


def _schemas(toolkits: set[str] | None = None) -> list[dict]:
    return [spec.schema() for name, spec in TOOLS.items() if toolkits is None or toolkit_of(name) in toolkits]


def _calls(calls: list[tuple[str, dict]]) -> list[dict]:
    return [{"name": name, "arguments": json.dumps(arguments)} for name, arguments in calls]


def _messages(user: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _output(env: WorkplaceEnv, calls: list[tuple[str, dict]], n: int) -> list[dict]:
    items = []
    for k, (name, arguments) in enumerate(calls):
        call_id = f"call_{n}_{k}"
        result = env.step(ToolCall(name, arguments))
        items.append({"arguments": json.dumps(arguments, separators=(",", ":")), "call_id": call_id, "name": name,
                      "type": "function_call", "status": "completed"})  # fmt: skip
        items.append(
            {"call_id": call_id, "output": json.dumps({"output": result.output}), "type": "function_call_output"}
        )
    items.append({"content": [{"text": "Done.", "type": "output_text"}], "role": "assistant", "type": "message"})
    return items


def main() -> None:
    db = read_db(str(HERE / "csv_data"))
    with open(HERE / "example.jsonl", "w") as fh:
        for i, (user, category, truth) in enumerate(TASKS):
            row = {"id": i, "responses_create_params": {"input": _messages(user), "tools": _schemas()},
                   "ground_truth": _calls(truth), "category": f"workplace_assistant_{category}",
                   "environment_name": "workplace_assistant"}  # fmt: skip
            fh.write(json.dumps(row) + "\n")
    with open(HERE / "example_rollouts.jsonl", "w") as out, open(GROUND_TRUTH, "w") as gt:
        for n, (user, category, truth, calls, reward, derivation) in enumerate(ROLLOUTS):
            params = {"input": _messages(user), "tools": _schemas({"company_directory", category})}
            response = {"id": f"resp_{n}", "output": _output(WorkplaceEnv(db), calls, n)}
            out.write(json.dumps({"responses_create_params": params, "response": response, "reward": reward}) + "\n")
            gt.write(json.dumps({"user": user, "category": f"workplace_assistant_{category}",
                                 "ground_truth": _calls(truth), "derivation": derivation}) + "\n")  # fmt: skip
    (HERE / "tools").mkdir(exist_ok=True)
    for toolkit in TOOLKITS:
        tools = [{**spec.schema(), "database": toolkit, "operation_type": spec.operation}
                 for name, spec in TOOLS.items() if toolkit_of(name) == toolkit]  # fmt: skip
        (HERE / "tools" / f"{toolkit}.json").write_text(json.dumps({"database": toolkit, "tools": tools}, indent=1))


if __name__ == "__main__":
    main()
