"""The package's imports point down its layers, form no cycle, and keep private names private;
the README's module map is the one the layers make (scripts/import_graph.py holds both)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"
_spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
assert _spec and _spec.loader
graph = importlib.util.module_from_spec(_spec)
sys.modules["import_graph"] = graph
_spec.loader.exec_module(graph)


def test_every_import_points_down_and_no_cycle() -> None:
    found = graph.problems(graph.discover())
    assert found == [], "\n".join(found)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    pkg = tmp_path / "mltrail"
    (pkg / "store").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "entities.py").write_text("def f():\n    from mltrail.client import Client\n")
    (pkg / "client.py").write_text("from mltrail.entities import f\nfrom mltrail.store._x import _y\n")
    (pkg / "store" / "__init__.py").write_text("")
    (pkg / "store" / "_x.py").write_text("_y = 1\n")
    found = "\n".join(graph.problems(graph.discover(tmp_path)))
    assert "mltrail.entities (entities) imports mltrail.client (client), a layer above it" in found
    assert "import cycle: mltrail.client -> mltrail.entities -> mltrail.client" in found
    assert "imports the private module mltrail.store._x from outside mltrail.store" in found
    assert "uses the private name from mltrail.store._x import _y" in found


def test_every_module_has_a_layer_and_a_docstring() -> None:
    modules = graph.discover()
    for name in modules:
        graph.layer_of(name)  # raises, naming the module, when LAYERS misses it
    undocumented = sorted(n for n, m in modules.items() if not m.doc)
    assert undocumented == [], f"modules without a one-line docstring for the README's map: {undocumented}"


def test_readme_module_map_is_current() -> None:
    readme = graph.README.read_text()
    assert graph.readme_with_map(readme, graph.discover()) == readme, (
        "the README's module map is stale: run `python scripts/import_graph.py --write-readme`")
