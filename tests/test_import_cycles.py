"""No import circle in the package, counting the imports inside functions too.

lint-imports (grimp) checks the layers; this test reads every module with `ast` and fails on
any strongly connected component of more than one module, naming a circle and the lines of
its imports. Function-level imports count: a circle that only closes when a function runs
still leaves two modules that cannot be understood, changed or tested one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

from cli_runner import REPO

ROOT = "lmms_eval_plugin"
# package-dir in pyproject.toml: these top-level folders ship as lmms_eval_plugin.<folder>
# (their sub-folders are task data that lmms-eval loads by file path, not modules of ours).
SHIPPED_FOLDERS = ("patches", "tasks")


def package_sources() -> dict[str, tuple[str, bool]]:
    """{module name: (source, is a package __init__)} for every module of the installed package."""
    found = {}
    for path in sorted((REPO / ROOT).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = (path, parts[-1] == "__init__")
    for folder in SHIPPED_FOLDERS:
        for path in sorted((REPO / folder).glob("*.py")):
            found[f"{ROOT}.{folder}" + ("" if path.stem == "__init__" else f".{path.stem}")] = (path, path.stem == "__init__")
    return {name: (Path(path).read_text(encoding="utf-8"), is_pkg) for name, (path, is_pkg) in found.items()}


def _known(name: str, modules) -> str | None:
    """The module `name` loads: itself, else its longest known prefix (`import a.b.Name`-like)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _imports(module: str, source: str, is_package: bool, modules) -> dict[str, int]:
    """{imported module of ours: line of its first import} at any depth (module, class, function)."""
    tree = ast.parse(source, filename=module)
    edges: dict[str, int] = {}

    def add(name: str | None, line: int) -> None:
        if name and name != module and (name == ROOT or name.startswith(ROOT + ".")):
            edges.setdefault(name, line)

    dispatches = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_known(alias.name, modules), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(module, is_package, node.level, node.module) if node.level else node.module
            for alias in node.names:
                # `from a.b import c`: the submodule a.b.c when there is one, else a name of a.b
                sub = f"{origin}.{alias.name}"
                add(sub if sub in modules else _known(origin, modules), node.lineno)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__"):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                add(_known(first.value, modules), node.lineno)
            else:
                dispatches = True
    if dispatches:  # a dispatch table (`importlib.import_module(TABLE[cmd])`): the module names it holds are imports
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
                add(node.value, node.lineno)
    return edges


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, dict[str, int]]:
    """{module: {module it imports: line}}, only edges between the given modules."""
    modules = set(sources)
    return {name: {t: ln for t, ln in _imports(name, src, is_pkg, modules).items() if t in modules}
            for name, (src, is_pkg) in sources.items()}


def _components(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    out.append(sorted(comp))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def _circle(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    """One circle through the component's first module, with each import's line."""
    members, first = set(component), component[0]
    paths, queue = {first: [first]}, [first]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node]):
            if child == first:
                path = paths[node] + [first]
                return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(path, path[1:])) + f" -> {first}"
            if child in members and child not in paths:
                paths[child] = paths[node] + [child]
                queue.append(child)
    raise AssertionError(f"no circle through {first}")  # unreachable for a component of two or more


def import_circles(sources: dict[str, tuple[str, bool]]) -> list[str]:
    graph = import_graph(sources)
    return [_circle(graph, comp) for comp in _components(graph) if len(comp) > 1]


def test_package_has_no_import_circle():
    circles = import_circles(package_sources())
    assert not circles, "import circles (module-level and function-level imports):\n" + "\n".join(circles)


def test_the_graph_sees_the_package():
    graph = import_graph(package_sources())
    assert any(t.startswith("lmms_eval_plugin.engine.") for t in graph["lmms_eval_plugin.models.lvu_ext"])
    assert "lmms_eval_plugin.bench.cli" in graph["lmms_eval_plugin.cli"]  # through the dispatch table
    assert "lmms_eval_plugin.patches.rope_window" in graph


# --- the detector on small made-up packages -----------------------------------------------------

def _pkg(**modules: str) -> dict[str, tuple[str, bool]]:
    """Module name (dots as __) -> source; a name ending in __init__ is that package."""
    out = {}
    for key, src in modules.items():
        name = key.replace("__", ".")
        is_pkg = name.endswith(".init")
        out[name[: -len(".init")] if is_pkg else name] = (src, is_pkg)
    return out


def test_finds_a_circle_closed_inside_a_function():
    # the shape of the old engine/video.py <-> engine/sparse_decode.py circle
    sources = _pkg(lmms_eval_plugin__engine__init="",
                   lmms_eval_plugin__engine__video="def load():\n    from lmms_eval_plugin.engine.sparse_decode import decode_sparse\n",
                   lmms_eval_plugin__engine__sparse_decode="from lmms_eval_plugin.engine.video import FramePlan\n")
    (circle,) = import_circles(sources)
    assert circle == ("lmms_eval_plugin.engine.sparse_decode (line 1) -> lmms_eval_plugin.engine.video (line 2) "
                      "-> lmms_eval_plugin.engine.sparse_decode")


def test_from_package_import_submodule_is_an_edge_to_the_submodule():
    sources = _pkg(lmms_eval_plugin__bench__init="",
                   lmms_eval_plugin__bench__cli="from lmms_eval_plugin.bench import gpu_suite\n",
                   lmms_eval_plugin__bench__gpu_suite="import lmms_eval_plugin.bench.cli as dispatch\n")
    assert len(import_circles(sources)) == 1
    graph = import_graph(sources)
    assert graph["lmms_eval_plugin.bench.cli"] == {"lmms_eval_plugin.bench.gpu_suite": 1}


def test_relative_imports_and_names_resolve():
    sources = _pkg(lmms_eval_plugin__init="", lmms_eval_plugin__a__init="from . import b\n",
                   lmms_eval_plugin__a__b="from .c import thing\n", lmms_eval_plugin__a__c="from .. import top\n",
                   lmms_eval_plugin__top="from lmms_eval_plugin.a.c import thing\nimport json\n")
    graph = import_graph(sources)
    assert graph["lmms_eval_plugin.a"] == {"lmms_eval_plugin.a.b": 1}
    assert graph["lmms_eval_plugin.a.b"] == {"lmms_eval_plugin.a.c": 1}
    assert graph["lmms_eval_plugin.a.c"] == {"lmms_eval_plugin.top": 1}
    assert graph["lmms_eval_plugin.top"] == {"lmms_eval_plugin.a.c": 1}
    (circle,) = import_circles(sources)
    assert "lmms_eval_plugin.a.c" in circle and "lmms_eval_plugin.top" in circle


def test_a_dispatch_table_is_an_edge():
    sources = _pkg(lmms_eval_plugin__cli='import importlib\nTABLE = {"x": "lmms_eval_plugin.sub"}\n'
                                         "def main(c):\n    return importlib.import_module(TABLE[c])\n",
                   lmms_eval_plugin__sub="def main():\n    from lmms_eval_plugin.cli import TABLE\n")
    assert len(import_circles(sources)) == 1


def test_a_chain_is_no_circle():
    sources = _pkg(lmms_eval_plugin__a="import lmms_eval_plugin.b\n", lmms_eval_plugin__b="from lmms_eval_plugin import c\n",
                   lmms_eval_plugin__c="import os\n")
    assert import_circles(sources) == []
