"""``python -m service``: one uvicorn worker (each worker would load its own model copy); see ``service/cli.py``."""

from __future__ import annotations

from service.cli import main

if __name__ == "__main__":
    main()
