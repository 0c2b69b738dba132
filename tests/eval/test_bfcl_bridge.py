"""The BFCL bridge protocol, run on a fake API module (tests/eval/bfcl_fake_api.py) instead of bfcl-eval."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from m2rl_slime.eval.bfcl.bridge import Bridge, BridgeError, BridgeUnavailable, env_python

ENTRY = {"id": "multi_turn_base_0", "initial_config": {"TicketAPI": {"next_id": 7, "tickets": {}}},
         "involved_classes": ["TicketAPI"], "long_context": False}  # fmt: skip


def run(coro):
    return asyncio.run(coro)


def test_sessions_execute_calls_on_their_own_instances(fake_bridge):
    async def body():
        async with fake_bridge() as bridge:
            assert bridge.info["api_module"] == "bfcl_fake_api" and bridge.info["python"]
            one, two = await bridge.open_session(ENTRY), await bridge.open_session(ENTRY)
            assert await bridge.execute(one, ["create_ticket(title='a',priority=3)", "list_tickets()"]) == [
                '{"id": 7}', "[7]"]  # fmt: skip
            assert await bridge.execute(two, ["list_tickets()"]) == ["[]"]  # a fresh state per session
            await bridge.close_session(one)
            with pytest.raises(BridgeError, match="unknown session"):
                await bridge.execute(one, ["list_tickets()"])
            assert await bridge.execute(two, ["close_ticket(ticket_id=9)"]) == ['{"error": "no ticket 9"}']

    run(body())


def test_model_strings_cannot_run_code(fake_bridge):
    async def body():
        async with fake_bridge() as bridge:
            session = await bridge.open_session(ENTRY)
            results = await bridge.execute(session, [
                "__import__(name='os')", "create_ticket(title=().__class__)", "_load_scenario(scenario={})",
                "create_ticket(title='x'", "list_tickets().pop()"])  # fmt: skip
            assert results[0] == "Error during execution: name '__import__' is not defined"
            assert results[1] == "Error during execution: only literal arguments are executed"
            assert results[2] == "Error during execution: name '_load_scenario' is not defined"
            assert results[3].startswith("Error during execution: '(' was never closed")
            assert results[4].startswith("Error during execution: only calls of the API's functions")
            assert await bridge.execute(session, ["list_tickets()"]) == ["[]"]

    run(body())


def test_check_runs_the_modules_checker_with_fresh_instances(fake_bridge):
    truth = [["create_ticket(title='a',priority=3)"], ["close_ticket(ticket_id=7)"]]

    async def body():
        async with fake_bridge() as bridge:
            for _ in range(2):  # a second check of the same entry starts from the initial state again
                assert (await bridge.check(ENTRY, [[truth[0]], [truth[1]]], truth))["valid"] is True
            wrong = await bridge.check(ENTRY, [[truth[0]], [["close_ticket(ticket_id=8)"]]], truth)
            assert wrong["valid"] is False and wrong["error_type"] == "multi_turn:instance_state_mismatch"
            assert (await bridge.check(ENTRY, [[truth[0]], []], truth))["error_type"].endswith(
                "empty_turn_model_response"
            )

    run(body())


def test_a_dead_bridge_is_an_infrastructure_error_and_restarts(fake_bridge):
    async def body():
        async with fake_bridge() as bridge:
            session = await bridge.open_session(ENTRY)
            os.kill(bridge._process.pid, signal.SIGKILL)
            await bridge._process.wait()
            with pytest.raises(BridgeError):
                await bridge.execute(session, ["list_tickets()"])
            fresh = await bridge.open_session(ENTRY)  # restarted on the next request
            assert await bridge.execute(fresh, ["list_tickets()"]) == ["[]"]

    run(body())


def test_timeouts_and_unloadable_modules(tmp_path):
    (tmp_path / "slow_api.py").write_text(
        "import time\n"
        "def execute_multi_turn_func_call(*a, **k):\n    time.sleep(30)\n"
        "def multi_turn_checker(*a, **k):\n    return {'valid': True}\n"
    )

    async def body():
        slow = Bridge(python=sys.executable, api_module="slow_api", api_path=[tmp_path], timeout_s=0.5)
        async with slow:
            with pytest.raises(BridgeError, match="did not answer 'open'"):
                await slow.open_session(ENTRY)
        with pytest.raises(BridgeUnavailable, match="cannot load no_such_api"):
            await Bridge(python=sys.executable, api_module="no_such_api").start()

    run(body())


def test_a_missing_environment_names_bfcl_env(tmp_path, monkeypatch):
    monkeypatch.delenv("M2RL_BFCL_ENV", raising=False)
    with pytest.raises(BridgeUnavailable, match="python -m m2rl_slime.eval bfcl-env"):
        env_python(None)
    with pytest.raises(BridgeUnavailable, match=f"bfcl-env {tmp_path}"):
        run(Bridge(tmp_path).start())
