"""``python -m train --data synthetic --out runs/demo``."""

from __future__ import annotations

import logging

from train.config import parse_config
from train.run import train


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    train(parse_config(argv))


if __name__ == "__main__":
    main()
