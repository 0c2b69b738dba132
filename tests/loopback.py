"""A loopback HTTP server for tests: an aiohttp application on 127.0.0.1 (a free port) served by its own
thread and event loop, started and stopped by ``with``. The fake SGLang/OpenAI servers of the eval,
analysis and contract tests subclass it and add their routes in `routes`."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class Loopback:
    """Call `_init_loopback` from ``__init__``/``__post_init__``; override `routes`. `url` is valid
    inside the ``with`` block."""

    port: int = 0
    client_max_size: int = 64 * 1024 * 1024

    def _init_loopback(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def routes(self, app: Any) -> None:
        """Add the server's routes to `app` (an ``aiohttp.web.Application``)."""
        raise NotImplementedError(f"{type(self).__name__} adds no routes")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(30), f"{type(self).__name__} did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def _serve(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
