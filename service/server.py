"""The uvicorn server the service runs under: guarded connections, no banner, a drain on SIGTERM.

``python -m service`` (``service/cli.py``) and the tests' loopback server both
build it here, so what the tests prove is what production runs.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from service.connections import ConnectionLimits, guarded_protocol
from service.drain import DrainingServer
from service.settings import Settings


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        body_min_rate=settings.body_min_rate,
        max_connections=settings.max_connections,
        linger_seconds=settings.linger_seconds,
        linger_bytes=settings.linger_bytes,
    )


def build_server(app: FastAPI, **overrides: Any) -> DrainingServer:
    """A server for ``app`` (made by ``create_app``), configured from the app's own settings."""
    settings: Settings = app.state.settings
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "lifespan": "on",
        "http": guarded_protocol(connection_limits(settings), app.state.metrics),
        "server_header": False,  # no "Server: uvicorn" banner
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
        **overrides,
    }
    return DrainingServer(uvicorn.Config(app, **options), app.state.drain, settings.drain_seconds)
