"""``python -m service`` / ``image-classifier-serve``: check the settings and the model, then run uvicorn.

The service is configured by environment variables (``service/settings.py``);
``--help`` lists every one with its default, generated from the Settings class.
The model is opened before uvicorn starts, so a wrong ``MODEL_PATH`` or a bad
setting ends the process with one line and exit status 2; ``--debug`` (or
``DEBUG=1``) shows the traceback as well.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import PydanticUndefined

from core.errors import ClassifierError
from core.failures import debug_requested, one_line_errors, prog_name
from service.logging_setup import configure_logging
from service.settings import Settings


def _default(value: object) -> str:
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def environment_help(width: int = 100) -> str:
    """Every setting as ``NAME=default`` and its description, straight from the Settings fields."""
    lines = ["environment variables (read once at startup; NAME=default):"]
    for name, field in Settings.model_fields.items():
        lines.append(f"  {name.upper()}={_default(field.default)}")
        lines += textwrap.wrap(field.description or "", width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("service"),
        description="Serve an exported model.onnx over HTTP (FastAPI + onnxruntime, one uvicorn worker).",
        epilog=environment_help()
        + "\n\nexample:\n  MODEL_PATH=artifacts/demo/model.onnx HOST=127.0.0.1 PORT=8000 python -m service",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--check", action="store_true", help="load and warm up the model, print what would be served, exit")
    p.add_argument("--debug", action="store_true", help="show the full traceback when startup fails (or DEBUG=1)")
    return p


def read_settings() -> Settings:
    """The environment as typed settings; a bad value is one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
        ]
        raise StartupError("invalid setting: " + "; ".join(problems)) from exc


class StartupError(ClassifierError):
    """The settings or the model stop the service from starting."""

    code = "startup_failed"


def run(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    with one_line_errors(prog_name("service"), debug=args.debug or debug_requested()):
        settings = read_settings()
        configure_logging(settings.log_level, settings.log_format)
        from service.instances import open_instances
        from service.startup import describe

        try:
            instances = open_instances(settings)
        except ClassifierError as exc:
            raise StartupError(f"MODEL_PATH: {exc.message}") from exc
        if args.check:
            print(describe(instances.model, settings, instances.plan))
            return 0
        from service.app import create_app
        from service.server import build_server

        # uvicorn with the service's guarded connections, no banner, and a drain on SIGTERM
        server = build_server(
            create_app(settings, instances=instances),
            log_config=None,  # configure_logging's one handler, not uvicorn's
            access_log=False,  # the service.access line replaces it
        )
        server.run()
        return 0 if server.started else 3
    return 2  # not reached: one_line_errors exits


def main() -> None:
    sys.exit(run())
