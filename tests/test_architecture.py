"""The package boundaries, checked from the source: who may import whom.

``core`` stands on numpy, Pillow and onnxruntime only; the stages stand on
``core`` and never on the web service; the service never imports torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)
CORE_MAY_IMPORT = {"numpy", "PIL", "onnxruntime", "pillow_heif", "core"}


def imports(package: str) -> dict[str, set[str]]:
    """Top-level module names imported by each file of ``package`` (relative file -> names)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[path.relative_to(ROOT).as_posix()] = names
    return found


def test_core_needs_only_numpy_pillow_and_onnxruntime() -> None:
    extra = {f: sorted(n - STDLIB - CORE_MAY_IMPORT) for f, n in imports("core").items()}
    assert {f: n for f, n in extra.items() if n} == {}


@pytest.mark.parametrize("package", ["train", "export", "bench"])
def test_stages_never_import_the_service(package: str) -> None:
    assert [f for f, names in imports(package).items() if "service" in names] == []


def test_service_never_imports_torch() -> None:
    assert [f for f, names in imports("service").items() if names & {"torch", "torchvision"}] == []


def test_importing_core_loads_no_torch_and_no_web_framework() -> None:
    code = (
        "import sys, core.contract, core.errors, core.imaging, core.model, core.runtime; "
        "bad = sorted({'torch', 'fastapi', 'starlette', 'pydantic'} & set(sys.modules)); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
