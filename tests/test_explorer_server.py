"""The explorer's server over real HTTP on 127.0.0.1: validation, Host check, static files, recovery."""

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from graphviz_export.web.explorer import state as st
from microgpt import model
from tests.explorer_helpers import get, get_json, running_server


@pytest.fixture(scope='module')
def server():
    with running_server(doc='emma', seed=42) as s:
        yield s


@pytest.fixture(scope='module')
def trace():
    """The server's step, recorded here independently of it."""
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(42)
    return record_step(params, config, tok, 'emma')


def test_page_and_assets_are_served(server):
    status, headers, body = get(server, '/')
    assert status == 200 and headers['Content-Type'].startswith('text/html')
    assert b'<div id="stepper"></div>' in body
    for name, kind in (('explorer.js', 'text/javascript'), ('explorer.css', 'text/css')):
        status, headers, body = get(server, '/static/' + name)
        assert status == 200 and headers['Content-Type'].startswith(kind) and len(body) > 1000
    assert "script-src 'self'" in headers['Content-Security-Policy']


def test_default_view_is_the_block_view_of_the_last_token(server):
    status, v = get_json(server, '/api/view')
    assert status == 200
    assert v['kind'] == 'token' and v['stats']['level'] == 'block'
    assert v['title'].startswith("token 4 of 'emma'")          # 'emma': positions 0..4
    ET.fromstring(v['svg'].encode('utf-8'))                      # well-formed SVG
    assert [c['level'] for c in v['crumbs']] == ['document', 'position']
    # every visible node is described, and a block group opens to the vector level in place
    attn = [k for k, n in v['nodes'].items() if n.get('path') == 'pos4/layer0/attn']
    assert len(attn) == 1 and v['links']['nodes'][attn[0]] == 'level=vector&focus=pos4/layer0/attn'
    assert f'<title>{attn[0]}</title>' in v['svg']


@pytest.mark.parametrize('query, words', [
    ('level=bogus', "level 'bogus' is not one of"),
    ('token=x', 'token must be a whole number'),
    ('token=99', 'position 99 is not in this trace'),
    ('budget=0', 'budget must be in 1..'),
    ('view=head', "view 'head' needs head"),
    ('view=param&param=nope', "unknown parameter 'nope'"),
    ('view=param&param=wte[99][0]', 'outside wte'),
    ('expand=pos4/layer0/nothing', 'matches no scope'),
    ('expand=<script>', "expand '<script>' is not a scope path"),
    ('zzz=1', "unknown parameter 'zzz'"),
    ('token=1&token=2', "given 2 times"),
    ('doc=%C3%A9mma', "'é'"),
    ('doc=', 'doc is empty'),
    ('ckpt=/no/such/file.json', "'/no/such/file.json' is not a checkpoint this server offers"),
    ('view=node&node=-3', 'node must be'),
    ('dir=up&view=node&node=loss', "dir 'up' is not one of"),
])
def test_bad_view_parameters_get_400_with_a_one_line_json_error(server, query, words):
    status, headers, body = get(server, '/api/view?' + query)
    assert status == 400, body
    assert headers['Content-Type'].startswith('application/json')
    err = json.loads(body)['error']
    assert words in err and '\n' not in err


@pytest.mark.parametrize('path, status, words', [
    ('/api/node', 400, 'need id'),
    ('/api/node?id=abc', 400, 'id must be a whole number'),
    ('/api/node?id=99999999', 400, 'not in this trace'),
    ('/api/search', 400, 'search needs q'),
    ('/api/search?q=pos:x', 400, 'pos must be a whole number'),
    ('/api/search?q=color:red', 400, 'tags are key:value'),
    ('/api/search?q=nosuch.matrix[1][1]', 400, 'unknown parameter'),
    ('/api/search?q=fn:forward', 400, 'this trace has no source lines'),
    ('/api/search?q=pos:1%20pos:2', 400, "tag 'pos' is given twice"),
    ('/api/search?q=line:x', 400, 'line must be a whole number'),
    ('/api/suggest?q=' + 'a' * 201, 400, 'q is longer than 200'),
    ('/api/suggest?q=a%01', 400, 'q has a control character'),
    ('/api/suggest?q=a&q=b', 400, "parameter 'q' is given 2 times"),
    ('/api/view?focus=pos4/*', 400, "focus 'pos4/*' is not a scope path"),
    ('/api/view?side=left', 400, "side 'left' is not one of: hide"),
    ('/api/export?fmt=gif', 400, "fmt 'gif' is not one of"),
    ('/api/nothing', 404, 'no API endpoint'),
    ('/nothing.html', 404, 'no such page'),
])
def test_bad_api_requests(server, path, status, words):
    got, body = get_json(server, path)
    assert got == status and words in body['error']


def test_a_link_that_cannot_be_shown_names_the_nearest_view_that_can(server):
    """A 400 on /api/view still says where the page may go (never a blank page): a bad position
    keeps the rest of the link; a checkpoint not offered is dropped, never opened."""
    status, body = get_json(server, '/api/view?token=99&level=vector')
    assert status == 400 and body['fallback'] == 'level=vector'
    assert body['note'].startswith('this link cannot be shown as written (position 99 is not in this trace')
    status, body = get_json(server, '/api/view?ckpt=/etc/passwd&token=2&level=vector')
    assert status == 400 and "'/etc/passwd' is not a checkpoint this server offers" in body['error']
    assert body['fallback'] == 'token=2&level=vector' and '/etc/passwd' in body['note']
    assert get_json(server, '/api/view?' + body['fallback'])[0] == 200


def test_a_view_too_big_to_lay_out_in_time_opens_smaller_and_says_so(server):
    """q opened to scalars: at least 823 nodes, over what lays out in time (600): drawn with q
    folded, a note that says so and how to draw it anyway (the budget box: a control that exists)."""
    status, body = get_json(server, '/api/view?level=vector&expand=pos4/layer0/attn/q')
    assert status == 200 and body['url'] == 'level=vector' and body['state']['expand'] == []
    assert body['fallback'].startswith('pos4/layer0/attn/q opened to scalars would draw at least 823 nodes, more '
                                       'than the 600 the explorer lays out in time: it stayed folded (type 823 or '
                                       'more in the budget box')
    assert 'Settings' not in body['fallback']
    # asked for, it draws: the budget box's own figure is the ceiling then
    status, body = get_json(server, '/api/view?level=vector&expand=pos4/layer0/attn/q&budget=900')
    assert status == 200 and body['fallback'] is None and body['stats']['nodes'] > 600


@pytest.mark.parametrize('host', ['evil.example:80', 'evil.example', '127.0.0.1', '127.0.0.1:1', '', None])
def test_a_foreign_host_header_is_refused(server, host):
    status, _, body = get(server, '/', headers={'Host': host})
    assert status == 403 and b'is not the address this server serves' in body


def test_localhost_names_of_the_served_port_are_accepted(server):
    port = server.server_address[1]
    for host in (f'127.0.0.1:{port}', f'localhost:{port}', f'LOCALHOST:{port}'):
        assert get(server, '/', headers={'Host': host})[0] == 200


def test_cross_site_api_requests_are_refused(server):
    status, body = get_json(server, '/api/view', headers={'Sec-Fetch-Site': 'cross-site'})
    assert status == 403 and 'cross-site' in body['error']


@pytest.mark.parametrize('path', ['/static/../server.py', '/static/../../pyproject.toml', '/static/%2e%2e/api.py',
                                  '/../../../../etc/passwd', '/static//etc/passwd', '/static/explorer.js/../api.py',
                                  '//etc/passwd', '/static/'])
def test_static_files_cannot_escape_the_asset_folder(server, path):
    status, _, body = get(server, path)
    assert status == 404 and b'import' not in body and b'root:' not in body


def test_other_methods_are_refused(server):
    status, _headers, body = get(server, '/api/view', method='POST')
    assert status == 405 and json.loads(body)['error'].startswith('method POST')


def test_the_server_keeps_serving_after_bad_requests(server):
    for path in ('/api/view?level=%ff%fe', '/api/view?' + 'a=1&' * 200, '/api/node?id=' + '9' * 50,
                 '/api/view?token=' + 'x' * 5000):
        assert get(server, path)[0] in (400, 404)
    status, _, _ = get(server, '/static/../x')
    assert status == 404
    status, v = get_json(server, '/api/view?view=layer&layer=0&token=2&level=vector')
    assert status == 200 and v['stats']['level'] == 'vector'


def test_node_details_equal_the_trace(server):
    trace = server.api.recordings.get(server.api.recordings.key({}))
    cell = trace.param_nodes('layer0.attn_wq[3][5]')[0]
    status, d = get_json(server, f'/api/node?id={cell}')
    assert status == 200
    assert d['data'] == repr(trace.data[cell]) and d['grad'] == repr(trace.grad[cell])
    uses = trace.uses(cell)
    assert [u['id'] for u in d['uses']] == [p for p, _, _ in uses]
    assert [float(u['contrib']) for u in d['uses']] == [c for _, _, c in uses]
    total = 0.0
    for _, _, c in uses:
        total += c
    assert float(d['uses_sum']) == total == trace.grad[cell] and d['sum_is_grad']
    assert d['source']['function'] == 'init_params'
    # an op inside attention: its inputs' local derivatives, and the model line that made it
    i = trace.nodes(pos=2, layer=0, head=1, role='attn_weights')[3]
    status, d = get_json(server, f'/api/node?id={i}')
    assert [x['id'] for x in d['inputs']] == trace.children(i)
    assert [float(x['local']) for x in d['inputs']] == trace.local_grads(i)
    assert d['path'] == 'pos2/layer0/attn/head1/attn_weights'
    # the innermost line of model.py that made it (inside softmax), reached from the call in gpt()
    model_lines = Path(model.__file__).read_text().splitlines()
    call = 1 + next(k for k, t in enumerate(model_lines) if 'attn_weights = softmax(attn_logits)' in t)
    src = d['source']
    assert src['function'] == 'softmax' and src['code'] == model_lines[src['line'] - 1].strip()
    assert src['chain'] == [['gpt', call], ['softmax', src['line']]]


def test_search_by_tags_cell_and_id(server):
    status, d = get_json(server, '/api/search?q=pos:3%20layer:0%20head:2%20role:attn_weights')
    assert status == 200 and d['count'] == 25 and [(m['path'], m['count']) for m in d['matches']] == [
        ('pos3/layer0/attn/head2/attn_weights', 25)]
    status, v = get_json(server, '/api/view?' + d['url'])
    assert status == 200 and v['kind'] == 'head' and len(v['highlight']) >= 1
    assert all('attn_weights' in v['nodes'][n]['path'] for n in v['highlight'])
    status, d = get_json(server, '/api/search?q=layer0.attn_wq[3][5]')
    assert d['count'] == 1 and d['to']['view'] == 'param' and d['to']['param'] == 'layer0.attn_wq[3][5]'
    status, d = get_json(server, '/api/search?q=4711')
    assert d['to']['view'] == 'node' and d['to']['node'] == 4711 and d['to']['sel'] == 4711


def test_switching_document_records_it(server):
    status, v = get_json(server, '/api/view?doc=christopher')
    assert status == 200 and v['title'].startswith("token 11 of 'christopher'")
    status, info = get_json(server, '/api/info?doc=christopher&seed=7')
    assert info['doc'] == 'christopher' and info['seed'] == 7 and len(info['tokens']) == 12


def test_views_are_cached(server):
    q = '/api/view?view=layer&layer=0&token=1&level=vector&budget=3999'   # a build key no other test asks for
    status, headers, body = get(server, q)
    assert status == 200 and headers['X-View-Cache'] == 'miss' and not json.loads(body)['cached']
    status, headers, body = get(server, q + '&hl=4711')      # the highlight is not part of the drawing
    assert status == 200 and headers['X-View-Cache'] == 'hit' and json.loads(body)['cached']


def test_exports(server):
    status, headers, body = get(server, '/api/export?fmt=svg&token=2')
    assert status == 200 and headers['Content-Type'] == 'image/svg+xml'
    assert 'attachment; filename="emma-token_2.svg"' == headers['Content-Disposition']
    ET.fromstring(body)
    status, headers, body = get(server, '/api/export?fmt=dot&token=2')
    assert body.startswith(b'digraph microgpt {')
    status, headers, body = get(server, '/api/export?fmt=json&token=2')
    assert json.loads(body)['format'] == 'microgpt-graph view'
    status, headers, body = get(server, '/api/export?fmt=png&token=2')
    if server.api.png:
        assert status == 200 and body.startswith(b'\x89PNG')
    else:
        assert status == 400 and b'needs the Graphviz' in body


def test_state_round_trips_through_the_query_string():
    s = st.parse('view=head&layer=0&head=2&token=3&level=auto&expand=pos3/layer0/attn/head2/q&grads=1&frame=5')
    assert s['frame'] == 5 and s['expand'] == ('pos3/layer0/attn/head2/q',) and s['grads'] is True
    assert st.parse(st.canonical(s)) == s
    assert st.canonical(st.parse('')) == ''
    assert st.build_kwargs(s) == {'layer': 0, 'head': 2, 'token': 3, 'level': 'auto', 'budget': 150,
                                  'edge_budget': 400, 'expand': ('pos3/layer0/attn/head2/q',), 'edge_grads': True,
                                  'aspect': 'auto'}


def test_frames_of_a_view_state(server):
    status, v = get_json(server, '/api/view?view=node&node=loss&depth=2&level=auto')
    status, f = get_json(server, '/api/frames?view=node&node=loss&depth=2&level=auto')
    assert status == 200 and f['format'] == 'microgpt-graph frames' and f['mode'] == 'backward'
    visible = {n for n, d in v['nodes'].items() if d['k'] != 'r'}
    assert set(f['order']) == visible and len(f['order']) == len(visible)
    ids = {g.get('id') for g in ET.fromstring(v['svg']).iter()}
    for name in f['order']:                        # the ids a player lights are in the drawn SVG
        assert f'node-{name}' in ids
    status, f = get_json(server, '/api/frames?view=node&node=loss&depth=2&level=auto&mode=forward')
    assert status == 200 and f['mode'] == 'forward'
    status, body = get_json(server, '/api/frames?mode=sideways')
    assert status == 400 and "mode 'sideways' is not one of" in body['error']


# -- part 2: step-through state, the update, compare, scripts, overlays, the whole document ---------------
NAMES = ['emma', 'olivia', 'ava', 'isabella', 'sophia', 'mia', 'amelia', 'harper', 'evelyn', 'abigail',
         'emily', 'ella', 'elizabeth', 'camila', 'luna', 'sofia', 'avery', 'mila', 'aria', 'scarlett']


def test_the_frame_player_is_served_from_the_shared_folder_not_a_copy(server):
    from importlib.resources import files
    for name, kind in (('stepper.js', 'text/javascript'), ('stepper.css', 'text/css'),
                       ('stepthrough.js', 'text/javascript')):
        status, headers, body = get(server, '/static/' + name)
        assert status == 200 and headers['Content-Type'].startswith(kind)
    shared = (files('graphviz_export.web') / 'static' / 'stepper.js').read_bytes()
    assert get(server, '/static/stepper.js')[2] == shared
    assert not (files('graphviz_export.web.tour') / 'static' / 'stepper.js').is_file()
    assert not (files('graphviz_export.web.explorer') / 'static' / 'stepper.js').is_file()


@pytest.mark.parametrize('query, words', [
    ('frame=-1', 'frame must be'), ('mode=sideways', "mode 'sideways' is not one of"),
    ('ov=heat', "ov 'heat' is not one of"), ('cmp=later', "is not 'ckpt:PATH'"),
    ('cmp=steps:0', 'cmp steps must be in 1..500'), ('view=function', "view 'function' needs function"),
    ('view=line&line=0', 'line must be in'),
])
def test_part2_state_fields_are_validated(server, query, words):
    status, body = get_json(server, '/api/view?' + query)
    assert status == 400 and words in body['error']


def test_frames_take_the_mode_from_the_state_and_refuse_a_comparison(server, tmp_path):
    status, f = get_json(server, '/api/frames?view=node&node=loss&depth=1&level=auto&mode=forward&frame=3')
    assert status == 200 and f['mode'] == 'forward'
    status, f = get_json(server, '/api/frames?token=4')
    status, v = get_json(server, '/api/view?token=4')
    groups = {n: d for n, d in f['nodes'].items() if d['kind'] != 'scalar'}
    # groups named in words, as the picture titles them, and by their scope path; never by a node id
    assert groups and all(d['label'].endswith(f"({v['nodes'][n]['path']})") or d['label'] == v['nodes'][n]['path']
                          for n, d in groups.items())
    assert not any(re.search(r'\bg\d+\b', d['label']) for d in groups.values())
    embed = next(d for n, d in groups.items() if v['nodes'][n]['path'] == 'pos4/embed')
    assert embed['label'] == 'embed (pos4/embed)'                   # as the block view's picture titles it
    status, body = get_json(server, '/api/frames?cmp=steps:2')
    assert status == 400 and 'leave compare' in body['error']


def test_the_update_equals_adam_on_the_same_step(server):
    from microgpt.model import flat_params
    from microgpt.optim import Adam
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(42)
    trace = record_step(params, config, tok, 'emma')      # leaves this step's grads on the parameters
    flat = flat_params(params)
    before = [p.data for p in flat]
    adam = Adam(flat)
    adam.step(0, 1000)
    status, u = get_json(server, '/api/update?view=param&param=layer0.attn_wq&level=auto')
    assert status == 200 and u['step'] == 0 and u['count'] == len(u['rows']) == 256
    assert 'fresh optimizer' in u['source'] and float(u['lr_t']) == 0.01
    for r in u['rows']:
        i = r['id']
        assert trace.param_cell(i) is not None
        assert float(r['grad']) == trace.grad[i]
        assert float(r['m']) == adam.m[i] and float(r['v']) == adam.v[i]
        assert float(r['new']) == flat[i].data and float(r['delta']) == flat[i].data - before[i]
    # which parameters: exactly those feeding the view (a view without parameters has none)
    status, u = get_json(server, '/api/update?view=node&node=loss&depth=1&level=auto')
    assert status == 200 and u['count'] == 0 and u['rows'] == []


def test_the_update_pages_through_a_matrix_and_sums_it_up(server):
    import math

    from microgpt.model import flat_params
    from microgpt.optim import Adam
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(42)
    trace = record_step(params, config, tok, 'emma')
    flat = flat_params(params)
    before = [p.data for p in flat]
    Adam(flat).step(0, 1000)
    delta = [p.data - b for p, b in zip(flat, before)]
    base = trace.param_base['layer0.attn_wq']
    ids = list(range(base, base + 256))
    q = '/api/update?view=param&param=layer0.attn_wq&level=auto'
    got = []
    for offset in (0, 100, 200):
        status, u = get_json(server, f'{q}&matrix=layer0.attn_wq&limit=100&offset={offset}')
        assert status == 200 and u['matched'] == 256 and u['offset'] == offset
        got += [(r['id'], float(r['delta'])) for r in u['rows']]
    assert got == [(i, delta[i]) for i in ids]
    [m] = u['matrices']
    top = max(ids, key=lambda i: abs(delta[i]))
    assert m['name'] == 'layer0.attn_wq' and m['cells'] == m['size'] == 256 and m['shape'] == [16, 16]
    assert float(m['max_delta']) == abs(delta[top]) == abs(float(m['largest_delta']))
    assert m['largest'] == 'layer0.attn_wq[{}][{}]'.format(*divmod(top - base, 16))
    assert float(m['norm_delta']) == pytest.approx(math.sqrt(sum(delta[i] ** 2 for i in ids)), rel=1e-12)
    # every cell's grad in the matrix's norm, none left out (each of the 256 has one here)
    assert all(trace.grad[i] != 0 for i in ids)
    assert float(m['norm_grad']) == pytest.approx(math.sqrt(sum(trace.grad[i] ** 2 for i in ids)), rel=1e-12)
    status, u = get_json(server, f'{q}&sort=delta&limit=5')
    assert [r['id'] for r in u['rows']] == sorted(ids, key=lambda i: -abs(delta[i]))[:5]
    for bad, said in (('sort=size', "sort 'size' is not one of: id, delta"),
                      ('limit=401', "limit '401' is not an integer in 1..400"),
                      ('offset=-3', "offset '-3' is not an integer in 0..10000000"),
                      ('matrix=wq', "matrix 'wq' is not a parameter matrix of this model"),
                      ('limit=5&limit=6', "parameter 'limit' is given 2 times")):
        status, body = get_json(server, f'{q}&{bad}')
        assert status == 400 and body['error'].startswith(said), body


@pytest.fixture(scope='module')
def names_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('names') / 'names.txt'
    path.write_text('\n'.join(NAMES) + '\n')
    return path


@pytest.fixture(scope='module')
def ckpt_dir(tmp_path_factory):
    """A folder of checkpoints the compare server offers (the page may open only these)."""
    return tmp_path_factory.mktemp('ckpts')


@pytest.fixture(scope='module')
def cmp_server(names_file, ckpt_dir):
    with running_server(doc='emma', seed=42, data=str(names_file), checkpoints=[str(ckpt_dir)]) as s:
        yield s


def test_compare_after_training_steps_is_the_difference_of_the_two_traces(cmp_server, names_file):
    from microgpt.data import read_docs
    from microgpt.recording.session import train_and_record
    before, after, _ = train_and_record(read_docs(names_file), 'emma', 3, seed=42, start='seed')
    status, v = get_json(cmp_server, '/api/view?view=node&node=loss&depth=2&level=auto&cmp=steps:3')
    assert status == 200 and v['compare']['labels'] == ['fresh seed 42', 'after 3 training steps']
    assert v['compare']['loss_before'] == before.loss and v['compare']['loss_after'] == after.loss
    assert '\u0394grad' in v['svg'] and '\u0394 loss' in v['svg']
    scalars = [d['id'] for d in v['nodes'].values() if d['k'] == 's']
    assert scalars
    for i in scalars[:12]:
        status, d = get_json(cmp_server, f'/api/node?cmp=steps:3&id={i}')
        assert status == 200
        b, a, delta = map(float, d['compare']['data'])
        assert (b, a, delta) == (before.data[i], after.data[i], after.data[i] - before.data[i])
        b, a, delta = map(float, d['compare']['grad'])
        assert (b, a, delta) == (before.grad[i], after.grad[i], after.grad[i] - before.grad[i])
        assert float(d['grad']) == after.grad[i] - before.grad[i]


def test_the_update_after_training_uses_the_trained_optimizer(cmp_server, names_file):
    from microgpt.data import read_docs
    from microgpt.model import flat_params
    from microgpt.recording import record_step
    from microgpt.train import Run, fresh_model, start_run, train_step
    params, config, tok = fresh_model(42)                 # the page's model, on the reference run's documents
    run = Run(config, tok, params, None, start_run(read_docs(names_file), seed=42).docs)
    for k in range(3):
        train_step(run, k, 1000)
    record_step(run.params, run.config, run.tokenizer, 'emma')       # this step's grads on the parameters
    flat = flat_params(run.params)
    old = [p.data for p in flat]
    run.optimizer.step(3, 1000)
    status, u = get_json(cmp_server, '/api/update?view=param&param=wte[5][3]&level=auto&cmp=steps:3')
    assert status == 200 and u['step'] == 3 and 'after 3 steps' in u['source'] and u['count'] == 1
    r = u['rows'][0]
    assert float(r['m']) == run.optimizer.m[r['id']] and float(r['v']) == run.optimizer.v[r['id']]
    assert float(r['delta']) == flat[r['id']].data - old[r['id']]


def test_compare_with_a_second_checkpoint(cmp_server, ckpt_dir):
    from microgpt.checkpoint import save_checkpoint
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(7)
    path = ckpt_dir / 'other.json'
    save_checkpoint(path, params, config, tok)
    after = record_step(params, config, tok, 'emma')
    p0, c0, t0 = fresh_model(42)
    before = record_step(p0, c0, t0, 'emma')
    status, v = get_json(cmp_server, f'/api/view?token=2&cmp=ckpt:{path}')
    assert status == 200 and v['compare']['labels'] == ['fresh seed 42', 'other.json']
    assert v['compare']['loss_delta'] == after.loss - before.loss
    i = before.meta['loss_id']
    status, d = get_json(cmp_server, f'/api/node?cmp=ckpt:{path}&id={i}')
    assert [float(x) for x in d['compare']['data']] == [before.data[i], after.data[i], after.data[i] - before.data[i]]
    # the page may name an offered checkpoint by its file name too
    status, by_name = get_json(cmp_server, '/api/view?token=2&cmp=ckpt:other.json')
    assert status == 200 and by_name['compare'] == v['compare'] and by_name['svg'] == v['svg']
    status, body = get_json(cmp_server, f'/api/view?cmp=ckpt:{ckpt_dir}/missing.json')
    assert status == 400 and 'is not a checkpoint this server offers' in body['error']


def test_compare_after_steps_needs_the_names_data(server, monkeypatch, tmp_path):
    monkeypatch.delenv('MICROGPT_NAMES', raising=False)
    monkeypatch.setenv('MICROGPT_DATA', str(tmp_path / 'none.txt'))
    status, body = get_json(server, '/api/view?cmp=steps:2')
    assert status == 400 and 'needs the names data' in body['error'] and '--data' in body['error']


def test_the_whole_document_view_and_its_crumb(server):
    status, v = get_json(server, '/api/view?view=doc')
    assert status == 200 and v['kind'] == 'document' and v['stats']['fits']
    assert v['title'] == "the whole document of 'emma': 5 positions"
    paths = {d.get('path') for d in v['nodes'].values()}
    assert {f'pos{p}/layer0/attn' for p in range(5)} <= paths and 'pos0/embed' in paths
    status, t = get_json(server, '/api/view?token=3')
    assert t['crumbs'][0]['to']['view'] == 'doc'
    # a group of the whole document opens its position
    attn = next(k for k, d in v['nodes'].items() if d.get('path') == 'pos2/layer0/attn')
    assert v['links']['nodes'][attn] == 'token=2'


def test_overlay_magnitudes_are_the_largest_grad_and_grad_times_data(server):
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    trace = record_step(*fresh_model(42), 'emma')
    status, v = get_json(server, '/api/view?view=node&node=loss&depth=2&level=auto&ov=contrib')
    assert status == 200 and v['state']['ov'] == 'contrib'
    for d in v['nodes'].values():
        if d['k'] == 's':
            i = d['id']
            assert d['mag'] == [abs(trace.grad[i]), abs(trace.grad[i] * trace.data[i])]


def test_a_view_over_budget_by_the_floor_opens_at_the_coarser_level_that_fits(server):
    status, body = get_json(server, '/api/view?view=layer&layer=0&level=scalar')
    assert status == 200 and body['state']['level'] == 'vector' and body['url'] == 'view=layer&layer=0&level=vector'
    assert body['fallback'].startswith('level scalar would draw at least 37,217 nodes')
    assert 'shown at level vector' in body['fallback']


@pytest.fixture(scope='module')
def script_server():
    from microgpt.recording.script import record_script
    from tests.test_record_script import SCRIPTS
    trace = record_script(SCRIPTS / 'micrograd_style.py')
    with running_server(trace=trace) as s:
        yield s, trace


def test_a_scripts_trace_has_function_and_line_views_and_its_own_lines(script_server):
    server, trace = script_server
    status, info = get_json(server, '/api/info')
    assert info['script']['file'] == 'micrograd_style.py' and info['tokens'] == []
    assert info['script']['functions'] == trace.functions()
    status, v = get_json(server, '/api/view')
    assert v['kind'] == 'node' and [c['level'] for c in v['crumbs']][0] == 'script'
    assert v['crumbs'][-1] == {'level': 'node', 'label': trace.name(trace.meta['loss_id']),
                               'to': v['crumbs'][-1]['to']}
    status, v = get_json(server, '/api/view?view=function&function=Neuron.__call__&level=auto')
    assert status == 200 and v['kind'] == 'function' and v['title'].startswith('Neuron.__call__()')
    assert [c['label'] for c in v['crumbs']] == ['micrograd_style.py', 'Neuron.__call__()']
    i = trace.nodes_in_function('Neuron.__call__')[0]
    src = trace.source_of(i)
    status, d = get_json(server, f'/api/node?id={i}')
    assert d['source']['script'] and d['source']['file'] == 'micrograd_style.py' and d['source']['line'] == src.line
    script_line = (Path(__file__).parent / 'scripts' / 'micrograd_style.py').read_text().splitlines()[src.line - 1]
    assert d['source']['code'] == script_line.strip()
    line = info['script']['lines'][0]['line']
    status, v = get_json(server, f'/api/view?view=line&line={line}&level=auto')
    assert status == 200 and v['kind'] == 'line'
    status, body = get_json(server, '/api/view?view=function&function=nope')
    assert status == 400 and "function 'nope' made no node" in body['error']
    status, body = get_json(server, '/api/view?cmp=steps:2')
    assert status == 400 and 'saved trace' in body['error']


# -- session 2b: search rows, suggestions, fn:/line:, crumbs of the node view and of an opened block ----------
def test_each_search_row_opens_a_view_outlining_only_its_scope(server, trace):
    status, d = get_json(server, '/api/search?q=role:attn_weights')
    assert status == 200 and d['count'] == len(trace.nodes(role='attn_weights'))
    want = [(p, h) for p in trace.positions() for h in trace.heads()]       # 5 positions x 4 heads, one layer
    assert [m['path'] for m in d['matches']] == [f'pos{p}/layer0/attn/head{h}/attn_weights' for p, h in want]
    assert sum(m['count'] for m in d['matches']) == d['count'] and d['scopes'] == len(want)
    for m, (p, h) in list(zip(d['matches'], want))[5:8]:
        assert m['count'] == len(trace.nodes(pos=p, layer=0, head=h, role='attn_weights'))
        status, v = get_json(server, '/api/view?' + m['url'])
        assert status == 200 and v['kind'] == 'head' and v['state']['head'] == h and v['state']['token'] == p
        assert v['highlight'] and {v['nodes'][n]['path'] for n in v['highlight']} == {m['path']}
        assert v['hl_count'] == m['count']


def test_suggestions_complete_the_word_being_typed(server, trace):
    def texts(q):
        status, d = get_json(server, '/api/suggest?q=' + q.replace(' ', '%20'))
        assert status == 200
        return [s['text'] for s in d['suggestions']]
    assert texts('pos:') == [f'pos:{p}' for p in trace.positions()]
    assert texts('pos:3 he') == ['pos:3 head:']
    assert texts('pos:3 head:') == [f'pos:3 head:{h}' for h in trace.heads()]
    assert texts('role:attn_w') == ['role:attn_weights']
    assert texts('layer0.attn_w') == [n for n in trace.param_names if n.startswith('layer0.attn_w')]
    assert texts('wte[3') == ['wte[3][0]']
    assert texts('4711') == ['4711']
    assert 'fn:' not in texts('f')                 # no fn:/line: tags for a trace without source lines


def test_the_node_view_ends_its_crumbs_with_the_centre_and_an_opened_block_is_a_crumb(server, trace):
    status, v = get_json(server, '/api/view?view=node&node=loss&depth=2&level=auto')
    assert [(c['level'], c['label']) for c in v['crumbs']] == [
        ('document', "'emma'"), ('node', trace.name(trace.meta['loss_id']))]
    i = trace.nodes(pos=2, layer=0, head=1, role='attn_weights')[0]
    status, v = get_json(server, f'/api/view?view=node&node={i}&depth=2&level=auto')
    assert [c['level'] for c in v['crumbs']] == ['document', 'position', 'layer', 'block', 'head', 'role', 'node']
    assert v['crumbs'][-1]['label'] == trace.name(i)
    # a block clicked open at block level: the click target names it (focus), and it is a crumb
    status, v = get_json(server, '/api/view?view=token&token=4')
    attn = next(k for k, n in v['nodes'].items() if n.get('path') == 'pos4/layer0/attn')
    assert v['links']['nodes'][attn] == 'token=4&level=vector&focus=pos4/layer0/attn'
    status, v = get_json(server, '/api/view?view=token&token=4&level=vector&focus=pos4/layer0/attn')
    assert [(c['level'], c['label']) for c in v['crumbs']][-2:] == [('layer', 'layer 0'), ('block', 'attn')]
    assert v['crumbs'][-1]['to']['focus'] == 'pos4/layer0/attn'
    assert v['crumbs'][1]['to'].get('focus') is None
    status, v2 = get_json(server, '/api/view?view=token&token=4&level=vector&side=hide')
    assert v2['svg'] == v['svg'] and 'side=hide' in v2['url'] and v2['cached']     # not part of the build


def test_fn_and_line_tags_search_a_scripts_own_code(script_server):
    server, trace = script_server
    fn = 'Neuron.__call__'
    status, d = get_json(server, f'/api/search?q=fn:{fn}')
    ids = trace.nodes_in_function(fn)
    assert status == 200 and d['count'] == len(ids) and d['to']['view'] == 'function' and d['to']['function'] == fn
    lines = sorted({trace.source_of(i).line for i in ids})
    assert sorted(int(m['path'].rsplit(':', 1)[1]) for m in d['matches']) == lines
    assert sum(m['count'] for m in d['matches']) == len(ids)
    m = d['matches'][0]
    line = int(m['path'].rsplit(':', 1)[1])
    assert m['hl'] == f'fn:{fn} line:{line}' and m['count'] == len(set(ids) & set(trace.nodes_at_line(line)))
    status, v = get_json(server, '/api/view?' + m['url'])
    assert status == 200 and v['kind'] == 'function' and v['hl_count'] == m['count'] and v['highlight']
    status, d = get_json(server, f'/api/search?q=line:{line}')
    assert d['count'] == len(trace.nodes_at_line(line)) and d['to'] == dict(d['to'], view='line', line=line)
    status, s = get_json(server, '/api/suggest?q=fn:Neuron')
    assert [x['text'] for x in s['suggestions']] == [f'fn:{f}' for f in trace.functions() if f.startswith('Neuron')]
    status, s = get_json(server, '/api/suggest?q=li')
    assert [x['text'] for x in s['suggestions']] == ['line:']
    status, body = get_json(server, '/api/search?q=fn:nope')
    assert status == 400 and "function 'nope' made no node" in body['error']


# -- session 2c: a matrix lists its cells, a node id the views that show it; suggestions count their matches --
def test_a_matrix_lists_each_cell_and_a_node_id_each_view_that_shows_it(server, trace):
    status, d = get_json(server, '/api/search?q=wte')
    rows, cols = trace.param_shapes['wte']
    ids = trace.param_nodes('wte')
    assert status == 200 and d['unit'] == 'cell' and d['count'] == rows * cols == 432
    assert (d['matches'][0]['path'], d['matches'][0]['count']) == ('wte', 432)     # the matrix, then each cell
    assert [m['path'] for m in d['matches'][1:]] == [f'wte[{r}][{c}]' for r in range(rows) for c in range(cols)]
    assert all(m['count'] == 1 for m in d['matches'][1:]) and d['scopes'] == 433
    for k in (1, 54, 432):                          # wte[0][0], wte[3][5], wte[26][15]: data and grad of the trace
        m, i = d['matches'][k], ids[k - 1]
        assert m['label'] == f'data {trace.data[i]:.6g} · grad {trace.grad[i]:.6g}'
        status, v = get_json(server, '/api/view?' + m['url'])
        assert status == 200 and v['kind'] == 'param' and v['state']['param'] == m['path']
        assert v['state']['sel'] == i and v['hl_count'] == 1 and len(v['highlight']) == 1
    # a node id: its neighbourhood, the scope holding it, its position, each counted and outlined there
    i = trace.nodes(pos=2, layer=0, head=1, role='attn_weights')[3]
    status, d = get_json(server, f'/api/search?q={i}')
    path = 'pos2/layer0/attn/head1/attn_weights'
    assert d['unit'] == 'view' and d['count'] == 1 and [(m['path'], m['count']) for m in d['matches']] == [
        (path, 1), (path, len(trace.nodes(pos=2, layer=0, head=1, role='attn_weights'))),
        ('pos2', len(trace.nodes(pos=2)))]
    kinds = []
    for m in d['matches']:
        status, v = get_json(server, '/api/view?' + m['url'])
        assert status == 200 and v['hl_count'] == 1 and len(v['highlight']) == 1
        n = v['nodes'][v['highlight'][0]]                 # the drawn node holding it: i, or a group around it
        assert n['id'] == i if n['k'] == 's' else (path + '/').startswith(n['path'] + '/')
        kinds.append((v['kind'], v['stats']['level']))
    assert kinds[0][0] == 'node' and kinds[1][0] == 'head' and kinds[2] == ('token', 'block')
    # a parameter's node id: its neighbourhood, its cell, its matrix
    j = trace.param_nodes('wte[1][4]')[0]
    status, d = get_json(server, f'/api/search?q={j}')
    assert [(m['path'], m['count']) for m in d['matches']] == [('params/wte', 1), ('wte[1][4]', 1), ('wte', 432)]
    status, d = get_json(server, '/api/search?q=layer0.attn_wq[3][5]')          # a cell: it, then its matrix
    assert [(m['path'], m['count']) for m in d['matches']] == [('layer0.attn_wq[3][5]', 1), ('layer0.attn_wq', 256)]


def test_suggestions_show_how_many_nodes_each_would_match(server, trace):
    def counts(q):
        status, d = get_json(server, '/api/suggest?q=' + q.replace(' ', '%20'))
        assert status == 200
        return [(s['text'], s['count']) for s in d['suggestions']]
    assert counts('pos:') == [(f'pos:{p}', len(trace.nodes(pos=p))) for p in trace.positions()]
    assert counts('pos:3 head:') == [(f'pos:3 head:{h}', len(trace.nodes(pos=3, head=h))) for h in trace.heads()]
    assert counts('role:attn_w') == [('role:attn_weights', len(trace.nodes(role='attn_weights')))]
    assert counts('wt') == [('wte', 27 * 16)]
    assert counts('mlp_fc1') == [('layer0.mlp_fc1', 64 * 16)]
    assert counts('4711') == [('4711', 1)] and counts('wte[3') == [('wte[3][0]', 1)]
    assert counts('pos:1 po') == [('pos:1 pos:', None)]          # a key: no count until it has a value


# -- issue 20: the page is a view over the server's answers; every link is the server's (links.py) -----------
# The expected URLs are written out by hand from what the page did before it asked the server
# (explorer.js at 16cc25e: its tab, chip, control, [ ], u, recording, compare and export handlers).
E = 'pos3/layer0/attn/head2/attn_weights'
HEAD_VIEW = f'view=head&token=3&layer=0&head=2&level=vector&budget=300&expand={E}&grads=1&hl=pos:3'


def test_the_links_of_a_head_view_with_an_expansion_go_where_the_page_went(server, trace):
    s = trace.nodes(pos=3, layer=0, head=2, role='attn_weights')[0]
    status, v = get_json(server, f'/api/view?{HEAD_VIEW}&sel={s}&ov=grad&frame=3&focus=pos3/layer0/attn')
    assert status == 200
    links = v['links']
    # a tab: another view where the user is (position 3, layer 0, head 2, the selection); the
    # recording, budget, edge grads, overlay and step-through stay; expansions, search, focus go
    keep = 'budget=300&grads=1&ov=grad&frame=3'
    assert links['tabs'] == {
        'doc': f'view=doc&{keep}',
        'token': f'token=3&{keep}',
        'layer': f'view=layer&token=3&layer=0&level=auto&{keep}',
        'head': f'view=head&token=3&layer=0&head=2&level=auto&{keep}',
        'param': f'view=param&param=layer0.attn_wq[0][0]&level=auto&{keep}',
        'node': f'view=node&node={s}&depth=2&level=auto&budget=300&grads=1&sel={s}&ov=grad&frame=3'}
    # a chip: the token view at block level; the whole document also closes the step-through
    assert links['chips']['doc'] == 'view=doc&budget=300&grads=1&ov=grad'
    assert links['chips']['positions'] == {str(p): f'token={p}&{keep}' for p in range(5)}
    assert links['chips']['on'] == 3
    # a control: the selection goes; a level keeps the expansion and the search, a position does not
    # keep the expansion; a budget keeps the opened block (focus) too
    controls = {c['field']: c for c in links['controls'] if c['kind'] != 'choice' or c['field'] != 'param'}
    assert [c['field'] for c in links['controls']] == ['layer', 'head', 'token', 'level', 'grads', 'budget', 'ebudget']
    level = dict((o[0], o[2]) for o in controls['level']['options'])
    assert controls['level']['value'] == 'vector'
    assert level['scalar'] == (f'view=head&token=3&layer=0&head=2&level=scalar&budget=300&expand={E}&grads=1'
                               f'&hl=pos:3&ov=grad&frame=3')
    token = dict((o[0], o[2]) for o in controls['token']['options'])
    assert controls['token']['value'] == '3' and list(token)[0] == ''           # 'all' first, then 0..4
    assert token['1'] == 'view=head&token=1&layer=0&head=2&level=vector&budget=300&grads=1&hl=pos:3&ov=grad&frame=3'
    assert token[''] == 'view=head&layer=0&head=2&level=vector&budget=300&grads=1&hl=pos:3&ov=grad&frame=3'
    assert controls['budget']['value'] == '300' and controls['budget']['url'] == (
        f'view=head&token=3&layer=0&head=2&level=vector&expand={E}&grads=1&hl=pos:3&ov=grad&frame=3'
        f'&focus=pos3/layer0/attn')
    assert controls['grads']['off'] == (f'view=head&token=3&layer=0&head=2&level=vector&budget=300&expand={E}'
                                        f'&hl=pos:3&ov=grad&frame=3&focus=pos3/layer0/attn')
    # folding the expansion back (its frame, or u): only the expansion goes
    folded = f'view=head&token=3&layer=0&head=2&level=vector&budget=300&grads=1&hl=pos:3&sel={s}&ov=grad&frame=3' \
             f'&focus=pos3/layer0/attn'
    assert links['fold'] == {E: folded} and links['up'] == folded
    # [ and ]: the same head at the next position, its level kept
    assert links['prev'] == 'view=head&token=2&layer=0&head=2&level=vector&budget=300&grads=1&ov=grad&frame=3'
    assert links['next'] == 'view=head&token=4&layer=0&head=2&level=vector&budget=300&grads=1&ov=grad&frame=3'
    # another recording (the document, seed and checkpoint typed into these fields): a fresh view
    assert links['recording'] == {'url': keep, 'fields': ['doc', 'seed', 'ckpt']}
    assert links['compare'] == {'url': f'view=head&token=3&layer=0&head=2&level=vector&budget=300&expand={E}'
                                       f'&grads=1&hl=pos:3&ov=grad&focus=pos3/layer0/attn', 'field': 'cmp'}
    assert links['leave_compare'] is None
    assert links['export'] == (f'view=head&token=3&layer=0&head=2&level=vector&budget=300&expand={E}&grads=1'
                               f'&ov=grad&focus=pos3/layer0/attn')
    # each crumb's link is its state's URL; a folded role opens beside the expansion (focus stays)
    assert links['crumbs'] == [st.canonical(dict(st.DEFAULTS, **c['to'])) for c in v['crumbs']]
    logits = next(k for k, d in v['nodes'].items() if d.get('path') == 'pos3/layer0/attn/head2/attn_logits')
    assert links['nodes'][logits] == (f'view=head&token=3&layer=0&head=2&level=vector&budget=300&expand={E}'
                                      f'&expand=pos3/layer0/attn/head2/attn_logits&grads=1&ov=grad&frame=3'
                                      f'&focus=pos3/layer0/attn')
    assert all('to' not in d for d in v['nodes'].values())       # one contract: the links


def test_a_tab_opens_at_the_position_the_user_went_into_not_the_last_one(server):
    # a head view of every position, one head's weights of position 2 expanded: the crumbs say
    # position 2, and so do the tabs and [ ] (the page took the position from the crumbs)
    status, v = get_json(server, '/api/view?view=head&layer=0&head=2&level=vector'
                                 '&expand=pos2/layer0/attn/head2/attn_weights')
    assert status == 200
    tabs = v['links']['tabs']
    assert tabs['token'] == 'token=2' and tabs['head'] == 'view=head&token=2&layer=0&head=2&level=auto'
    assert tabs['layer'] == 'view=layer&token=2&layer=0&level=auto'
    assert v['links']['prev'] == 'view=head&token=1&layer=0&head=2&level=vector'
    assert v['links']['chips']['on'] == 2
    status, v = get_json(server, '/api/view?view=head&layer=0&head=2')         # nowhere in particular: the last
    assert v['links']['tabs']['token'] == 'token=4' and v['links']['tabs']['layer'] == 'view=layer&layer=0&level=auto'
    assert v['links']['prev'] is None and v['links']['chips']['on'] is None


def test_the_param_views_links_and_its_typed_cell_read_by_the_one_parser(server):
    status, v = get_json(server, '/api/view?view=param&param=wte[20][5]&level=auto')
    assert status == 200
    matrix, cell = [c for c in v['links']['controls'] if c['field'] == 'param']
    assert matrix['kind'] == 'choice' and matrix['value'] == 'wte'
    to = {o[0]: o[2] for o in matrix['options']}
    # another matrix keeps the cell where it has it (lm_head is 27x16), else opens the matrix
    # (the page before gave layer0.attn_wq[20][5], outside its 16 rows: a 400)
    assert to['lm_head'] == 'view=param&param=lm_head[20][5]&level=auto'
    assert to['layer0.attn_wq'] == 'view=param&param=layer0.attn_wq&level=auto'
    assert cell == {'field': 'param', 'label': 'cell', 'kind': 'text', 'value': 'wte[20][5]', 'size': 18,
                    'url': 'view=param&level=auto', 'title': cell['title'], 'placeholder': 'layer0.attn_wq[3][5]'}
    assert v['links']['tabs']['param'] == 'view=param&param=wte[20][5]&level=auto'
    # the typed text goes into `param` of that URL; the server reads it (parse_param) or says why not
    status, body = get_json(server, f"/api/view?{cell['url']}&param=wte[3")
    assert status == 400 and '\n' not in body['error']
    assert body['error'].startswith("param 'wte[3' is not a name like 'wte' or a cell")
    status, ok = get_json(server, f"/api/view?{cell['url']}&param=wte[3][4]")
    assert status == 200 and ok['url'] == 'view=param&param=wte[3][4]&level=auto'
    # a matrix's heat map: a click on a cell opens that cell (the page fills in the row and column)
    status, v = get_json(server, '/api/view?view=param&param=wte&level=auto&depth=1')
    m = next(k for k, d in v['nodes'].items() if d['k'] == 'm')
    assert v['links']['cells'] == {m: {'url': 'view=param&level=auto', 'field': 'param', 'text': 'wte[{row}][{col}]'}}


def test_the_side_panels_nodes_are_selected_in_place_when_drawn_else_their_neighbourhood(server, trace):
    x = next(i for i in trace.nodes(pos=3, layer=0, head=2, role='attn_weights') if trace.children(i) and trace.uses(i))
    q = f'view=node&node={x}&depth=1&dir=ancestors&level=auto&sel={x}'     # its inputs drawn, its uses not
    status, v = get_json(server, f'/api/view?{q}')
    drawn = {d['id']: k for k, d in v['nodes'].items() if d['k'] == 's'}
    status, d = get_json(server, f'/api/node?{q}&id={x}')
    assert status == 200
    # the neighbourhood looks the way the node view on screen looks (ancestors)
    assert d['neighbourhood'] == f'view=node&node={x}&depth=2&dir=ancestors&level=auto&sel={x}'
    assert d['inputs'] and all(r['id'] in drawn for r in d['inputs'])
    assert d['uses'] and not any(r['id'] in drawn for r in d['uses'])
    for r in d['inputs']:
        i = r['id']
        assert r == dict(r, here=True, node=drawn[i], to=f'view=node&node={x}&depth=1&dir=ancestors&level=auto&sel={i}')
    for r in d['uses']:
        i = r['id']
        assert r == dict(r, here=False, node=None, to=f'view=node&node={i}&depth=2&dir=ancestors&level=auto&sel={i}')
    # a view not drawn (not in the server's cache): nothing is here, every node opens its neighbourhood
    status, d = get_json(server, f'/api/node?view=node&node={x}&depth=3&level=auto&id={x}')
    assert status == 200 and not any(r['here'] for r in d['inputs'] + d['uses'])


def test_a_scripts_trace_has_the_tabs_of_its_views_only(script_server):
    server, trace = script_server
    status, v = get_json(server, '/api/view')
    assert status == 200
    # the first function and the first line of the script (micrograd_style.py:79), as the page chose them
    assert v['links']['tabs'] == {
        'param': 'view=param&param=params[0][0]&level=auto', 'node': 'view=node&node=loss&depth=2&level=auto',
        'function': 'view=function&function=Layer.__call__&level=auto', 'line': 'view=line&line=79&level=auto'}
    assert v['links']['chips'] is None and v['links']['prev'] is None


def test_a_checkpoints_recording_drops_the_seed_from_the_url(cmp_server, ckpt_dir):
    from microgpt.checkpoint import save_checkpoint
    from microgpt.train import fresh_model
    path = ckpt_dir / 'seed7.json'
    save_checkpoint(path, *fresh_model(7))
    status, v = get_json(cmp_server, f'/api/view?doc=anna&seed=5&ckpt={path}')
    assert status == 200 and v['url'] == f'doc=anna&ckpt={path}' and v['key'] == f'anna|{path}|'


def test_every_page_script_is_loaded_served_and_at_most_600_lines(server):
    import re
    from importlib.resources import files
    html = get(server, '/')[2].decode()
    loaded = re.findall(r'<script src="/static/([\w.-]+)"></script>', html)
    assert '<script>' not in html                        # the CSP allows no inline script
    web = Path(files('graphviz_export.web'))
    sizes = {p.relative_to(web).as_posix(): len(p.read_text().splitlines()) for p in sorted(web.rglob('*.js'))}
    shared = {'stepper.js', 'format.js', 'viewbox.js'}   # web/static/: the player, the one escape/format, the camera
    assert {n for n in sizes if n.startswith('explorer/static/')} == {f'explorer/static/{n}' for n in loaded} - {
        f'explorer/static/{n}' for n in shared}
    assert all(f'static/{n}' in sizes and n in loaded for n in shared)
    over = {n: k for n, k in sizes.items() if k > 600}
    assert not over, f'JS files over 600 lines: {over}'
    for name in loaded:
        status, headers, body = get(server, '/static/' + name)
        assert status == 200 and headers['Content-Type'].startswith('text/javascript') and body
