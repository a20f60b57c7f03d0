"""Just enough of Dockerfile and .dockerignore syntax to check the images without a Docker engine."""

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


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore glob: * and ? stay inside one path segment, ** crosses them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_rules(path: Path) -> list[tuple[bool, re.Pattern[str], int]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negate, _pattern_regex(pattern), len(pattern.split("/"))))
    return rules


def in_context(relpath: str, rules: list[tuple[bool, re.Pattern[str], int]]) -> bool:
    """Whether a file reaches the build context: the last matching rule wins, and a pattern
    also matches a file through its parent folder of the same depth (Docker's rule)."""
    parts = relpath.split("/")
    excluded = False
    for negate, regex, depth in rules:
        hit = regex.fullmatch(relpath) or (depth < len(parts) and regex.fullmatch("/".join(parts[:depth])))
        if hit:
            excluded = not negate
    return not excluded
