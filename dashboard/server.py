"""Run the dashboard with uvicorn on a background thread, for the composition root and tests."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI


class ServerError(RuntimeError):
    """The server did not start (e.g. the port is taken)."""


@dataclass(frozen=True, slots=True)
class ServerHandle:
    """A running server: where it listens and how to stop it."""

    url: str
    host: str
    port: int
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to finish its requests and exit; wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            msg = f"dashboard server on {self.url} did not stop within {timeout_s} s"
            raise ServerError(msg)


def serve_in_thread(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, start_timeout_s: float = 10.0
) -> ServerHandle:
    """Start serving ``app`` and return once it accepts connections; port 0 picks a free port."""
    # A browser stuck on an open event stream must not hold shutdown up for ever.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)

    def run() -> None:
        # uvicorn calls sys.exit when it cannot bind; in a thread that would vanish unreported.
        with contextlib.suppress(SystemExit):
            server.run()

    thread = threading.Thread(target=run, name=f"dashboard-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        # A thread that ended before the server started has failed to bind (uvicorn logs why).
        if not thread.is_alive():
            msg = f"dashboard server failed to start on {host}:{port}"
            raise ServerError(msg)
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(start_timeout_s)
            msg = f"dashboard server did not start within {start_timeout_s} s"
            raise ServerError(msg)
        time.sleep(0.01)
    bound_port = int(server.servers[0].sockets[0].getsockname()[1])
    url_host = f"[{host}]" if ":" in host else host
    return ServerHandle(
        url=f"http://{url_host}:{bound_port}",
        host=host,
        port=bound_port,
        _server=server,
        _thread=thread,
    )
