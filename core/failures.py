"""How every command line reports a user's mistake: one line on stderr, exit status 2, no traceback.

A traceback helps the person debugging this code, not the one who typed a
wrong path; ``--debug`` or ``DEBUG=1`` brings it back. Only the errors a user
can cause are caught this way; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import ClassifierError

# What a wrong flag, path or file leads to; the messages name the problem and the fix.
USER_ERRORS: tuple[type[BaseException], ...] = (ClassifierError, OSError, ValueError)
EXIT_USAGE = 2


def prog_name(module: str) -> str:
    """``image-classifier-train`` when run as the installed console script, else ``python -m train``."""
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return script if script.startswith("image-classifier-") else f"python -m {module}"


def debug_requested() -> bool:
    return os.environ.get("DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def one_line(exc: BaseException) -> str:
    """The message on one line (some libraries write several)."""
    text = exc.message if isinstance(exc, ClassifierError) else str(exc)
    return " ".join(text.split()) or type(exc).__name__


@contextmanager
def one_line_errors(
    prog: str, debug: bool = False, errors: tuple[type[BaseException], ...] = USER_ERRORS
) -> Iterator[None]:
    """Turn ``errors`` raised inside the block into ``prog: error: ...`` and exit 2 (re-raise with ``debug``)."""
    try:
        yield
    except errors as exc:
        if debug:
            raise
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
