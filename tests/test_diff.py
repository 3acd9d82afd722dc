"""Before/after: the picture's numbers are the differences of the two traces."""

import html
import json
import xml.etree.ElementTree as ET

import pytest

from graphviz_export.draw.style import fmt
from graphviz_export.steps.diff import DiffError, delta_trace, diff_svg
from microgpt.model import flat_params
from microgpt.optim import Adam
from microgpt.recording import record_step
from tests.tiny_model import tiny_model

SVG = '{http://www.w3.org/2000/svg}'


@pytest.fixture(scope='module')
def pair():
    params, config, tok = tiny_model()
    before = record_step(params, config, tok, 'emma')
    opt = Adam(flat_params(params))
    for step in range(3):
        record_step(params, config, tok, 'emma')
        opt.step(step, 1000)
    after = record_step(params, config, tok, 'emma')
    return before, after


def test_delta_columns_are_differences(pair):
    before, after = pair
    d = delta_trace(before, after)
    for i in range(0, len(after), 97):
        assert d.data[i] == after.data[i] - before.data[i]
        assert d.grad[i] == after.grad[i] - before.grad[i]
    for k in range(0, len(after.child), 101):
        assert d.contrib[k] == after.contrib[k] - before.contrib[k]
    assert d.meta['diff']['loss_delta'] == after.loss - before.loss < 0     # training lowered the loss


def test_view_json_and_svg_show_the_differences(pair):
    before, after = pair
    view, svg = diff_svg(before, after, node='loss', depth=3, level='scalar')
    doc = json.loads(view.to_json())
    scalars = [n for n in doc['nodes'] if n['kind'] == 'scalar']
    assert len(scalars) > 5
    for n in scalars:
        i = n['id']
        assert n['data'] == after.data[i] - before.data[i]
        assert n['grad'] == after.grad[i] - before.grad[i]
    text = html.unescape(svg)
    assert '\u0394data' in text and '\u0394grad' in text
    assert f"loss before {before.loss:.6f} \u2192 after {after.loss:.6f}" in text
    # every scalar node (found by the id draw gave it) says Δdata and Δgrad in its record,
    # and its tooltip gives its differences with every digit
    groups = {g.get('id'): g for g in ET.fromstring(svg).iter(f'{SVG}g')}
    for n in scalars:
        i = n['id']
        g = groups[f'node-n{i}']
        fields = [t.text for t in g.iter(f'{SVG}text')]
        assert f'\u0394data {fmt(after.data[i] - before.data[i])}' in fields
        assert f'\u0394grad {fmt(after.grad[i] - before.grad[i])}' in fields
        tip = g.find(f'.//{SVG}a').get('{http://www.w3.org/1999/xlink}title')
        assert f'data {after.data[i] - before.data[i]!r}' in tip
        assert f'grad {after.grad[i] - before.grad[i]!r}' in tip


def test_parameter_heatmap_is_delta_theta(pair):
    before, after = pair
    _view, svg = diff_svg(before, after, param='wte')
    text = html.unescape(svg)
    base = after.param_base['wte']
    cols = after.param_shapes['wte'][1]
    for r in (0, 5):
        row = [after.data[base + r * cols + c] - before.data[base + r * cols + c] for c in range(cols)]
        assert f'[{r}][3] {row[3]!r}' in text
    assert 'left: \u0394data' in text


def test_different_documents_are_refused(pair):
    before, _ = pair
    params, config, tok = tiny_model()
    other = record_step(params, config, tok, 'anna')
    with pytest.raises(DiffError, match="different documents \\('emma' and 'anna'\\)"):
        delta_trace(before, other)
