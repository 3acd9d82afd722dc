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


# The exporter reads a Trace: of the port it may use only these helpers (never the model,
# training, optimizer, checkpoints or data: what it needs of them is in microgpt.recording)
EXPORTER_MAY_USE = {'microgpt', 'microgpt.errors', 'microgpt.files', 'microgpt.cache'}


def port_imports(name, graph=GRAPH):
    """The port modules a module imports that the exporter may not."""
    return sorted(t for t in graph[name] if room(t) == 'port' and t not in EXPORTER_MAY_USE)


@pytest.mark.parametrize('name', sorted(n for n in MODULES if room(n) == 'graphviz_export'))
def test_the_exporter_never_imports_the_port(name):
    bad = port_imports(name)
    assert not bad, f"{name} must not import {bad}; put what it needs in microgpt.recording (e.g. session.py)"


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


# Imports inside a function that are not a dodged cycle (issue 25: `render` must not load the
# explorer, tour, notebook and download stacks): a command imports what only it uses when it runs
# (the command line's room: no other room imports it, so no cycle can hide there); a package's
# PEP 562 __getattr__ loads its notebook names on first use; the names data imports the network
# stack only to download.
LAZY = {'graphviz_export': {'graphviz_export.web', 'graphviz_export.web.notebook'},
        'microgpt.data': {'microgpt.download'}}


def lazy_allowed(name):
    return room(name) == 'cli'


@pytest.mark.parametrize('name', sorted(MODULES))
def test_project_imports_are_at_top_level(name):
    """No import of the project's own modules inside a function (the old way of
    dodging a cycle); third-party imports may be lazy (no work at import time)."""
    inner = imports_of(name, MODULES[name]) - imports_of(name, MODULES[name], top_level_only=True)
    if lazy_allowed(name):
        return
    inner -= LAZY.get(name, set())
    assert not inner, f"{name} imports {sorted(inner)} inside a function"


def test_the_exporter_rule_is_not_vacuous(tmp_path):
    """An exporter module importing the model, the training loop, the optimizer, the
    checkpoints or the data is caught, however it imports them; its allowed helpers are not."""
    fake = tmp_path / 'update.py'
    fake.write_text('from microgpt.optim import AdamConfig\nimport microgpt.model\nfrom microgpt import train\n'
                    'from ...files import x\nfrom microgpt.checkpoint import read_checkpoint as r\n'
                    'from microgpt.data import read_docs\nfrom microgpt.errors import InputError\n'
                    'from microgpt.recording.session import train_and_record\n')
    graph = {'graphviz_export.steps.update': imports_of('graphviz_export.steps.update', fake)}
    assert port_imports('graphviz_export.steps.update', graph) == [
        'microgpt.checkpoint', 'microgpt.data', 'microgpt.model', 'microgpt.optim', 'microgpt.train']
    assert all(room(m) == 'port' for m in ('microgpt.model', 'microgpt.train', 'microgpt.optim',
                                          'microgpt.checkpoint', 'microgpt.data'))
    assert 'graphviz_export.web.explorer.recordings' in MODULES and 'graphviz_export.steps.update' in MODULES


def test_the_checker_sees_a_forbidden_import(tmp_path):
    """The rule is not vacuous: a port module importing the recorder is caught."""
    fake = tmp_path / 'model.py'
    fake.write_text('from .recording import record\nfrom . import engine\n')
    found = imports_of('microgpt.model', fake)
    assert found == {'microgpt', 'microgpt.recording', 'microgpt.engine'}
    assert any(room(t) in FORBIDDEN['port'] for t in found)


def test_the_readme_layout_names_every_module():
    """README's Layout lists every module of the tree (a file by its name, a package by its folder),
    so a new room cannot go unmentioned."""
    readme = (ROOT / 'README.md').read_text()
    layout = readme.split('## Layout', 1)[1].split('```', 2)[1]
    missing = []
    for name, path in MODULES.items():
        if name == 'cli':
            continue
        shown = f'{path.parent.name}/' if path.name == '__init__.py' else path.name
        if shown not in layout:
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"README Layout leaves out {missing}"
