"""``python -m service``: one uvicorn worker (each worker would load its own model copy)."""

from __future__ import annotations

import uvicorn

from service.logging_setup import configure_logging
from service.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "service.app:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        workers=1,
        log_config=None,  # configure_logging's one handler, not uvicorn's
        access_log=False,  # the service.access line replaces it
    )


if __name__ == "__main__":
    main()
