"""``python -m export --checkpoint runs/demo/best.pt --out artifacts/demo [--quantize int8] [--fp16]``."""

from __future__ import annotations

import logging
import sys

from core.failures import USER_ERRORS, debug_requested, one_line
from export.config import ExportConfig, get_parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = vars(get_parser().parse_args(argv))
    debug = args.pop("debug") or debug_requested()
    from export.pipeline import ExportError, run_export  # imports torch: after the arguments parsed
    from export.report import summary

    failures: tuple[type[BaseException], ...] = (ExportError, *USER_ERRORS)
    try:
        report = run_export(ExportConfig(**args, argv=list(argv)))
    except failures as exc:  # a failed check, a wrong path, a file that is not a checkpoint
        if debug:
            raise
        print(f"export failed, nothing written: {one_line(exc)}", file=sys.stderr)
        return 1
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
