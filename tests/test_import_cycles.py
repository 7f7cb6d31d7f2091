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
    graph = import_graph(PACKAGE)
    assert cycles(graph) == []


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


# The floors of README's "Layout" (docs/contributing.md): a module imports from its own floor or below.
FLOORS = {
    "mamba_edu._backend": 0, "mamba_edu._lazy": 0, "mamba_edu._precision": 0, "mamba_edu.data": 0,
    "mamba_edu.lti": 1, "mamba_edu.discretization": 1, "mamba_edu.convolution": 1, "mamba_edu.diagonal": 1,
    "mamba_edu.scans": 1,
    "mamba_edu.selective_toy": 2, "mamba_edu.mamba": 2, "mamba_edu.experiments": 2,
    "mamba_edu.plot": 3, "mamba_edu.exercises": 3,
    "mamba_edu.widgets": 4,
    "mamba_edu.bench": 5, "mamba_edu.course": 5, "mamba_edu.cli": 5,
}


def floor(module):
    """The floor of a module: its longest listed prefix (the package ``mamba_edu`` itself: None, it is lazy)."""
    keys = [k for k in FLOORS if module == k or module.startswith(k + ".")]
    return FLOORS[max(keys, key=len)] if keys else None


def test_every_module_has_a_floor_and_imports_only_downstairs():
    graph = import_graph(PACKAGE)
    assert [m for m in graph if m != "mamba_edu" and floor(m) is None] == []
    upward = sorted((m, t) for m, targets in graph.items() for t in targets
                    if floor(m) is not None and floor(t) is not None and floor(t) > floor(m))
    assert upward == [], "imports from a higher floor"
