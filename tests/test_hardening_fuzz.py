"""Hypothesis fuzz of the command line and of the files it reads: checkpoints
(mutated field by field) and traces, whose fuzz lives in test_hardening_codecs.py
(both codecs, the same corrupt traces). Whatever the input:

- no traceback (CliRunner sees no exception but SystemExit),
- the exit status is 0, 1 or 2,
- files that existed are untouched when the exit status is not 0 (but for
  gradcheck's verdict FAIL, which writes its --render picture on purpose),
- every SVG written parses as XML.

A tiny model (n_embd 8, block 8) and two-letter documents keep each call to
tens of milliseconds; the two fuzzers together run in about ten seconds.
"""

import json
import os
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cli
from microgpt.checkpoint import save_checkpoint
from microgpt.recording import record_step
from tests.hostile_cases import HOSTILE_TEXT
from tests.tiny_model import tiny_model

FACTOR = int(os.environ.get('FUZZ_FACTOR', '1'))  # FUZZ_FACTOR=10: a longer hunt, by hand
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])

# Values for numeric options: small valid ones so a run stays quick, and hostile ones.
NUMBERS = ['0', '1', '2', '3', '-1', '0.5', '1e-3', 'nan', 'inf', '-inf', '1e26', '10' * 30, '', 'x', '²']

OPTIONS = {
    'render': {'--doc': ['ab', 'ba', 'zz', ''] + HOSTILE_TEXT[:8], '--token': NUMBERS, '--layer': NUMBERS,
               '--head': NUMBERS, '--param': HOSTILE_TEXT, '--node': ['loss', '3', '0', '99999'] + NUMBERS,
               '--depth': NUMBERS, '--level': ['vector', 'block', 'auto', 'x'],  # scalar layouts take seconds
               '--budget': NUMBERS, '--edge-budget': NUMBERS, '--expand': HOSTILE_TEXT,
               '--format': ['svg', 'dot', 'json', 'png', 'x'], '--timeout': NUMBERS,
               '--direction': ['both', 'ancestors', 'x'], '--max-nodes': ['0', '10', '100000', 'x']},
    'inspect': {'--doc': ['ab', 'ba', 'zz'] + HOSTILE_TEXT[:8], '--max-nodes': ['10', '100000', '-1']},
    'export': {'--doc': ['ab', 'ba', ''] + HOSTILE_TEXT[:8]},
    'gradcheck': {'--doc': ['ab', 'zz'], '--param': HOSTILE_TEXT, '--sample': ['1', '2', '0', 'nan', '-1'],
                  '--eps': NUMBERS, '--rtol': NUMBERS, '--atol': NUMBERS, '--scope': HOSTILE_TEXT,
                  '--inject': ['exp-x2', 'nope']},
    'sample': {'-n': ['1', '2', '0', '-1', 'nan', '1e9' * 3], '--temperature': NUMBERS, '--seed': NUMBERS},
    'train': {'--steps': ['1', '2', '0', '-1', '1e26', '10' * 30, 'nan'], '--n-embd': ['8', '0', '7', 'nan'],
              '--n-head': ['2', '3', '0'], '--block-size': ['4', '8', '0'], '--log-every': ['0', '1', '-1'],
              '--samples': ['0', '1', '-1'], '--temperature': NUMBERS, '--max-nodes': ['10', '0', '5000000']},
}
OUTPUT_OPTION = {'render': '-o', 'export': '-o', 'gradcheck': '--render', 'train': '--out'}


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """A folder with a tiny checkpoint, docs, a trace, a FIFO, a folder, a symlink
    and a bystander file (the existing outputs the fuzzer may aim at)."""
    root = tmp_path_factory.mktemp('fuzz')
    params, config, tok = tiny_model()
    save_checkpoint(root / 'tiny.json', params, config, tok)
    (root / 'docs.txt').write_text('ab\nba\nabba\n')
    (root / 'trace.json').write_text(record_step(params, config, tok, 'ab').to_json())
    for suffix in ('svg', 'json'):
        (root / f'old.{suffix}').write_text('<svg xmlns="http://www.w3.org/2000/svg">old</svg>')
        os.mkfifo(root / f'fifo.{suffix}')
        (root / f'folder.{suffix}').mkdir()
        os.symlink(f'old.{suffix}', root / f'link.{suffix}')
    return root


def snapshot(root):
    """{name: (kind, bytes or None)} of everything in root (symlinks not followed)."""
    out = {}
    for name in sorted(os.listdir(root)):
        p = root / name
        if p.is_symlink():
            out[name] = ('link', os.readlink(p))
        elif p.is_file():
            out[name] = ('file', p.read_bytes())
        else:
            out[name] = ('other', None)
    return out


def check_run(root, args, before):
    r = CliRunner().invoke(cli.main, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), (args, repr(r.exception), r.output)
    assert r.exit_code in (0, 1, 2), (args, r.exit_code, r.output)
    assert 'Traceback' not in r.output
    after = snapshot(root)
    # gradcheck's exit 1 is a verdict (a derivative is wrong), not a failed run: its
    # --render picture of the failure is written on purpose
    verdict = args[0] == 'gradcheck' and r.exit_code == 1 and 'gradcheck: FAIL' in r.output
    if r.exit_code != 0 and not verdict:
        changed = [n for n in before if before[n] != after.get(n)]
        assert not changed, (args, changed, r.output)
        assert not [n for n in after if n.endswith('.tmp')], (args, r.output)
    # an explicit --format wins over the file's name (README; as graphviz's render(format=)): DOT or
    # JSON asked for with `-o new.svg` is written as asked, so only what is written as SVG must parse
    fmt = args[args.index('--format') + 1] if '--format' in args[:-1] else 'svg'
    for name in after:
        if name.endswith('.svg') and after[name][0] == 'file' and (fmt == 'svg' or after[name] == before.get(name)):
            ET.fromstring(after[name][1])       # every SVG written parses as XML
        elif name.endswith('.svg') and after[name][0] == 'file' and fmt == 'dot':
            assert after[name][1].startswith(b'digraph'), (args, after[name][1][:40])
    return r


def restore(root, before):
    """Put back the files of `before` and remove new ones, for the next example."""
    for name in os.listdir(root):
        if name not in before:
            p = root / name
            if p.is_symlink() or p.is_file():
                p.unlink()
    for name, (kind, data) in before.items():
        if kind == 'file' and (root / name).read_bytes() != data:
            (root / name).write_bytes(data)


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    args = [command]
    if command == 'train':
        args.append(draw(st.sampled_from(['docs.txt', 'missing.txt', 'folder.svg', 'fifo-not-here', '/dev/zero'])))
        args += ['--n-embd', '8', '--n-head', '2', '--block-size', '8', '--steps', '1']
    if command in ('render', 'inspect', 'export', 'gradcheck'):
        args += ['--doc', 'ab']                 # short: a drawn --doc later on the line wins
    if command in ('render', 'inspect', 'export', 'gradcheck', 'sample'):
        args += ['--checkpoint', draw(st.sampled_from(['tiny.json'] * 4 + ['docs.txt', 'missing.json', '/dev/zero']))]
    if command in ('render', 'inspect', 'export') and draw(st.booleans()):
        args += ['--trace', draw(st.sampled_from(['trace.json', 'tiny.json', 'docs.txt', 'missing.json']))]
    if command == 'gradcheck' and draw(st.booleans()):
        args.append('--no-params')
    if command == 'gradcheck' and '--no-params' not in args:
        args += ['--sample', '1']
    names = sorted(OPTIONS[command])
    for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
        args += [name, draw(st.sampled_from(OPTIONS[command][name]))]
    if command in OUTPUT_OPTION:
        target = draw(st.sampled_from(['new.svg', 'old.svg', 'link.svg', 'fifo.svg', 'folder.svg',
                                       'missing/x.svg', 'x' * 300 + '.svg', 'y' * 251 + '.svg', '/dev/null', '']))
        if command in ('export', 'train') and target.endswith('.svg'):
            target = target[:-4] + '.json'      # JSON outputs get JSON names: every *.svg must be a picture
        args += [OUTPUT_OPTION[command], target]
    return args


@settings(max_examples=70 * FACTOR, **SETTINGS)
@given(args=command_lines())
@example(args=['render', '--doc', 'ab', '--checkpoint', 'tiny.json', '--budget', '1', '--format', 'dot', '-o', 'new.svg'])
def test_fuzz_command_lines(world, monkeypatch, args):
    monkeypatch.chdir(world)
    before = snapshot(world)
    try:
        check_run(world, args, before)
    finally:
        restore(world, before)


# -- the file formats, mutated field by field ---------------------------------------------------
VALUES = [None, True, 0, -1, 1, 2 ** 31, 10 ** 400, 1.5, -1e308, 1e150, float('nan'), float('inf'), '', '3', 'x',
          '\ud800', '\ufffe', '\x1b[2J', [], [0], ['a'], [None], {}, {'a': 1},
          'pow', 'param', 'exp', 'relu', 'wte', 'loss', 3, [0, 1], [[0, 1, 'attn', 0, 'q']]]


def paths(d, prefix=(), depth=0):
    """Every (path, value) in a JSON value, nodes and matrices sampled so the list stays short."""
    yield prefix, d
    if depth > 5:
        return
    if isinstance(d, dict):
        for k, v in d.items():
            yield from paths(v, prefix + (k,), depth + 1)
    elif isinstance(d, list):
        idx = range(len(d)) if len(d) <= 6 else [0, 1, len(d) // 2, len(d) - 2, len(d) - 1]
        for i in idx:
            yield from paths(d[i], prefix + (i,), depth + 1)


def mutated(d, path, value, delete):
    d = json.loads(json.dumps(d))
    if not path:
        return value
    target = d
    for k in path[:-1]:
        target = target[k]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    elif delete and isinstance(target, list):
        target.pop(path[-1])
    else:
        target[path[-1]] = value
    return d


@pytest.fixture(scope='module')
def ckpt_paths(world):
    d = json.loads((world / 'tiny.json').read_text())
    return d, [p for p, _ in paths(d)]


def fuzz_file(world, monkeypatch, data, commands, name):
    monkeypatch.chdir(world)
    text = json.dumps(data)                      # NaN, Infinity and lone surrogates (as \ud800) included
    (world / name).write_text(text)
    before = snapshot(world)
    try:
        for args in commands:
            check_run(world, args, before)
    finally:
        restore(world, before)
        (world / name).unlink()


@settings(max_examples=60 * FACTOR, **SETTINGS)
@given(data=st.data())
def test_fuzz_checkpoint_files(world, monkeypatch, ckpt_paths, data):
    d, all_paths = ckpt_paths
    path = data.draw(st.sampled_from(all_paths))
    mutant = mutated(d, path, data.draw(st.sampled_from(VALUES)), data.draw(st.booleans()))
    fuzz_file(world, monkeypatch, mutant, [['sample', '--checkpoint', 'c.json', '-n', '2'],
                                          ['render', '--checkpoint', 'c.json', '--doc', 'ab', '-o', 'old.svg']],
              'c.json')
