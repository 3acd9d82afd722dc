"""graphviz_export.draw and the View API: read the rendered SVG back and compare it with the trace."""

import json
import math
import os
import re

import pytest

from graphviz_export import ViewLayoutTimeout, build_view, render_view
from graphviz_export import render as render_mod
from graphviz_export.draw.style import LEGEND
from microgpt.recording import OP_CODE
from microgpt.recording.trace import Trace
from tests.export_helpers import svg_of, tiny_trace
from tests.svg_read import read_svg

SCALAR_VIEWS = [{'param': 'layer0.attn_wq[3][5]'}, {'node': 'loss', 'depth': 3}, {'head': 1, 'token': 0},
                {'token': 11, 'expand': ['head2/attn_weights']}, {'param': 'wte[17][4]', 'depth': 2}]


def in_legend_interval(text, g):
    """Does grad g belong to the legend entry `text` (e.g. 'grad -1e-2 .. -1e-4')?"""
    fixed = {'grad >= 1': g >= 1, 'grad <= -1': g <= -1, 'grad = 0': g == 0,
             '|grad| < 1e-6': 0 < abs(g) < 1e-6, 'grad NaN or inf': not math.isfinite(g)}
    if text in fixed:
        return fixed[text]
    lo, hi = map(float, re.fullmatch(r'grad (\S+) \.\. (\S+)', text).groups())
    return lo <= g < hi if lo > 0 else lo < g <= hi


ORANGE = ('#fee0b6', '#fdb863', '#e08214', '#b35806')     # |x| in [1e-6, 1e-4), [1e-4, 1e-2), [1e-2, 1), >= 1
PURPLE = ('#d8daeb', '#b2abd2', '#8073ac', '#542788')
GREY = ('#e8e8e8', '#cccccc', '#999999', '#666666')


def expected_fill(a, ramp):
    """The legend's colour bar, written out: white 0, near-white below 1e-6, then four steps."""
    if a == 0:
        return '#ffffff'
    if a < 1e-6:
        return '#f7f7f7'
    return ramp[3 if a >= 1 else 2 if a >= 1e-2 else 1 if a >= 1e-4 else 0]


def assert_fill_matches_legend(svg, item, g, gmin=None, gmax=None):
    """A scalar's fill is the legend's colour for its grad; a summary's (g = its grad norm) is
    that magnitude, orange/purple only when all its grads agree in sign, grey when mixed."""
    fill = item['fills'][0]
    if gmin is None:
        ramp = ORANGE if g > 0 else PURPLE
    else:
        ramp = ORANGE if gmin >= 0 else PURPLE if gmax <= 0 else GREY
    assert fill == expected_fill(abs(g), ramp), (fill, g, gmin, gmax)


@pytest.mark.parametrize('q', SCALAR_VIEWS)
def test_every_scalar_node_shows_the_traces_data_and_grad(recorded_christopher, q):
    t = recorded_christopher
    view = build_view(t, **q)
    svg = read_svg(svg_of(view))
    scalars = [n for n in view.folded.nodes if n.kind == 'scalar']
    assert scalars
    for n in scalars:
        i = n.ids[0]
        item = svg['nodes'][f'n{i}']
        assert f'data {t.data[i]:.4g}' in item['texts'] and f'grad {t.grad[i]:.4g}' in item['texts']
        tip = item['tooltip']
        assert f'data {t.data[i]!r}' in tip and f'grad {t.grad[i]!r}' in tip    # every digit
        assert f'(node {i})' in tip and f'scope {t.scope_path(i)}' in tip
        assert_fill_matches_legend(svg, item, t.grad[i])
        if n.side != 'interior':
            assert item['dashed']


def recomputed_values(t, n):
    """A summary node's values, by the definition in the picture's tooltip: its members used by a
    node outside it or by nothing (constants aside); a boundary node's members all."""
    if n.side != 'interior':
        return list(n.ids)
    inside = set(n.ids)
    vals = [i for i in n.ids if t.op[i] != OP_CODE['const']
            and (not t.parents(i) or any(p not in inside for p in t.parents(i)))]
    return vals or list(n.ids)


@pytest.mark.parametrize('q', [{'token': 11}, {'layer': 0}, {'head': 3}, {'param': 'wpe'}])
def test_summary_figures_equal_those_recomputed_from_the_trace(recorded_christopher, q):
    t = recorded_christopher
    view = build_view(t, **q)
    svg = read_svg(svg_of(view))
    groups = [n for n in view.folded.nodes if n.kind == 'group']
    assert len(groups) > 5
    for n in groups:
        vals = recomputed_values(t, n)
        ds, gs = [t.data[i] for i in vals], [t.grad[i] for i in vals]
        texts = svg['nodes'][n.name]['texts']
        assert f'data {min(ds):.4g} \u2026 {max(ds):.4g}' in texts, n.name
        word = 'grad'
        if n.side != 'interior' and n.scope.block == 'params':      # this view's share of the grad
            word = 'grad here'
            inside = set(view.selection.nodes)
            gs = []
            for i in vals:
                parts = [c for p, _, c in t.uses(i) if p in inside]
                if parts:
                    gs.append(math.fsum(parts))
        norm = math.sqrt(math.fsum(g * g for g in gs))
        assert f'{word} {min(gs):.4g} \u2026 {max(gs):.4g}' in texts, n.name
        assert f'\u2016{word}\u2016 {norm:.4g}' in texts, n.name
        if n.side == 'interior':
            assert f"{len(vals)} value{'s' if len(vals) > 1 else ''} \u00b7 {len(n.ids)} ops" in texts
        tip = svg['nodes'][n.name]['tooltip']
        assert f'data {min(ds)!r} .. {max(ds)!r}' in tip and f'L2 norm {norm!r}' in tip
        assert_fill_matches_legend(svg, svg['nodes'][n.name], norm, min(gs), max(gs))


def test_matrix_heat_map_cells_are_the_trace_values(recorded_christopher):
    t = recorded_christopher
    name = 'layer0.attn_wq'
    rows, cols = t.param_shapes[name]
    base = t.param_base[name]
    view = build_view(t, param=name)
    svg = read_svg(svg_of(view))
    for part, column in (('d', t.data), ('g', t.grad)):
        values = [column[base + k] for k in range(rows * cols)]
        top = max(abs(x) for x in values)
        for r in range(rows):
            item = svg['nodes'][f'm{base}_{part}{r}']
            stripes = [f for f in item['fills'] if f not in ('none', None)]
            assert len(stripes) == cols
            row = values[r * cols:(r + 1) * cols]
            # sign: orange for positive, purple for negative; the largest |x| gets the darkest
            for x, fill in zip(row, stripes):
                assert fill in (('#fee0b6', '#fdb863', '#e08214', '#b35806') if x > 0 else
                                ('#d8daeb', '#b2abd2', '#8073ac', '#542788'))
                share = abs(x) / top
                k = 3 if share >= 1 / 4 else 2 if share >= 1 / 16 else 1 if share >= 1 / 64 else 0
                assert fill[1:] == (('fee0b6', 'fdb863', 'e08214', 'b35806') if x > 0 else
                                    ('d8daeb', 'b2abd2', '8073ac', '542788'))[k]
            assert all(f'[{r}][{k}] {x!r}' in item['tooltip'] for k, x in enumerate(row))
    # rows top to bottom in matrix order
    assert [n for n in re.findall(rf'\t+(m{base}_d\d+) \[', view.source)] == [f'm{base}_d{r}' for r in range(rows)]


def test_param_cell_picture_shows_how_its_grad_was_assembled(recorded_christopher):
    t = recorded_christopher
    view = build_view(t, param='layer0.attn_wq[3][5]')
    svg = read_svg(svg_of(view))
    (cell,) = view.selection.focus
    item = svg['nodes'][f'n{cell}']
    assert item['texts'][:3] == ['layer0.attn_wq[3][5]', f'data {t.data[cell]:.4g}', f'grad {t.grad[cell]:.4g}']
    assert '= \u03a3 of 12 contributions' in item['texts']
    total = 0
    for k, (p, _local, contrib) in enumerate(t.uses(cell), 1):
        edge = svg['edges'][f'n{cell}->n{p}']
        assert edge['texts'] == [f'#{k}  {contrib:.4g}']
        shown = float(re.search(r'contribution to grad of \S+ = (\S+)', edge['tooltip'])[1])
        assert shown == contrib
        total += shown
    assert total == t.grad[cell]


def test_edge_grads_label_local_derivative_and_contribution(recorded_christopher):
    t = recorded_christopher
    view = build_view(t, node=50000, depth=1, edge_grads=True)
    svg = read_svg(svg_of(view))
    for c, local, contrib in zip(t.children(50000), t.local_grads(50000), t.contributions(50000)):
        edge = svg['edges'][f'n{c}->n50000']
        assert edge['texts'] == [f'local {local:.4g}', f'contrib {contrib:.4g}']


def test_highlight_and_notes(recorded_christopher):
    t = recorded_christopher
    q_node = t.nodes(pos=11, layer=0, role='q')[7]           # folded into the q node
    loss = t.meta['position_loss_ids'][11]
    view = build_view(t, token=11, expand=['pos11/loss/loss'],
                      highlight={q_node: 'grad <mismatch> & "worse"', loss: 'nan', 5: 'elsewhere'},
                      notes=['layer0/mlp/relu: 3 of 64 units dead'])
    svg = read_svg(svg_of(view))
    (qn,) = [n for n in view.folded.nodes if q_node in n.ids]
    for name, why in ((qn.name, f'node {q_node}: grad <mismatch> & "worse"'), (f'n{loss}', f'node {loss}: nan')):
        item = svg['nodes'][name]
        assert item['strokes'][0] == '#e41a1c' and item['widths'][0] == '3'
        assert item['tooltip'].startswith(f'HIGHLIGHT: {why}')
    notes = svg['nodes']['notes']['texts']
    assert notes == ['layer0/mlp/relu: 3 of 64 units dead', 'highlighted node 5 is not in this view: elsewhere']
    assert any('red = wrong grad' in line for line in svg['nodes']['legend_text']['texts'])


def test_legend_title_and_clusters_are_in_the_picture(recorded_christopher):
    t = recorded_christopher
    view = build_view(t, token=3)
    svg = read_svg(svg_of(view))
    assert 'legend_bar' in svg['nodes'] and len(LEGEND) == 11
    legend = svg['nodes']['legend_text']['texts']
    assert legend[0].startswith('colour = grad: purple < 0 < orange')
    text = ' '.join(legend)
    for words in ('grey = mixed', 'dashed = outside the view', 'arrows: forward', 'blue = residual'):
        assert words in text
    assert max(map(len, legend)) <= 64      # a narrow legend: short lines
    assert svg['title'][0] == "token 3 of 'christopher': 'r' -> 'i'"
    assert svg['title'][1].startswith(f"level vector (auto) \u00b7 {view.stats['nodes']} nodes, ")
    labels = {c['texts'][0] for c in svg['clusters'].values() if c['texts']}
    assert {"position 3: 'r' -> 'i'", 'layer 0', 'attn', 'mlp'} <= labels
    # heads are named on their nodes (no head clusters: they would defeat the head order)
    titles = [n['texts'][0] for n in svg['nodes'].values() if n['texts']]
    assert [t for t in titles if t.startswith('head ') and 'logits =' in t] == [
        f'head {h}: logits = q\u00b7k / \u221ad' for h in range(4)]


def test_same_input_same_bytes_and_a_json_trace_draws_the_same():
    t = tiny_trace()
    a, b = build_view(t, token=2), build_view(t, token=2)
    assert a.source == b.source
    assert svg_of(a) == svg_of(b)
    again = Trace.from_json(t.to_json())
    for q in ({'token': 1}, {'param': 'layer0.attn_wq[1][2]'}, {'param': 'wte'}):
        assert build_view(again, **q).source == build_view(t, **q).source
    assert not re.search(r'0x[0-9a-f]{6,}', a.source)       # no id() in names


def test_json_of_the_view(recorded_christopher):
    t = recorded_christopher
    view = build_view(t, param='layer0.attn_wq[3][5]')
    d = json.loads(view.to_json())
    assert d['kind'] == 'param' and d['stats'] == view.stats and d['query']['param'] == 'layer0.attn_wq[3][5]'
    for n in d['nodes']:
        if n['kind'] == 'scalar':
            assert (n['data'], n['grad']) == (t.data[n['id']], t.grad[n['id']])
    total = 0
    for u in d['uses']:
        total += u['contrib']
    assert total == d['grad'] == t.grad[view.selection.focus[0]]
    d = json.loads(build_view(t, token=11).to_json())
    (q,) = [n for n in d['nodes'] if n['kind'] == 'group' and n['scope'][4] == 'q' and n['side'] == 'interior']
    assert q['values'] == 16 and q['ops'] == {'const': 16, 'add': 256, 'mul': 256}
    assert sum(b - a + 1 for a, b in q['ids']) == 528


def test_render_view_writes_the_file_and_the_default_view_renders_on_wasm(recorded_christopher, tmp_path):
    view = build_view(recorded_christopher)
    out = tmp_path / 'v.svg'
    assert render_view(view, 'svg', path=out, renderer='wasm') == out     # the file's name, not its bytes
    data = out.read_bytes()
    assert render_view(view, 'svg', renderer='wasm') == data
    svg = read_svg(data)
    assert svg['title'][0].startswith("token 11 of 'christopher'")
    assert len([n for n in svg['nodes'] if not n.startswith('legend')]) == view.stats['nodes']
    assert render_view(view, 'dot') == view.source.encode()
    assert read_svg(view._repr_svg_().encode())['title'] == svg['title']      # Jupyter, any renderer
    assert json.loads(render_view(view, 'json'))['kind'] == 'token'


def test_a_layout_timeout_says_so_and_saves_the_dot_source(monkeypatch, tmp_path):
    view = build_view(tiny_trace(), token=1)

    def slow(*args, **kwargs):
        raise render_mod.LayoutTimeout('Graphviz layout exceeded 0.5 seconds')
    monkeypatch.setattr(render_mod, 'render', slow)
    with pytest.raises(ViewLayoutTimeout) as e:
        render_view(view, 'svg', path=tmp_path / 'view.svg', timeout=0.5)
    (dot,) = tmp_path.glob('view-*.dot')          # a fresh name: never an existing view.dot
    assert e.value.dot_path == str(dot) and dot.read_text() == view.source
    assert str(e.value).startswith(f"Graphviz layout of this token view ({view.stats['nodes']} nodes")
    assert str(e.value).endswith(f'did not finish in 0.5 s; DOT source saved to {dot}; try a smaller view '
                                 '(e.g. --level block or a smaller --budget)')  # the hint once, as options
    assert not (tmp_path / 'view.svg').exists()
    with pytest.raises(ViewLayoutTimeout) as e:
        render_view(view, 'svg', timeout=0.5)
    assert os.path.dirname(e.value.dot_path) and open(e.value.dot_path).read() == view.source
    os.unlink(e.value.dot_path)
