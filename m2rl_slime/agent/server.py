"""`python -m m2rl_slime.agent serve`: the workplace environment behind the NeMo-Gym resources-server API.

Routes (JSON bodies):

* ``POST /seed_session`` -> ``{"session_id": ...}`` and a ``m2rl_session`` cookie: a fresh episode state.
* ``POST /{tool_name}`` with the tool's arguments -> ``{"output": ...}``. Tool errors come back as
  ``"Error executing tool '<name>': ..."`` with HTTP 200 so the model can recover; an unknown session is
  HTTP 400 "Session not initialized. Please call seed_session first.", as in NeMo-Gym.
* ``POST /verify`` with NeMo-Gym's `WorkbenchVerifyRequest` (``response.output`` function calls,
  ``ground_truth``) or M2RL's short form (``output``, ``ground_truth``) -> the request plus ``reward``
  (and ``m2rl_reason``/``m2rl_details``). It frees the caller's session.
* ``POST /close_session`` frees a session; ``GET /health`` and ``GET /tools`` describe the server.

Sessions are identified by the cookie or the ``X-M2RL-Session`` header and are freed on `/verify`,
`/close_session`, after `session_ttl_s` idle seconds, or least-recently-used beyond `max_sessions`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..errors import LabelError
from ..result import Reason
from .config import AgentConfig
from .env import ToolCall, WorkplaceEnv
from .parsing import call_list, calls_from_responses_output
from .remote import SESSION_COOKIE, SESSION_HEADER
from .tables import WorkplaceDB
from .tools import TOOLS
from .verifier import RECORD_KEY, verify

_NO_SESSION = "Session not initialized. Please call seed_session first."


class SessionStore:
    """Live episode environments by session id, bounded in number and idle time."""

    def __init__(
        self, db: WorkplaceDB, *, max_sessions: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.db = db
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self.clock = clock
        self._envs: OrderedDict[str, tuple[WorkplaceEnv, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._envs)

    def _evict(self) -> None:
        cutoff = self.clock() - self.ttl_s
        while self._envs and (next(iter(self._envs.values()))[1] < cutoff or len(self._envs) > self.max_sessions):
            self._envs.popitem(last=False)

    def create(self) -> str:
        session_id = uuid.uuid4().hex
        self._envs[session_id] = (WorkplaceEnv(self.db), self.clock())
        self._evict()
        return session_id

    def get(self, session_id: str | None) -> WorkplaceEnv | None:
        self._evict()
        entry = self._envs.get(session_id) if session_id else None
        if entry is None:
            return None
        self._envs[session_id] = (entry[0], self.clock())
        self._envs.move_to_end(session_id)
        return entry[0]

    def close(self, session_id: str | None) -> bool:
        return self._envs.pop(session_id, None) is not None if session_id else False


SESSIONS = web.AppKey("sessions", SessionStore)


def _session_id(request: web.Request) -> str | None:
    return request.headers.get(SESSION_HEADER) or request.cookies.get(SESSION_COOKIE)


async def _json_body(request: web.Request) -> Any:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"detail": f"body is not JSON: {exc.msg}"}), content_type="application/json"
        ) from None


def _bad_request(detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=400)


def _predicted_calls(body: dict[str, Any]) -> list[ToolCall]:
    response = body.get("response")
    if isinstance(response, dict) and "output" in response:
        return calls_from_responses_output(response["output"], "response.output")
    output = body.get("output", [])
    if isinstance(output, list) and all(isinstance(item, dict) and "type" in item for item in output):
        return calls_from_responses_output(output, "output")  # M2RL's Action dumps carry a type
    return call_list(output, "output")


def verify_request(body: Any, config: AgentConfig) -> tuple[dict[str, Any] | None, str | None]:
    """Score a `/verify` body; return (response body, None) or (None, error detail for a 400)."""
    if not isinstance(body, dict) or "ground_truth" not in body:
        return None, "expected a JSON object with ground_truth and response.output (or output)"
    try:
        calls = _predicted_calls(body)
    except LabelError as exc:
        return None, f"predicted calls: {exc}"
    params = body.get("responses_create_params")
    tools = params.get("tools") if isinstance(params, dict) else None
    metadata = {
        "ground_truth": body["ground_truth"],
        RECORD_KEY: {"calls": [c.to_dict() for c in calls]},
        "tools": tools,
        "category": body.get("category"),
    }
    result = verify("", None, metadata, config=config)
    if result.reason is Reason.BAD_LABEL:
        return None, str(result.details.get("error"))
    return {
        **body,
        "reward": result.score,
        "m2rl_reason": result.reason.value,
        "m2rl_details": dict(result.details),
    }, None


def build_app(
    config: AgentConfig, db: WorkplaceDB, *, max_sessions: int = 4096, session_ttl_s: float = 3600.0
) -> web.Application:
    """The aiohttp application serving one database (`db`) with the verifier settings `config`."""
    store = SessionStore(db, max_sessions=max_sessions, ttl_s=session_ttl_s)

    async def seed_session(request: web.Request) -> web.Response:
        await _json_body(request)
        session_id = store.create()
        response = web.json_response({"session_id": session_id})
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True)
        return response

    async def close_session(request: web.Request) -> web.Response:
        return web.json_response({"closed": store.close(_session_id(request))})

    async def run_tool(request: web.Request) -> web.Response:
        env = store.get(_session_id(request))
        if env is None:
            return _bad_request(_NO_SESSION)
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _bad_request("the tool arguments must be a JSON object")
        result = env.step(ToolCall(request.match_info["tool"], body))
        return web.json_response({"output": result.output})

    async def verify_route(request: web.Request) -> web.Response:
        body, error = verify_request(await _json_body(request), config)
        store.close(_session_id(request))
        return _bad_request(error) if error is not None else web.json_response(body)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "sessions": len(store), "tools": len(TOOLS), "csv_dir": db.source})

    async def tools(request: web.Request) -> web.Response:
        return web.json_response([spec.schema() for spec in TOOLS.values()])

    app = web.Application()
    app[SESSIONS] = store
    app.router.add_post("/seed_session", seed_session)
    app.router.add_post("/close_session", close_session)
    app.router.add_post("/verify", verify_route)
    app.router.add_get("/health", health)
    app.router.add_get("/tools", tools)
    app.router.add_post("/{tool}", run_tool)
    return app
