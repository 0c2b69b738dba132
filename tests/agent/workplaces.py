"""The workplace sets the agent tests run on, and the facts of each that the tests assert.

- ``repo``: the repository's own set, ``tests/examples/data/workplace_assistant`` (hand-written CSVs in
  NeMo-Gym's layout; tasks and rollouts from ``tests/examples/build_workplace_rows.py``). Always present.
- ``nemo_gym``: NeMo-Gym's workplace-assistant data (its seed CSVs, tool schemas, tasks and real model
  rollouts), when a copy is found (``$M2RL_SHARED_DATA`` or a ``shared/data`` directory next to the
  repository). Its facts were checked against NeMo-Gym's pandas implementation.

Each test asserts the same property on every set present; only the values below differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Workplace:
    """A workplace set: where it lives and the facts of its data."""

    name: str
    root: Path  # holds csv_data/, tools/, example.jsonl, example_rollouts.jsonl
    rollout_ground_truth: Path  # the ground truth of each rollout, in order
    table_sizes: dict[str, int]
    directory_size: int
    person: tuple[str, str]  # a name with exactly one address, and the address
    surname: tuple[str, list[str]]  # an upper-case surname with two addresses
    colleague: str  # addresses used as recipients, participants and assignees
    colleague2: str
    email_id: str  # the newest e-mail matching `search_query`
    email_subject: str
    search_query: str
    search_total: int
    other_query: str  # another e-mail search that finds something
    search_day: str  # a day with e-mails
    reply_email_id: str  # the e-mail of task 0 (reply), found by `reply_query`
    reply_query: str
    new_email_ids: tuple[str, str]
    event_id: str  # the last event of `event_day`
    event_name: str
    event_day: str
    renamed_event: str  # task 1's new name of `event_id`
    event_query: tuple[str, str]  # a participant query and the address it finds first
    new_event_id: str
    visitor: dict[str, Any]  # one analytics record
    task_id: str
    task_name: str
    assignee: str  # a project member with tasks on `board`
    board: tuple[str, str]  # a board query and the board it matches
    new_task_id: str
    customer: tuple[str, str]  # a customer without a phone number: name, id
    stale_search: dict[str, str]  # a CRM search that finds nothing
    new_customer_id: str
    rollout_rewards: list[float]


REPO = Workplace(
    name="repo",
    root=Path(__file__).parents[1] / "examples" / "data" / "workplace_assistant",
    rollout_ground_truth=DATA / "rollout_ground_truth.repo.jsonl",
    table_sizes={"emails": 18, "calendar": 10, "analytics": 20, "tasks": 8, "crm": 8},
    directory_size=10,
    person=("Chiara", "chiara.romano@harbor.example"),
    surname=("SHARMA", ["dev.sharma@harbor.example", "meera.sharma@harbor.example"]),
    colleague="omar.haddad@harbor.example",
    colleague2="hana.sato@harbor.example",
    email_id="00000011",
    email_subject="Harbor move plan",
    search_query="bruno",
    search_total=13,
    other_query="supplier",
    search_day="2023-11-21",
    reply_email_id="00000004",
    reply_query="chiara Supplier review notes",
    new_email_ids=("18", "19"),
    event_id="00000006",
    event_name="supplier visit",
    event_day="2023-12-01",
    renamed_event="Vendor Review",
    event_query=("zoe", "zoe.martin@harbor.example"),
    new_event_id="00000010",
    visitor={
        "date_of_visit": "2023-11-15",
        "visitor_id": "0417",
        "page_views": "5",
        "session_duration_seconds": "48",
        "traffic_source": "referral",
        "user_engaged": True,
    },
    task_id="00000003",
    task_name="Build pricing page",
    assignee="felix.wagner@harbor.example",
    board=("front", "Front end"),
    new_task_id="00000008",
    customer=("Jordan Blake", "00000002"),
    stale_search={"product_interest": "Training", "status": "Proposal", "last_contact_date_max": "2023-10-26"},
    new_customer_id="00000008",
    rollout_rewards=[0.0, 1.0, 1.0, 1.0, 1.0],
)


def nemo_gym(shared_data: Path) -> Workplace:
    """NeMo-Gym's set under a shared data directory."""
    return Workplace(
        name="nemo_gym",
        root=shared_data / "workplace_assistant",
        rollout_ground_truth=DATA / "rollout_ground_truth.jsonl",
        table_sizes={"emails": 500, "calendar": 300, "analytics": 1000, "tasks": 300, "crm": 200},
        directory_size=20,
        person=("Nadia", "nadia.moreau@atlas.com"),
        surname=("PATEL", ["anaya.patel@atlas.com", "raj.patel@atlas.com"]),
        colleague="raj.patel@atlas.com",
        colleague2="lena.schmidt@atlas.com",
        email_id="00000259",
        email_subject="Task Update on Create wireframe for homepage",
        search_query="kofi",
        search_total=26,
        other_query="mensah",
        search_day="2023-11-22",
        reply_email_id="00000057",
        reply_query="carlos Develop prototype for report generation",
        new_email_ids=("500", "501"),
        event_id="00000252",
        event_name="brainstorming session",
        event_day="2023-12-01",
        renamed_event="Risk Management Forum",
        event_query=("aisha", "aisha.chen@atlas.com"),
        new_event_id="00000300",
        visitor={
            "date_of_visit": "2023-10-22",
            "visitor_id": "0860",
            "page_views": "8",
            "session_duration_seconds": "4",
            "traffic_source": "referral",
            "user_engaged": False,
        },
        task_id="00000149",
        task_name="Add animation to carousel",
        assignee="leila.azizi@atlas.com",
        board=("front", "Front end"),
        new_task_id="00000300",
        customer=("Casey Wilson", "00000014"),
        stale_search={"product_interest": "Consulting", "status": "Proposal", "last_contact_date_max": "2023-11-09"},
        new_customer_id="00000200",
        rollout_rewards=[0.0, 1.0, 1.0, 1.0, 1.0],
    )
