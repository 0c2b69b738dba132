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


def test_writes_stay_in_their_state_and_forks_are_independent(db, wp):
    state = WorkplaceState.fresh(db)
    first, second = wp.email_id, wp.reply_email_id
    execute(state, ToolCall("email_delete_email", {"email_id": first}))
    fork = state.fork()
    execute(fork, ToolCall("email_delete_email", {"email_id": second}))
    ids = lambda s: set(s["emails"].values("email_id"))
    assert first not in ids(state) and second in ids(state)
    assert first not in ids(fork) and second not in ids(fork)
    assert len(db.tables["emails"].rows) == wp.table_sizes["emails"] and not WorkplaceState.fresh(db).modified


def test_swapped_independent_creates_have_equal_summaries(db, wp):
    a, b = WorkplaceState.fresh(db), WorkplaceState.fresh(db)
    assert create(a, wp.colleague, "2023-12-04 10:00:00").output == wp.new_event_id
    create(a, wp.colleague2, "2023-12-04 11:00:00")
    create(b, wp.colleague2, "2023-12-04 11:00:00")
    create(b, wp.colleague, "2023-12-04 10:00:00")
    assert a.delta() == b.delta() != {}
    assert a.delta("ordered_with_ids") != b.delta("ordered_with_ids")  # NeMo-Gym's comparison


def test_no_op_update_case_and_update_back(db, wp):
    state = WorkplaceState.fresh(db)
    rename = lambda value: execute(
        state,
        ToolCall(
            "calendar_update_event",
            {
                "event_id": wp.event_id,
                "field": "event_name",
                "new_value": value,
            },
        ),
    )
    rename(wp.event_name.title())  # differs only in case: not a change for the comparison
    assert state.modified and state.delta() == {}
    rename(wp.renamed_event)
    assert set(state.delta()) == {"calendar"}
    rename(wp.event_name)
    assert state.delta() == {}
    status = lambda value: execute(
        state,
        ToolCall(
            "customer_relationship_manager_update_customer",
            {
                "customer_id": wp.customer[1],
                "field": "status",
                "new_value": value,
            },
        ),
    )
    status("Lost")
    assert set(state.delta()) == {"crm"}  # status is compared case-sensitively (and validated)
