"""Copy-on-write episode state: O(1) copies, independent forks, and the canonical change summary."""

from __future__ import annotations

from m2rl_slime.agent.env import ToolCall, execute
from m2rl_slime.agent.state import WorkplaceState


def create(state, participant, start):
    return execute(
        state,
        ToolCall(
            "calendar_create_event",
            {"event_name": "Sync", "participant_email": participant, "event_start": start, "duration": "30"},
        ),
    )


def test_fresh_state_shares_the_seed_rows(db):
    a, b = WorkplaceState.fresh(db), WorkplaceState.fresh(db)
    assert a["emails"].data.rows is b["emails"].data.rows is db.tables["emails"].rows
    assert not a.modified and a.delta() == {}


def test_writes_stay_in_their_state_and_forks_are_independent(db):
    state = WorkplaceState.fresh(db)
    execute(state, ToolCall("email_delete_email", {"email_id": "00000259"}))
    fork = state.fork()
    execute(fork, ToolCall("email_delete_email", {"email_id": "00000057"}))
    ids = lambda s: set(s["emails"].values("email_id"))
    assert "00000259" not in ids(state) and "00000057" in ids(state)
    assert "00000259" not in ids(fork) and "00000057" not in ids(fork)
    assert len(db.tables["emails"].rows) == 500 and not WorkplaceState.fresh(db).modified


def test_swapped_independent_creates_have_equal_summaries(db):
    a, b = WorkplaceState.fresh(db), WorkplaceState.fresh(db)
    assert create(a, "raj.patel@atlas.com", "2023-12-04 10:00:00").output == "00000300"
    create(a, "lena.schmidt@atlas.com", "2023-12-04 11:00:00")
    create(b, "lena.schmidt@atlas.com", "2023-12-04 11:00:00")
    create(b, "raj.patel@atlas.com", "2023-12-04 10:00:00")
    assert a.delta() == b.delta() != {}
    assert a.delta("ordered_with_ids") != b.delta("ordered_with_ids")  # NeMo-Gym's comparison


def test_no_op_update_case_and_update_back(db):
    state = WorkplaceState.fresh(db)
    rename = lambda value: execute(
        state,
        ToolCall(
            "calendar_update_event",
            {
                "event_id": "00000252",
                "field": "event_name",
                "new_value": value,
            },
        ),
    )
    rename("Brainstorming SESSION")  # differs only in case: not a change for the comparison
    assert state.modified and state.delta() == {}
    rename("Risk Management Forum")
    assert set(state.delta()) == {"calendar"}
    rename("brainstorming session")
    assert state.delta() == {}
    status = lambda value: execute(
        state,
        ToolCall(
            "customer_relationship_manager_update_customer",
            {
                "customer_id": "00000014",
                "field": "status",
                "new_value": value,
            },
        ),
    )
    status("Lost")
    assert set(state.delta()) == {"crm"}  # status is compared case-sensitively (and validated)
