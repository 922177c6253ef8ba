"""mltrail's layers, its import graph, and the module map in the README that is made from them.

Every `import` in `src/mltrail` is read with `ast`, including those inside functions, and checked:

- each edge between two of our modules points down the layers below (or stays inside one layer),
- the graph has no cycle (an import inside a function that dodges a cycle is still a cycle),
- a private name (`_x`) is never imported from, or reached into, another module, and a private
  module (`pkg/_x.py`) is imported only from inside its own package.

`python scripts/import_graph.py` prints what breaks these rules; `--write-readme` rewrites the
module map between the README's markers; `tests/test_import_graph.py` fails on either drifting.
Lazy imports of heavy third-party packages (TensorFlow, pandas, SQLAlchemy, ...) are not edges
of this graph: only imports of `mltrail` modules are.
"""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
README = ROOT / "README.md"
MAP_BEGIN = "<!-- module map: made by scripts/import_graph.py --write-readme -->"
MAP_END = "<!-- end of module map -->"

# Top to bottom: a module may import modules of its own layer or of layers below it. A module
# belongs to the first layer that names it or a package above it (most specific name wins).
LAYERS: list[tuple[str, str, list[str]]] = [
    ("commands", "click commands and the demo",
     ["mltrail.cli", "mltrail._cli_tracking", "mltrail._cli_errors", "mltrail.server.cli", "mltrail.serving.cli",
      "mltrail._cli_options", "mltrail._cli_experiments", "mltrail._cli_runs", "mltrail._cli_artifacts",
      "mltrail._cli_doctor", "mltrail._cli_import_mlflow", "mltrail._cli_export_mlflow", "mltrail._cli_users",
      "mltrail.serving.__main__", "mltrail.store.sync_cli", "mltrail.tensorflow.demo"]),
    ("public API", "the `mltrail` package: MLflow's top-level names, lazy submodules",
     ["mltrail"]),
    ("servers", "ASGI apps: the tracking server with its UI, the scoring server",
     ["mltrail.server", "mltrail.serving"]),
    ("interop", "MLflow's stores (databases and FileStore folders) read into mltrail's and written back",
     ["mltrail.interop"]),
    ("flavors", "TensorFlow/Keras: save, load, pyfunc wrapper, callback, autolog",
     ["mltrail.tensorflow", "mltrail.keras", "mltrail._keras_common"]),
    ("models", "MLmodel files, signatures, pyfunc, environments, datasets",
     ["mltrail.models", "mltrail.pyfunc", "mltrail.data"]),
    ("fluent", "the module-level API over an active-run stack per thread",
     ["mltrail.fluent", "mltrail._registry_fluent", "mltrail.artifacts", "mltrail._model_fluent"]),
    ("system metrics", "the thread sampling system/* metrics (psutil, NVML) into a run",
     ["mltrail.system_metrics"]),
    ("uris", "reading and resolving runs:/, models:/ and artifact URIs",
     ["mltrail.uris", "mltrail._run_models"]),
    ("client", "Client (MlflowClient): explicit, stateless calls over the stores",
     ["mltrail.client", "mltrail._registry_client", "mltrail._tables", "mltrail._logged_images"]),
    ("stores", "tracking and registry stores (SQL, REST), artifact repositories",
     ["mltrail.store"]),
    ("foundation", "configuration and checks every layer above shares",
     ["mltrail.tracking_uri", "mltrail._context", "mltrail._paths", "mltrail._validation", "mltrail._dataframe", "mltrail._images",
      "mltrail._names", "mltrail.environment_variables", "mltrail.uri_forms", "mltrail._progress"]),
    ("entities", "plain data, the error hierarchy, shared types",
     ["mltrail.entities", "mltrail.errors", "mltrail.types", "mltrail.version", "mltrail.exceptions"]),
]

# Private names that are protocols, not secrets: MLflow's pyfunc loader calls a flavor module's
# `_load_pyfunc`, so a flavor package re-exports it from the module that defines it.
PROTOCOL_NAMES = {"_load_pyfunc"}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    doc: str = ""
    # imported module -> line numbers
    imports: dict[str, list[int]] = field(default_factory=dict)
    # (line, text) of private names taken from other modules
    private_uses: list[tuple[int, str]] = field(default_factory=list)


def discover(src: Path = SRC) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted((src / "mltrail").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        if "migrations" in parts:  # Alembic's scripts, loaded by Alembic, not imported
            continue
        name = ".".join(parts)
        modules[name] = Module(name, path, is_package)
    for module in modules.values():
        _read(module, modules)
    return modules


def _longest_module(name: str, modules: dict[str, Module]) -> str:
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _first_sentence(doc: str) -> str:
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    head, sep, _ = paragraph.partition(". ")
    return head + "." if sep else paragraph


def _read(module: Module, modules: dict[str, Module]) -> None:
    tree = ast.parse(module.path.read_text(), str(module.path))
    module.doc = _first_sentence(ast.get_docstring(tree) or "")
    aliases: dict[str, str] = {}  # local name -> our module it stands for
    for node in ast.walk(tree):
        targets: list[tuple[str, str | None]] = []  # (module, name taken from it)
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.append((alias.name, None))
                if alias.asname and alias.name in modules:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.name.split(".")
                if not module.is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                full = f"{prefix}.{alias.name}"
                if full in modules:
                    targets.append((full, None))
                    aliases[alias.asname or alias.name] = full
                else:
                    targets.append((prefix, alias.name))
        else:
            continue
        for target, name in targets:
            if target != "mltrail" and not target.startswith("mltrail."):
                continue
            resolved = _longest_module(target, modules)
            if resolved == module.name:
                continue
            module.imports.setdefault(resolved, []).append(node.lineno)
            if name and name.startswith("_") and not name.startswith("__") and name not in PROTOCOL_NAMES:
                module.private_uses.append((node.lineno, f"from {resolved} import {name}"))
    # `alias._private` where alias is one of our modules
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")):
            target = aliases[node.value.id]
            if f"{target}.{node.attr}" not in modules:
                module.private_uses.append((node.lineno, f"{target}.{node.attr}"))


def layer_of(name: str) -> int:
    best: tuple[int, int] | None = None  # (specificity, layer index)
    for index, (_, _, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                specificity = prefix.count(".") + 1
                if best is None or specificity > best[0]:
                    best = (specificity, index)
    if best is None:
        raise KeyError(f"module {name} is in no layer: add it to LAYERS in scripts/import_graph.py")
    return best[1]


def _owner_package(name: str) -> str:
    """The package inside which a private module may be imported (the name itself when it is public)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if i and part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return name


def _where(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


def problems(modules: dict[str, Module]) -> list[str]:
    out: list[str] = []
    for module in modules.values():
        try:
            own = layer_of(module.name)
        except KeyError as exc:
            out.append(str(exc.args[0]))
            continue
        for target, lines in sorted(module.imports.items()):
            where = f"{_where(module.path)}:{lines[0]}"
            if layer_of(target) < own:
                out.append(f"{where}: {module.name} ({LAYERS[own][0]}) imports {target} "
                           f"({LAYERS[layer_of(target)][0]}), a layer above it")
            owner = _owner_package(target)
            inside = module.name == owner or module.name.startswith(owner + ".")
            if owner != target and not inside:
                out.append(f"{where}: {module.name} imports the private module {target} from outside {owner}")
        for line, text in module.private_uses:
            out.append(f"{_where(module.path)}:{line}: {module.name} uses the private name {text}")
    out.extend(f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(modules))
    return out


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """One cycle through each strongly connected set of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in modules[v].imports:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                found.append(_cycle_through(set(members), modules))

    for name in sorted(modules):
        if name not in index:
            visit(name)
    return found


def _cycle_through(members: set[str], modules: dict[str, Module]) -> list[str]:
    start = min(members)
    path = [start]
    seen = {start}
    while True:
        nxt = sorted(t for t in modules[path[-1]].imports if t in members)
        back = [t for t in nxt if t == start]
        if back and len(path) > 1:
            return [*path, start]
        fresh = [t for t in nxt if t not in seen]
        if not fresh:
            return [*path, nxt[0]] if nxt else path
        path.append(fresh[0])
        seen.add(fresh[0])


def module_map(modules: dict[str, Module]) -> str:
    """The README's module map: each layer, top to bottom, with its modules' one-line docstrings."""
    lines = [MAP_BEGIN, "", "| layer | module | what it is |", "|---|---|---|"]
    for index, (title, what, _) in enumerate(LAYERS):
        names = sorted(n for n in modules if layer_of(n) == index)
        first = True
        for name in names:
            path = modules[name].path.relative_to(SRC / "mltrail").as_posix()
            doc = modules[name].doc.replace("|", "\\|")
            cell = f"**{title}**: {what}" if first else ""
            lines.append(f"| {cell} | `{path}` | {doc} |")
            first = False
    lines += ["", MAP_END]
    return "\n".join(lines)


def readme_with_map(readme: str, modules: dict[str, Module]) -> str:
    head, sep, rest = readme.partition(MAP_BEGIN)
    _, sep2, tail = rest.partition(MAP_END)
    if not sep or not sep2:
        raise ValueError(f"README.md lacks the markers {MAP_BEGIN!r} ... {MAP_END!r}")
    return head + module_map(modules) + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-readme", action="store_true", help="rewrite the README's module map")
    args = parser.parse_args(argv)
    modules = discover()
    if args.write_readme:
        README.write_text(readme_with_map(README.read_text(), modules))
    found = problems(modules)
    for line in found:
        print(line)
    print(f"{len(modules)} modules, {sum(len(m.imports) for m in modules.values())} edges, "
          f"{len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
