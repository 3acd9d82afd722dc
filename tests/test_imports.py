"""The house's imports run one way: cli -> {graphviz_export, microgpt.checks} ->
microgpt.recording -> the port. Read from the source with ast, so a new import
that breaks the rule fails here before it confuses a reader."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ('microgpt', 'graphviz_export', 'microgpt_graph')


def project_modules():
    """{module name: path} of every project module (cli.py, the two packages and the command line's)."""
    mods = {'cli': ROOT / 'cli.py'}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob('*.py')):
            parts = path.relative_to(ROOT).with_suffix('').parts
            name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
            mods[name] = path
    return mods


MODULES = project_modules()


def imports_of(name, path, *, top_level_only=False):
    """Project modules that `name` imports (resolved relative imports included)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == '__init__.py'
    package = name if is_pkg else name.rpartition('.')[0]
    found = set()
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                mod = '.'.join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            targets = [mod] + [f'{mod}.{a.name}' for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def room(name):
    """Which room a module lives in."""
    for prefix in ('microgpt.recording', 'microgpt.checks', 'graphviz_export', 'cli'):
        if name == prefix or name.startswith(prefix + '.'):
            return prefix
    if name == 'microgpt_graph' or name.startswith('microgpt_graph.'):
        return 'cli'        # the commands and their plumbing: the door
    return 'port'


# room -> the rooms it must never import
FORBIDDEN = {
    'port': {'microgpt.recording', 'microgpt.checks', 'graphviz_export', 'cli'},
    'microgpt.recording': {'microgpt.checks', 'graphviz_export', 'cli'},
    'microgpt.checks': {'graphviz_export', 'cli'},
    'graphviz_export': {'microgpt.checks', 'cli'},
    'cli': set(),
}


def test_the_tree_has_the_three_rooms():
    rooms = {room(n) for n in MODULES}
    assert rooms == {'port', 'microgpt.recording', 'microgpt.checks', 'graphviz_export', 'cli'}
    assert {'microgpt.engine', 'microgpt.model', 'microgpt.tags', 'microgpt.recording.trace',
            'microgpt.checks.nodes', 'graphviz_export.render.wasm'} <= set(MODULES)


@pytest.mark.parametrize('name', sorted(MODULES))
def test_imports_run_one_way(name):
    bad = sorted(t for t in GRAPH[name] if room(t) in FORBIDDEN[room(name)])
    assert not bad, f"{name} ({room(name)}) must not import {bad}"


def test_no_import_cycles():
    state, cycles = {}, []

    def visit(u, path):
        state[u] = 'open'
        for v in sorted(GRAPH[u]):
            if state.get(v) == 'open':
                cycles.append(path[path.index(v):] + [v])
            elif v not in state:
                visit(v, path + [v])
        state[u] = 'done'

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, 'import cycles: ' + '; '.join(' -> '.join(c) for c in cycles)


@pytest.mark.parametrize('name', sorted(MODULES))
def test_project_imports_are_at_top_level(name):
    """No import of the project's own modules inside a function (the old way of
    dodging a cycle); third-party imports may be lazy (no work at import time)."""
    inner = imports_of(name, MODULES[name]) - imports_of(name, MODULES[name], top_level_only=True)
    assert not inner, f"{name} imports {sorted(inner)} inside a function"


def test_the_checker_sees_a_forbidden_import(tmp_path):
    """The rule is not vacuous: a port module importing the recorder is caught."""
    fake = tmp_path / 'model.py'
    fake.write_text('from .recording import record\nfrom . import engine\n')
    found = imports_of('microgpt.model', fake)
    assert found == {'microgpt', 'microgpt.recording', 'microgpt.engine'}
    assert any(room(t) in FORBIDDEN['port'] for t in found)
