"""Keep only the definitions the vendored kinds reach: ``python tests/deploy/schemas/prune.py``.

Run after adding a kind or refreshing the files from the kubernetes-validate wheel
(see README.md); it rewrites ``_definitions.json`` in place.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

FOLDER = Path(__file__).parent / "v1.34.0-local-strict"
REF = re.compile(r'"\$ref": "(?:/api/_definitions\.json)?#/\$defs/([^"]+)"')


def reachable(defs: dict, kinds: list[Path]) -> set[str]:
    todo = [name for path in kinds for name in REF.findall(path.read_text())]
    keep: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo += REF.findall(json.dumps(defs[name], indent=2))
    return keep


def main() -> None:
    path = FOLDER / "_definitions.json"
    doc = json.loads(path.read_text())
    keep = reachable(doc["$defs"], [p for p in FOLDER.glob("*.json") if not p.name.startswith("_")])
    doc["$defs"] = {k: doc["$defs"][k] for k in sorted(keep)}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"kept {len(keep)} definitions")


if __name__ == "__main__":
    main()
