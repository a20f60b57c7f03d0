"""``python -m service``: one uvicorn worker (each worker would load its own model copy)."""

from __future__ import annotations

import uvicorn

from service.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run("service.app:app", host=settings.host, port=settings.port, log_level=settings.log_level, workers=1)


if __name__ == "__main__":
    main()
