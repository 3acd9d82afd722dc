"""One name per node: the picture, the explorer's panel, its view answer, search, crumbs, the
frames and the view JSON all say Trace.name(i) for every scalar of a view, and the names mean
what they say (q[i]@posP is the dot product of row i of Wq at position P).

Each surface is read where a user meets it: the SVG's texts (the explorer's and render's
picture), Api.node (the side panel), Api.view (clicks and crumbs), Api.frames (the
step-through), Api.search / Api.suggest, and view_dict (render --format json).
"""

import functools
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from graphviz_export import build_view
from graphviz_export.view import view_dict
from graphviz_export.web.explorer import state as st
from graphviz_export.web.explorer.api import Api
from graphviz_export.web.explorer.recordings import Recordings
from microgpt.recording.script import record_script
from tests.export_helpers import tiny_trace
from tests.svg_read import read_svg, scalar_name

SCRIPT = Path(__file__).resolve().parent / 'scripts' / 'micrograd_style.py'
FALLBACK = re.compile(r'\w+ #\d+')      # 'mul #4711': a node of no known role
SHARED = ('\u2192', 'const ')           # ops toward a value and constants share their names by design

# (what the view is, the explorer's query for it); every view holds scalars
PORT_VIEWS = [
    ('token view, an expanded head', 'view=token&token=2&level=block&expand=pos2/layer0/attn/head1/*'),
    ('head view at scalar level', 'view=head&layer=0&head=1&token=2&level=scalar'),
    ('parameter cell, a token-indexed row', 'view=param&param=wte[1][0]&depth=2&level=auto'),
    ('parameter cell of a layer', 'view=param&param=layer0.attn_wq[1][2]&depth=2&level=auto'),
    ('node neighbourhood', 'view=node&node=loss&depth=3&level=auto'),
    ('document view, its loss opened', 'view=doc&level=vector&expand=loss/loss'),
]


@functools.cache
def script_trace():
    return record_script(SCRIPT)


@functools.cache
def api_of(which):
    return Api(Recordings(trace=tiny_trace() if which == 'port' else script_trace()))


def scalars(api, query):
    """{drawn name: node id} of the view's scalars, and the explorer's answer for the view."""
    v = api.view(query)
    got = {name: d['id'] for name, d in v['nodes'].items() if d['k'] == 's'}
    assert got, f'{query}: no scalar drawn'
    return got, v


def surfaces_agree(api, trace, query):
    """Every surface names every scalar of the view `trace.name(i)`; returns {id: name}."""
    drawn, v = scalars(api, query)
    picture = read_svg(v['svg'].encode('utf-8'))['nodes']
    frames = api.frames(query)['nodes']
    state = st.parse(query)
    as_json = {d['id']: d['label'] for d in view_dict(build_view(trace, **st.build_kwargs(state)))['nodes']
               if d['kind'] == 'scalar'}
    assert set(as_json) == set(drawn.values())          # render --format json: the same view
    out = {}
    for name, i in drawn.items():
        n = trace.name(i)
        out[i] = n
        assert scalar_name(picture[name]) == n, (query, name)                  # the picture
        assert v['nodes'][name]['label'] == n                                  # what a click knows
        panel = api.node(f'{query}&id={i}')
        assert (panel['id'], panel['label']) == (i, n)                          # the side panel
        assert [x['label'] for x in panel['inputs']] == [trace.name(c) for c in trace.children(i)]
        assert [u['label'] for u in panel['uses']] == [trace.name(p) for p, _, _ in trace.uses(i)][:len(panel['uses'])]
        assert frames[name]['label'] == n                                       # the step-through
        assert as_json[i] == n                                                  # the view JSON
        row = api.search(f'{query}&q={i}')['matches'][0]
        assert (row['label'], row['count']) == (n, 1)                           # search by id
        crumb = api.view(f'{query}&sel={i}')['crumbs'][-1]
        assert (crumb['level'], crumb['label']) in (('scalar', n), ('node', n))  # the breadcrumb
        hint = api.suggest(f'{query}&q={i}')['suggestions'][0]
        assert (hint['text'], hint['hint'].split(' \u00b7 ')[0]) == (str(i), n)  # a suggestion
    return out


@pytest.mark.parametrize('what,query', PORT_VIEWS, ids=[w for w, _ in PORT_VIEWS])
def test_every_surface_says_the_same_name_for_every_scalar(what, query):
    trace = tiny_trace()
    names = surfaces_agree(api_of('port'), trace, query)
    # the port's nodes all have a role: none falls back to the op and id ('mul #4305')
    assert not [n for n in names.values() if FALLBACK.fullmatch(n)], what
    # each name says where it is: every node of a position carries it
    for i, n in names.items():
        pos = trace.scope_of(i).pos
        if pos is not None and trace.param_cell(i) is None and not n.startswith('const '):
            assert n.endswith(f'@pos{pos}'), n


def test_a_scripts_trace_falls_back_to_the_op_and_its_id():
    """A user's script has no model roles: its ops are named 'tanh #295', its parameters
    by their list and cell, its constants by value, on every surface."""
    trace = script_trace()
    names = surfaces_agree(api_of('script'), trace, 'view=node&node=loss&depth=3&level=auto')
    assert len(names) > 5
    for i, n in names.items():
        op = trace.op_name(i)
        if op == 'const':
            assert n == f'const {trace.data[i]:g}'
        elif op != 'param':
            assert n == f'{op} #{i}'
    loss = trace.meta['loss_id']
    got = api_of('script').search('q=' + quote(names[loss]))
    assert (got['first'], got['matches'][0]['label']) == (loss, names[loss])     # found by its name too


def test_names_mean_what_they_say():
    """Read against the model code, independently of how the namer finds them: the loss and
    the position losses (their ids are in meta), parameter cells by character, q[i] as the dot
    product of Wq's row i, logits['c'] as that of lm_head's row for 'c'."""
    trace = tiny_trace()           # 'ab': positions 0..2, chars a-z, one layer, n_embd 8
    names = trace.names()
    assert trace.name(trace.meta['loss_id']) == 'loss'
    assert [trace.name(i) for i in trace.meta['position_loss_ids']] == ['loss_t@pos0', 'loss_t@pos1', 'loss_t@pos2']
    assert trace.name(trace.param_nodes('wte[1][0]')[0]) == "wte['b'][0]"
    assert trace.name(trace.param_nodes('lm_head[26][3]')[0]) == 'lm_head[BOS][3]'
    assert trace.name(trace.param_nodes('layer0.attn_wq[1][2]')[0]) == 'layer0.attn_wq[1][2]'

    def rows_read(name, matrix):
        (i,) = names.find(name)
        cells = {trace.param_cell(a) for a in trace.ancestors([i], depth=9 + 1)}
        return {(r, c) for m, r, c in filter(None, cells) if m == matrix}
    for row in (0, 2, 7):
        assert rows_read(f'q[{row}]@pos1', 'layer0.attn_wq') == {(row, c) for c in range(8)}
    assert rows_read("logits['c']@pos2", 'lm_head') == {(2, c) for c in range(8)}
    # the rmsnorm of the embedding and those of the two blocks are three vectors, told apart
    at = {n: names.find(f'{n}[5]@pos0') for n in ('x_norm', 'attn.x_norm', 'mlp.x_norm')}
    assert [trace.scope_path(i) for (i,) in at.values()] == [
        'pos0/embed/rmsnorm', 'pos0/layer0/attn/rmsnorm', 'pos0/layer0/mlp/rmsnorm']
    # an op toward a value: its op and the value; the rmsnorm's scale feeds all of them
    (q1,) = names.find('q[1]@pos2')
    product = next(c for c in trace.children(q1) if trace.op_name(c) == 'mul')
    assert trace.name(product) == '* \u2192 q[1]@pos2'
    scale = next(c for c in trace.children(at['attn.x_norm'][0]) if trace.op_name(c) == 'pow')
    assert trace.name(scale) == '** -0.5 \u2192 attn.x_norm[*]@pos0'


def test_names_are_unique_but_for_ops_toward_a_value_and_constants():
    """Across the whole trace, a value, a parameter cell and the loss each have a name of
    their own; the names shared by design are arrow names and constants, and those are
    told apart by their id on the surfaces that list them (name_id; the panel gives the id)."""
    trace = tiny_trace()
    seen = {}
    for i in range(len(trace)):
        seen.setdefault(trace.name(i), []).append(i)
    shared = {n: ids for n, ids in seen.items() if len(ids) > 1}
    assert shared and all(n.startswith(SHARED[1]) or SHARED[0] in n for n in shared)
    assert len({trace.names().name_id(i) for i in range(len(trace))}) == len(trace)
    # a shared name is searched as a whole: every op sharing it, outlined in its scope's view
    name, ids = next((n, ids) for n, ids in shared.items() if n.startswith('* \u2192 q[1]@pos2'))
    got = api_of('port').search('q=' + quote(name))
    assert (got['count'], got['first'], got['matches'][0]['label']) == (len(ids), ids[0], name)
    assert sorted(trace.names().find(name.replace('\u2192', '->'))) == ids == sorted(trace.names().find(name))
    # in one view, two scalars share a name only when the name is shared by design
    for _, query in PORT_VIEWS:
        drawn, _ = scalars(api_of('port'), query)
        by_name = {}
        for i in drawn.values():
            by_name.setdefault(trace.name(i), []).append(i)
        assert all(SHARED[0] in n or n.startswith(SHARED[1]) for n, ids in by_name.items() if len(ids) > 1)


def test_search_finds_a_node_by_its_name():
    trace = tiny_trace()
    api = api_of('port')
    for i in (trace.meta['loss_id'], trace.param_nodes('wte[1][0]')[0], trace.names().find('attn_w[h1][t0]@pos2')[0],
              trace.names().find('attn.x_norm[5]@pos1')[0]):
        name = trace.name(i)
        got = api.search('q=' + quote(name))
        assert (got['count'], got['first']) == (1, i), name
        sug = api.suggest('q=' + quote(name))['suggestions'][0]
        assert (sug['text'], sug['count']) == (name, 1)
    status = api.search('q=' + quote("wte['b'][0]"))
    assert status['to']['view'] == 'param' and status['to']['sel'] == trace.param_nodes('wte[1][0]')[0]
    assert trace.names().find('q[99]@pos1') == [] and trace.names().find('x_norm[5]@pos9') == []


def test_view_titles_and_terminal_reports_name_the_node():
    trace = tiny_trace()
    loss = trace.meta['loss_id']
    assert build_view(trace, node='loss', depth=1).selection.title.startswith("loss (loss/loss) of 'ab'")
    assert build_view(trace, param='wte[1][0]').selection.title.startswith("wte['b'][0] of 'ab'")
    assert trace.names().name_id(loss) == f'loss #{loss}'


def test_with_two_layers_a_layers_roles_name_their_layer():
    import random

    from microgpt.data import Tokenizer
    from microgpt.model import GPTConfig, init_params
    from microgpt.recording import record_step
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=4, n_head=2, block_size=4)
    trace = record_step(init_params(config, random.Random(3)), config, tok, 'ab')
    names = trace.names()
    values = [i for i in range(len(trace)) if names.has_role(i) and names.is_value(i)]
    assert len({trace.name(i) for i in values}) == len(values)          # each value its own name
    for name, path in (('layer1.q[0]@pos1', 'pos1/layer1/attn/q'), ('layer0.mlp.x_res[3]@pos2', 'pos2/layer0/mlp/residual'),
                       ('layer1.attn.x_norm[2]@pos0', 'pos0/layer1/attn/rmsnorm'), ('x_norm[2]@pos0', 'pos0/embed/rmsnorm'),
                       ('layer1.attn_w[h1][t0]@pos1', 'pos1/layer1/attn/head1/attn_weights')):
        (i,) = names.find(name)
        assert (trace.name(i), trace.scope_path(i)) == (name, path)
