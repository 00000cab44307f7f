"""Serving the dashboard on a background thread: free ports, clean stops, loud failures."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import httpx
import prometheus_client
import pytest
from fastapi import FastAPI

from dashboard.app import create_app
from dashboard.server import ServerError, serve_in_thread


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"at": datetime.now(UTC).isoformat()}

    return app


def test_port_zero_binds_a_free_port_and_stop_releases_it() -> None:
    handle = serve_in_thread(tiny_app(), "127.0.0.1", 0)
    try:
        assert handle.port > 0
        assert handle.url == f"http://127.0.0.1:{handle.port}"
        assert httpx.get(f"{handle.url}/ping", timeout=5).status_code == 200
    finally:
        handle.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{handle.url}/ping", timeout=5)


def test_serves_the_dashboard() -> None:
    class Healthy:
        def patients(self, ward: str | None = None) -> list[object]:
            return []

        def healthy(self) -> bool:
            return True

    app = create_app(
        Healthy(),  # type: ignore[arg-type]  # only what /healthz and /api/patients touch
        registry=prometheus_client.CollectorRegistry(),
        clock=lambda: datetime(2024, 3, 1, tzinfo=UTC),
    )
    handle = serve_in_thread(app, "127.0.0.1", 0)
    try:
        assert httpx.get(f"{handle.url}/healthz", timeout=5).json() == {
            "status": "ok",
            "database": "reachable",
        }
        assert httpx.get(f"{handle.url}/api/patients", timeout=5).json() == []
    finally:
        handle.stop()


def test_a_taken_port_fails_loudly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match=f"127.0.0.1:{port}"):
            serve_in_thread(tiny_app(), "127.0.0.1", port)
