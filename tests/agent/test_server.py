"""Service mode: the NeMo-Gym resources-server API (`/seed_session`, `/{tool}`, `/verify`), session freeing,
and a full episode run against the server through `RemoteEpisodeEnv`."""

from __future__ import annotations

import json
import socket

import aiohttp
import pytest
from agent_harness import SampleDouble, make_sample, play, run
from aiohttp import web

from m2rl_slime.agent.config import AgentConfig
from m2rl_slime.agent.env import ToolCall, allowed_tools
from m2rl_slime.agent.remote import EnvironmentUnavailable, RemoteEnvClient, RemoteEpisodeEnv
from m2rl_slime.agent.server import SESSIONS, SessionStore, build_app, verify_request
from m2rl_slime.agent.verifier import verify


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


def test_nemo_gym_style_client_session_tools_and_verify(db, config, rollouts, wp):
    async def scenario():
        app = build_app(config, db)
        runner, url = await serve(app)
        try:
            # a NeMo-Gym client keeps the session in its cookie jar
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(f"{url}/email_search_emails", json={"query": wp.search_query}) as resp:
                    assert resp.status == 400
                    assert (await resp.json())["detail"] == "Session not initialized. Please call seed_session first."
                async with http.post(f"{url}/seed_session", json={}) as resp:
                    assert resp.status == 200 and "session_id" in await resp.json()
                assert len(app[SESSIONS]) == 1
                args = {"query": wp.search_query, "page": 1, "page_size": 1, "date_min": None}
                async with http.post(f"{url}/email_search_emails", json=args) as resp:
                    assert (await resp.json())["output"]["emails"][0]["email_id"] == wp.email_id
                async with http.post(f"{url}/email_delete_email", json={"email_id": wp.email_id}) as resp:
                    assert (await resp.json())["output"] == "Email deleted successfully."
                async with http.post(f"{url}/email_delete_email", json={"email_id": wp.email_id}) as resp:
                    assert (await resp.json())["output"] == "Email not found."  # the session's state persisted
                async with http.post(f"{url}/email_archive", json={}) as resp:
                    assert resp.status == 200 and (await resp.json())["output"].startswith("Error executing tool")
                async with http.post(f"{url}/email_delete_email", data="{not json") as resp:
                    assert resp.status == 400
                body = {**rollouts[4], "id": 4, "environment_name": "workplace_assistant"}
                async with http.post(f"{url}/verify", json=body) as resp:
                    out = await resp.json()
                assert out["reward"] == rollouts[4]["reward"] == 1.0 and out["id"] == 4 and out["m2rl_reason"] == "ok"
                assert len(app[SESSIONS]) == 0  # /verify frees the caller's session
                short = {
                    "output": [
                        {"type": "function_call", "name": "email_delete_email", "arguments": {"email_id": wp.email_id}}
                    ],
                    "ground_truth": rollouts[4]["ground_truth"],
                }  # M2RL's short form
                async with http.post(f"{url}/verify", json=short) as resp:
                    assert (await resp.json())["reward"] == 1.0
                async with http.post(f"{url}/verify", json={"output": []}) as resp:
                    assert resp.status == 400
                async with http.post(f"{url}/verify", json={"output": [], "ground_truth": [{"name": "nope"}]}) as resp:
                    assert resp.status == 400 and "unknown tool" in (await resp.json())["detail"]
                async with http.get(f"{url}/health") as resp:
                    assert (await resp.json())["tools"] == 27
                async with http.get(f"{url}/tools") as resp:
                    assert len(await resp.json()) == 27
        finally:
            await runner.cleanup()

    run(scenario())


def test_session_store_frees_by_ttl_and_lru(db):
    now = [0.0]
    store = SessionStore(db, max_sessions=2, ttl_s=10.0, clock=lambda: now[0])
    a = store.create()
    b = store.create()
    store.get(a)  # a is now the most recently used
    store.create()
    assert store.get(b) is None and store.get(a) is not None and len(store) == 2
    now[0] = 100.0
    assert store.get(a) is None and len(store) == 0
    c = store.create()
    assert store.close(c) and not store.close(c) and not store.close(None)


def test_episode_on_a_remote_environment_matches_the_local_one(tokenizer, db, tasks, config, script):
    async def scenario():
        app = build_app(config, db)
        runner, url = await serve(app)
        client = RemoteEnvClient(url, timeout_s=5.0, retries=2)
        try:
            remote, local = make_sample(tasks[0]), make_sample(tasks[0])
            env = RemoteEpisodeEnv(client, allowed_tools(remote.metadata["tools"]))
            await play(tokenizer, db, remote, script, env=env)
            await play(tokenizer, db, local, script)
            assert len(app[SESSIONS]) == 0  # closed at the end of the episode
            blocked = await RemoteEpisodeEnv(client, {"email_search_emails"}).call(ToolCall("email_delete_email", {}))
            assert not blocked.ok
            return remote, local
        finally:
            await client.aclose()
            await runner.cleanup()

    remote, local = run(scenario())
    assert remote.status is SampleDouble.Status.COMPLETED
    assert remote.tokens == local.tokens and remote.metadata["m2rl_agent"] == local.metadata["m2rl_agent"]
    assert verify(remote.response, None, remote.metadata, config=config).score == 1.0


def test_unreachable_environment_aborts_the_episode(tokenizer, db, tasks, script):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"

    async def scenario():
        client = RemoteEnvClient(dead, timeout_s=1.0, retries=2)
        with pytest.raises(EnvironmentUnavailable, match="2 attempt"):
            await client.open_session()
        sample = make_sample(tasks[0])
        await play(tokenizer, db, sample, script, env=RemoteEpisodeEnv(client))
        await client.aclose()
        return sample

    sample = run(scenario())
    assert sample.status is SampleDouble.Status.ABORTED and sample.metadata["m2rl_agent"]["stop"] == "env_unavailable"


def test_tool_calls_are_not_repeated_after_a_server_error():
    hits = []

    async def scenario():
        async def seed(request):
            hits.append("seed")
            if hits.count("seed") == 1:
                return web.Response(status=503, text="warming up")  # repeatable: retried
            return web.json_response({"session_id": "s1"})

        async def tool(request):
            hits.append(request.headers.get("X-M2RL-Session"))
            return web.Response(status=500, text=json.dumps({"detail": "boom"}))

        app = web.Application()
        app.router.add_post("/seed_session", seed)
        app.router.add_post("/{tool}", tool)
        runner, url = await serve(app)
        client = RemoteEnvClient(url, timeout_s=5.0, retries=3)
        try:
            session = await client.open_session()
            with pytest.raises(EnvironmentUnavailable, match="HTTP 500"):
                await client.call(session, ToolCall("email_send_email", {"recipient": "a@b.c"}))
        finally:
            await client.aclose()
            await runner.cleanup()

    run(scenario())
    assert hits == ["seed", "seed", "s1"]  # the session start was retried; the tool call reached it once


def test_verify_uses_the_servers_scoring_rules(config):
    body = {"output": [], "ground_truth": [{"name": "email_search_emails", "arguments": "{}"}]}
    ours, _ = verify_request(body, config)
    reference, _ = verify_request(body, AgentConfig(csv_dir=config.csv_dir, noop_ground_truth="reward_any"))
    assert (ours["reward"], reference["reward"]) == (0.0, 1.0)
