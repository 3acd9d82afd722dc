"""Golden DOT files: a handful of views of a tiny trace, compared byte for byte. No Graphviz needed.

The DOT text is the whole output of select -> fold -> draw, so any change to
what a picture says or how it is styled shows up here as a diff to review.

After an intended change, regenerate them and review the diff before committing:

    UPDATE_GOLDEN=1 python -m pytest tests/test_export_golden.py
    git diff tests/golden/
"""

import os
from pathlib import Path

import pytest

from graphviz_export import build_view
from tests.export_helpers import hostile_trace, tiny_trace

GOLDEN = Path(__file__).resolve().parent / 'golden'

VIEWS = {
    'token2': lambda: build_view(tiny_trace(), token=2),
    'token1_block': lambda: build_view(tiny_trace(), token=1, level='block'),
    'layer0': lambda: build_view(tiny_trace(), layer=0),
    'head1_token2_expand': lambda: build_view(tiny_trace(), head=1, token=2, expand=['attn_weights']),
    'param_cell_edge_grads': lambda: build_view(tiny_trace(), param='layer0.attn_wq[1][2]', depth=2,
                                                edge_grads=True),
    'matrix_wk': lambda: build_view(tiny_trace(), param='layer0.attn_wk'),
    'node_loss_highlight': lambda: build_view(tiny_trace(), node='loss', depth=2,
                                              highlight={tiny_trace().meta['loss_id']: 'checked <ok>'},
                                              notes=['a note & a "quote"']),
    'hostile_token3': lambda: build_view(hostile_trace(), token=3),
}


@pytest.mark.parametrize('name', sorted(VIEWS))
def test_golden_dot(name):
    source = VIEWS[name]().source
    path = GOLDEN / f'{name}.dot'
    if os.environ.get('UPDATE_GOLDEN'):
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(source.encode('utf-8'))
    assert path.exists(), f'{path} is missing: run UPDATE_GOLDEN=1 python -m pytest {__file__}'
    expected = path.read_bytes().decode('utf-8')
    assert source == expected, f'{name}: the DOT text changed; if intended, regenerate (see the module docstring)'
