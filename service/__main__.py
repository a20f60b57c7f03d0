"""``python -m service``: one uvicorn worker (each worker would load its own model copy)."""

from __future__ import annotations

from service.app import create_app
from service.server import run
from service.settings import Settings


def main() -> None:
    run(create_app(Settings()))


if __name__ == "__main__":
    main()
