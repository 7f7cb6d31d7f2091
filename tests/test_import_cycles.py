"""No import cycles inside mamba_edu, counting lazy imports too.

Every edge counts: module-level imports, imports inside functions, and module names given as strings (the lazy
tables of ``mamba_edu`` and ``mamba_edu.widgets``, ``import_module("...")``). Importing ``a.b.c`` also runs the
``__init__`` of ``a`` and ``a.b``, so a module depends on its ancestor packages; a package's ``__init__`` may
name its own submodules (the usual layout, and how the lazy public API works) without that counting as a cycle.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mamba_edu"


def module_names(root):
    """{dotted name: path} of every module under ``root`` (a package folder)."""
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _ancestors(name):
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(root):
    """{module: set of modules it imports (directly, lazily, or as an ancestor package)}."""
    modules = module_names(root)
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module if node.level == 0 else ".".join(name.split(".")[: -node.level or None])
                targets.add(base)
                targets |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import submodule`
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                targets.add(node.value)  # import_module("mamba_edu.x"), lazy tables
        edges = set()
        for target in targets:
            if target not in modules:
                continue
            edges |= {target} | _ancestors(target)
        edges -= {name}
        if is_package:  # a package's __init__ naming its own submodules is the normal layout
            edges = {e for e in edges if not e.startswith(name + ".")}
        edges |= _ancestors(name)  # importing this module first runs its packages' __init__
        graph[name] = edges
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan), as sorted lists."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_lazy_imports_included():
    assert cycles(import_graph(PACKAGE)) == []


def test_the_checker_finds_a_lazy_cycle(tmp_path):
    """A loop through a function-level import and a lazy table (the old widgets <-> experiments loop)."""
    pkg = tmp_path / "mamba_edu"
    (pkg / "widgets").mkdir(parents=True)
    (pkg / "experiments").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "widgets" / "__init__.py").write_text('_EXPLORERS = {"x": "mamba_edu.experiments.explorer"}\n')
    (pkg / "widgets" / "base.py").write_text("")
    (pkg / "experiments" / "__init__.py").write_text("")
    (pkg / "experiments" / "explorer.py").write_text("def f():\n    from mamba_edu.widgets.base import g\n")
    expected = ["mamba_edu.experiments.explorer", "mamba_edu.widgets", "mamba_edu.widgets.base"]
    assert cycles(import_graph(pkg)) == [expected]
