"""Just enough of Dockerfile syntax to check the images without a Docker engine
(what the engine sends as the build context is checked by test_build_context.py, on a real one)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Instruction:
    name: str  # upper case: FROM, RUN, COPY...
    args: str  # the rest of the (joined) line

    def argv(self) -> list[str]:
        """Exec (JSON) form as a list; shell form split like a shell would."""
        text = self.args.strip()
        return json.loads(text) if text.startswith("[") else shlex.split(text)


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]


def instructions(path: Path) -> list[Instruction]:
    """Logical lines: comments dropped, backslash continuations joined."""
    out: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        name, _, args = (pending + line).partition(" ")
        out.append(Instruction(name.upper(), args.strip()))
        pending = ""
    return out


def stages(path: Path) -> list[Stage]:
    result: list[Stage] = []
    for ins in instructions(path):
        if ins.name == "FROM":
            words = ins.args.split()
            result.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        elif result:
            result[-1].instructions.append(ins)
    return result


def arg_defaults(stage: Stage) -> dict[str, str]:
    defaults = {}
    for ins in stage.all("ARG"):
        name, _, value = ins.args.partition("=")
        defaults[name.strip()] = value.strip()
    return defaults


def copy_sources(stage: Stage) -> list[str]:
    """Build-context sources of COPY/ADD (not --from=... copies), with ARG defaults substituted."""
    defaults = arg_defaults(stage)
    sources = []
    for ins in stage.all("COPY") + stage.all("ADD"):
        words = ins.argv()
        if any(w.startswith("--from=") for w in words):
            continue
        for src in [w for w in words if not w.startswith("--")][:-1]:
            sources.append(re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], src))
    return sources
