"""The package's layers, checked on its import graph: the runtime (what
training and inference import) never imports the tooling, each layer
imports only the layers below it, and no import cycle exists.

The graph is read from the source with ``ast``; every import counts, those
inside functions too (a function-level import hides a cycle, it does not
remove it). This is what import-linter's 'layers' and 'independence'
contracts check, without the dependency."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Top to bottom: a layer may import the layers below it, and the names
#: within one layer do not import each other. A name stands for a module
#: and everything under it; 'mmhatnet' for the package's __init__ alone.
LAYERS = [
    # tooling: the logic of the entry points in tools/
    ['mmhatnet.selfcheck'],
    ['mmhatnet.analysis', 'mmhatnet.demo'],
    ['mmhatnet.deployment'],
    ['mmhatnet.config_tools'],
    # runtime: what `import mmhatnet`, training and inference run
    ['mmhatnet.apis', 'mmhatnet'],
    ['mmhatnet.models', 'mmhatnet.datasets'],
    ['mmhatnet.engine'],
]
RUNTIME = LAYERS.index(['mmhatnet.apis', 'mmhatnet'])


def modules(root: str, package: str) -> dict[str, str]:
    """Module name -> source path of every module of ``package`` under
    ``root``."""
    found = {}
    for folder, _, files in os.walk(os.path.join(root, package)):
        rel = os.path.relpath(folder, root).split(os.sep)
        for name in files:
            if name.endswith('.py'):
                stem = name[:-3]
                found['.'.join(rel if stem == '__init__' else
                               [*rel, stem])] = os.path.join(folder, name)
    return found


def import_graph(root: str, package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports: for ``import a.b``
    a.b; for ``from a import b`` the module a.b if there is one, else a
    (b is a name defined there)."""
    known = modules(root, package)
    graph = {}
    for module, path in known.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        here = module.split('.')
        if not path.endswith('__init__.py'):
            here = here[:-1]  # relative imports start from the package
        names = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    parts = here[:len(here) - node.level + 1]
                    base = '.'.join(parts + ([base] if base else []))
                names += [f'{base}.{alias.name}'
                          if f'{base}.{alias.name}' in known else base
                          for alias in node.names]
        graph[module] = set()
        for name in names:
            while name and name not in known:  # a.b.c: c may be a name
                name = name.rpartition('.')[0]
            if name and name != module:
                graph[module].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected components of more than one
    module (Tarjan's algorithm), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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


def subpackage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between the top-level subpackages and modules of the
    package (``mmhatnet.models``, ``mmhatnet.config_tools``, ...): one
    imports another if any of its modules does."""
    def top(module: str) -> str:
        return '.'.join(module.split('.')[:2])

    collapsed = {}
    for module, imported in graph.items():
        collapsed.setdefault(top(module), set()).update(
            top(t) for t in imported if top(t) != top(module))
    return collapsed


def unit_of(module: str, layers: list[list[str]]) -> tuple[int, str] | None:
    """(layer index, name) of the layer name that holds ``module``."""
    best = None
    for i, names in enumerate(layers):
        for name in names:
            if module == name or (name.count('.') and
                                  module.startswith(name + '.')):
                if best is None or len(name) > len(best[1]):
                    best = (i, name)
    return best


def violations(graph: dict[str, set[str]],
               layers: list[list[str]]) -> list[str]:
    """Modules in no layer, and imports that go up a layer or sideways
    within one."""
    found = [f'{m} is in no layer of LAYERS' for m in sorted(graph)
             if unit_of(m, layers) is None]
    for module, imported in sorted(graph.items()):
        source = unit_of(module, layers)
        for target in sorted(imported):
            dest = unit_of(target, layers)
            if source is None or dest is None or source[1] == dest[1]:
                continue
            if dest[0] < source[0]:
                found.append(f'{module} imports {target}: {source[1]} is '
                             f'below {dest[1]}')
            elif dest[0] == source[0]:
                found.append(f'{module} imports {target}: {source[1]} and '
                             f'{dest[1]} are independent')
    return found


def test_layers_are_kept():
    graph = import_graph(ROOT, 'mmhatnet')
    assert not violations(graph, LAYERS), '\n'.join(
        violations(graph, LAYERS))


def test_no_import_cycles():
    """Between modules, and between subpackages (importing a module runs
    its package's __init__ first: models/ importing engine/ while engine/
    imports models/ is a cycle even where no two modules import each
    other)."""
    graph = import_graph(ROOT, 'mmhatnet')
    found = cycles(graph) + cycles(subpackage_graph(graph))
    assert not found, 'import cycles:\n' + '\n'.join(
        ' <-> '.join(c) for c in found)


def test_importing_the_package_loads_the_runtime_only():
    """What a config's ``custom_imports=['mmhatnet']`` runs, in a fresh
    interpreter: the runtime modules and nothing of the tooling."""
    code = ('import sys, mmhatnet; print(" ".join(sorted(m for m in '
            'sys.modules if m.startswith("mmhatnet"))))')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = proc.stdout.split()
    assert 'mmhatnet.models.hatnet' in loaded
    tooling = [m for m in loaded if unit_of(m, LAYERS)[0] < RUNTIME]
    assert not tooling, tooling


def _package(root, files: dict[str, str]) -> str:
    """A package ``pkg`` of ``files`` (path -> source) under ``root``."""
    for name, text in files.items():
        path = root / 'pkg' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def test_a_planted_cycle_and_an_upward_import_are_caught(tmp_path):
    """The check itself, on packages made for it: a cycle through a
    function-level import, a low layer importing a high one, and two
    subpackages importing each other through different modules."""
    root = _package(tmp_path / 'a', {
        '__init__.py': '',
        'low/__init__.py': 'from .a import f\n',
        'low/a.py': 'def f():\n    from . import b\n',
        'low/b.py': 'from .a import f\nfrom ..high import g\n',
        'high.py': 'def g():\n    pass\n',
    })
    graph = import_graph(root, 'pkg')
    assert cycles(graph) == [['pkg.low.a', 'pkg.low.b']]
    assert cycles(subpackage_graph(graph)) == []
    layers = [['pkg.high'], ['pkg.low'], ['pkg']]
    assert violations(graph, layers) == [
        'pkg.low.b imports pkg.high: pkg.low is below pkg.high']

    root = _package(tmp_path / 'b', {
        '__init__.py': '',
        'x/__init__.py': 'from ..y.m import g\n',
        'x/n.py': 'h = 1\n',
        'y/__init__.py': '',
        'y/m.py': 'def g():\n    from ..x.n import h\n',
    })
    graph = import_graph(root, 'pkg')
    assert cycles(graph) == []
    assert cycles(subpackage_graph(graph)) == [['pkg.x', 'pkg.y']]
