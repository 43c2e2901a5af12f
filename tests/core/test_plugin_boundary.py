"""The plugin boundary: code under plugins/ imports the kmodels core only through `kmodels.api`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
#: an import written inside a docstring example (`>>> from kmodels.x import y`) counts as code too
DOCTEST_IMPORT = re.compile(r">>>\s*(?:from\s+(kmodels(?:\.\w+)*)\s+import|import\s+(kmodels(?:\.\w+)*))")


def core_imports(path: Path) -> list[str]:
    """Every `kmodels` module (not `kmodels_*`) that `path` imports, in code or in its doctest examples."""
    text = path.read_text(encoding="utf-8")
    found = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [f"{path.name}:{node.lineno}: {name}" for name in names if name.split(".")[0] == "kmodels"]
    found += [f"{path.name}: doctest {a or b}" for a, b in DOCTEST_IMPORT.findall(text)]
    return found


def offending(path: Path) -> list[str]:
    """The imports that break the boundary: anything but `kmodels.api` (a docstring example may also
    `import kmodels`, the user's public API, as a user would)."""
    return [entry for entry in core_imports(path)
            if not entry.endswith((": kmodels.api", " kmodels.api", "doctest kmodels"))]


@pytest.mark.parametrize("path", sorted(PLUGINS.rglob("*.py")), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_plugins_import_only_kmodels_api(path):
    assert offending(path) == [], "plugins may import the core only through kmodels.api"


def test_the_boundary_check_catches_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""Doc.\n\n    >>> from kmodels.runs import RunDir\n"""\nfrom kmodels.data.csv import read_csv\n'
                   "import kmodels.spec\nfrom kmodels.api import Task\nimport kmodels_vision\nimport kmodels\n")
    assert offending(bad) == ["bad.py:5: kmodels.data.csv", "bad.py:6: kmodels.spec", "bad.py:9: kmodels",
                            "bad.py: doctest kmodels.runs"]


def _task_imports() -> dict[str, set[str]]:
    """module → the `kmodels.task.*` modules it imports anywhere (function-level imports too; not under
    `if TYPE_CHECKING:`, which never runs)."""
    folder = Path(__file__).resolve().parents[2] / "kmodels" / "task"
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        names = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kmodels.task."):
                names.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[2] for a in node.names if a.name.startswith("kmodels.task.")}
        graph[path.stem] = names - {path.stem}
    return graph


def test_no_module_of_kmodels_task_imports_one_that_imports_it_back():
    graph = _task_imports()
    assert {"base", "runner", "model_steps", "training", "inference"} <= set(graph)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    cycles = sorted(m for m in graph if reaches(m, m, {m}))
    assert cycles == [], {m: sorted(graph[m]) for m in cycles}
