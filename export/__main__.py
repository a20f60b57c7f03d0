"""``python -m export --checkpoint runs/demo/best.pt --out artifacts/demo [--quantize int8] [--fp16]``."""

from __future__ import annotations

import logging
import sys

from export.config import ExportConfig, get_parser
from export.pipeline import ExportError, run_export
from export.report import summary


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = get_parser().parse_args(argv)
    try:
        report = run_export(ExportConfig(**vars(args), argv=list(argv)))
    except (ExportError, FileNotFoundError, ValueError) as exc:
        print(f"export failed, nothing written: {exc}", file=sys.stderr)
        return 1
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
