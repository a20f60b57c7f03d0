"""Command lines generated from typed config dataclasses, so each default and help text is written once.

A field declared with ``opt(default, "help")`` becomes ``--field-name``; booleans
become switches (``flag="--no-x"`` for one that turns a default on off);
``MISSING`` makes a flag required. Fields marked ``profiled`` are parsed with a
``None`` default so that a caller can fill them from a profile afterwards.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable
from dataclasses import MISSING, Field, field, fields
from typing import Any, get_type_hints


def opt(
    default: Any, help: str, *, flag: str | None = None, choices: list[str] | None = None, profiled: bool = False
) -> Any:
    """A config field with its command-line help; ``flag`` overrides the ``--field-name`` spelling."""
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices, "profiled": profiled})


def _scalar(hint: Any) -> Any:
    """``int | None`` -> ``int``: the type argparse converts a flag's text to."""
    if isinstance(hint, types.UnionType):
        return next(a for a in hint.__args__ if a is not type(None))
    return hint


def _add(p: argparse.ArgumentParser, f: Field, hint: Any, profiled_help: Callable[[Field], str]) -> None:
    meta = f.metadata
    flag = meta.get("flag") or "--" + f.name.replace("_", "-")
    if f.default is MISSING:
        p.add_argument(flag, dest=f.name, type=_scalar(hint), required=True, help=meta["help"])
    elif hint is bool:
        p.add_argument(flag, dest=f.name, action="store_false" if f.default else "store_true", help=meta["help"])
    elif meta.get("profiled"):  # None = not given, so a profile can fill it in
        p.add_argument(
            flag, dest=f.name, type=_scalar(hint), default=None, choices=meta.get("choices"), help=profiled_help(f)
        )
    else:
        shown = "" if f.default is None else f" (default {f.default})"
        p.add_argument(
            flag,
            dest=f.name,
            type=_scalar(hint),
            default=f.default,
            choices=meta.get("choices"),
            help=meta["help"] + shown,
        )


def add_fields(
    p: argparse.ArgumentParser,
    cls: type,
    profiled_help: Callable[[Field], str] | None = None,
    skip: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """One flag per field of ``cls`` that was declared with ``opt``."""
    hints = get_type_hints(cls)
    for f in fields(cls):
        if "help" in f.metadata and f.name not in skip:
            _add(p, f, hints[f.name], profiled_help or (lambda f: f.metadata["help"]))
    return p


def profiled_fields(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.metadata.get("profiled")]
