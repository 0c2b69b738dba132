"""The workplace sets the agent tests run on, and the facts of each that the tests assert.

- ``repo``: the repository's own set, ``tests/examples/data/workplace_assistant`` (hand-written CSVs in
  NeMo-Gym's layout; tasks and rollouts from ``tests/examples/build_workplace_rows.py``). Always present.
- ``nemo_gym``: NeMo-Gym's workplace-assistant data (its seed CSVs, tool schemas, tasks and real model
  rollouts), when a copy is found (``$M2RL_SHARED_DATA`` or a ``shared/data`` directory next to the
  repository). Its facts were checked against NeMo-Gym's pandas implementation.

Each test asserts the same property on every set present; only the facts differ (``data/facts.<set>.json``,
one field of `Workplace` each).
"""

from __future__ import annotations

import json
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


def _load(name: str, root: Path, ground_truth: str) -> Workplace:
    facts = json.loads((DATA / f"facts.{name}.json").read_text())
    return Workplace(name=name, root=root, rollout_ground_truth=DATA / ground_truth, **facts)


REPO = _load(
    "repo", Path(__file__).parents[1] / "examples" / "data" / "workplace_assistant", "rollout_ground_truth.repo.jsonl"
)


def nemo_gym(shared_data: Path) -> Workplace:
    """NeMo-Gym's set under a shared data directory."""
    return _load("nemo_gym", shared_data / "workplace_assistant", "rollout_ground_truth.jsonl")
