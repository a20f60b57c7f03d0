"""``python -m train --data synthetic --out runs/demo``."""

from __future__ import annotations

import logging
import sys

from core.failures import debug_requested, one_line_errors, prog_name
from train.config import parse_config


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or debug_requested()
    # A bad --data, --arch, --weights, a dataset too small, a changed split: one line, exit 2.
    with one_line_errors(prog_name("train"), debug=debug):
        cfg = parse_config(argv)
        from train.run import train  # imports torch: after the arguments parsed (--help stays instant)

        train(cfg)


if __name__ == "__main__":
    main()
