"""``python -m train --data synthetic --out runs/demo``."""

from __future__ import annotations

import logging
import sys

from train.config import parse_config
from train.run import train


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        train(parse_config(argv))
    except (FileNotFoundError, ValueError) as exc:  # bad --data, --arch, --weights, or a changed split
        logging.getLogger("train").error("%s", exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
