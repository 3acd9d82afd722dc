"""NaN and infinity shown as what they are, everywhere: the "my gradients are wrong" case.

A trace whose values are NaN, ±inf or near the largest double goes through every endpoint and
every kind of view (document, token, layer, head, parameter matrix and cell, node, frames both
ways, the update table, search, export): strict JSON with 'nan' / 'inf' / '-inf' where the
number is, never a 500. A script whose loss is NaN (tests/scripts/nan_loss.py) opens with
`explore SCRIPT` in Chromium, and the page says where the NaN starts, one click away."""

import json
import math
import re
from pathlib import Path

import pytest

from graphviz_export import build_view, render_view
from graphviz_export.draw.style import LEGEND_NONFINITE, NONFINITE
from graphviz_export.web.notebook import explorer
from graphviz_export.web.tour.build import _json_script
from microgpt.recording import record_step
from microgpt.recording.sums import fsum
from microgpt.train import fresh_model
from tests.explorer_helpers import get, running_server, stopped_in_the_end
from tests.test_explorer_browser import _missing
from tests.test_explorer_cli import _api, _printed, _start

ROOT = Path(__file__).resolve().parent.parent
INF, NAN = math.inf, math.nan


def strict(body):
    """The JSON of an answer, refusing bare NaN/Infinity as a browser's JSON.parse does."""
    def refuse(word):
        raise ValueError(f'bare {word} in JSON')
    return json.loads(body, parse_constant=refuse)


def variant(kind):
    """A recorded step of 'ab' with hostile numbers written into its columns."""
    params, config, tok = fresh_model(42)
    t = record_step(params, config, tok, 'ab')
    n = len(t)
    if kind == 'nan data':
        for i in range(n // 3, n, 7):
            t.data[i] = NAN
    elif kind == '±inf grads':          # the document view's share sums met -inf + inf (500)
        for k, i in enumerate(range(0, n, 5)):
            t.grad[i] = INF if k % 2 else -INF
    elif kind == 'every kind':
        for k in range(n):
            t.grad[k] = (NAN, INF, -INF, 1.0)[k % 4]
            if k % 3 == 0:
                t.data[k] = (NAN, INF, -INF)[k % 9 // 3]
    elif kind == 'near the largest double':     # finite, but squares and sums overflow
        for k in range(n):
            t.grad[k] = (1e200, -1e308, 1e308, 3e-320)[k % 4]
            t.data[k] = (1e308, -1e308, 1e154)[k % 3]
        for e in range(len(t.local)):
            t.local[e] = (1e300, -1e300, INF, NAN)[e % 4]
    t._cache.clear()
    return t


KINDS = ('nan data', '±inf grads', 'every kind', 'near the largest double')
PATHS = ('/api/info', '/api/view?view=doc', '/api/view?view=doc&level=vector', '/api/view?view=token&token=0',
         '/api/view?view=token&token=1&level=vector', '/api/view?view=token&token=1&grads=1&level=vector',
         '/api/view?view=layer&layer=0', '/api/view?view=head&layer=0&head=0&token=1&level=scalar',
         '/api/view?view=param&param=wte', '/api/view?view=param&param=layer0.attn_wq[3][5]',
         '/api/view?view=node&node=loss', '/api/view?view=node&node=loss&depth=3&level=scalar',
         '/api/view?view=token&token=1&level=vector&expand=pos1/layer0/attn/head0/*',
         '/api/frames?view=node&node=loss', '/api/frames?view=node&node=loss&mode=forward',
         '/api/frames?view=token&token=1', '/api/frames?view=doc', '/api/update?view=token&token=1',
         '/api/update?view=param&param=wte&sort=delta', '/api/node?id=0', '/api/node?id=500', '/api/node?id=3000',
         '/api/node?id=500&view=doc', '/api/node?id=3000&view=token&token=1&level=vector', '/api/check?view=doc',
         '/api/search?q=pos:1', '/api/suggest?q=l', '/api/export?fmt=json&view=doc',
         '/api/export?fmt=dot&view=token&token=1', '/api/export?fmt=svg&view=layer&layer=0')


@pytest.mark.parametrize('kind', KINDS)
def test_every_endpoint_answers_a_trace_of_nan_and_inf_in_strict_json(kind):
    with running_server(trace=variant(kind)) as s:
        for path in PATHS:
            status, headers, body = get(s, path)
            assert status == 200, (path, body[:300])
            if headers['Content-Type'].startswith('application/json'):
                strict(body)


def test_an_answer_is_written_as_json_safe_writes_it_with_or_without_nan():
    """json_answer writes an answer as it is and makes json_safe's copy only when a NaN or infinity
    is in it: the same bytes as the copy's text either way (tuples as lists, -0.0, every digit)."""
    from graphviz_export.web.explorer.answers import json_answer
    from microgpt.files import json_safe
    plain = {'nodes': {'g1': {'mag': [0.1 + 0.2, -0.0], 'ids': (1, 2)}}, 'title': 'x\u00b7W → y', 'n': 3}
    broken = dict(plain, nodes={'g1': {'mag': [NAN, -INF], 'runs': ((1, 2),)}})
    for obj in (plain, broken):
        want = json.dumps(json_safe(obj), ensure_ascii=False, allow_nan=False).encode('utf-8')
        assert json_answer(200, obj).body == want
    assert strict(json_answer(200, broken).body)['nodes']['g1']['mag'] == ['nan', '-inf']


def test_the_notebook_door_answers_strict_json_too():
    """The widget asks Api.answer itself, not through the HTTP server: its answers are strict JSON
    with the numbers as text (the notebook merge's Api.answer dumped NaN with allow_nan=False: 500)."""
    t = variant('every kind')
    bad = next(i for i in range(len(t)) if t.data[i] == INF and t.grad[i] == -INF)
    api = explorer(t)
    status, body, ctype, _ = api.answer('info', '')
    assert (status, ctype) == (200, 'application/json; charset=utf-8')
    assert strict(body)['loss'] == repr(t.loss)
    status, body, _, _ = api.answer('node', f'id={bad}')
    assert status == 200 and (strict(body)['data'], strict(body)['grad']) == ('inf', '-inf')


def test_the_numbers_are_what_they_are_in_info_node_view_and_update():
    t = variant('every kind')
    bad = next(i for i in range(len(t)) if t.data[i] == INF and t.grad[i] == -INF)
    with running_server(trace=t) as s:
        info = strict(get(s, '/api/info')[2])
        node = strict(get(s, f'/api/node?id={bad}')[2])
        view = strict(get(s, '/api/view?view=doc')[2])
        upd = strict(get(s, '/api/update?view=param&param=wte&sort=delta')[2])
    shown = [x if math.isfinite(x) else repr(x) for x in t.position_losses()]
    assert info['loss'] == repr(t.loss) and [d['loss'] for d in info['tokens']] == shown and '-inf' in shown
    assert (node['data'], node['grad']) == ('inf', '-inf')
    assert info['nonfinite']['data']['id'] == 0 and info['nonfinite']['data']['value'] == 'nan'
    assert 'nan' in view['svg'] and NONFINITE in view['svg'] and LEGEND_NONFINITE in view['svg']
    first = upd['rows'][0]          # largest |change| first: a NaN change is the largest there is
    assert first['delta'] == 'nan' and first['grad'] in ('nan', 'inf', '-inf')


def test_a_view_of_grads_near_the_largest_double_draws_inf_where_a_norm_overflows():
    t = variant('near the largest double')
    view = build_view(t, document=True, level='block')
    svg = render_view(view, 'svg').decode()
    assert '‖grad‖ inf' in svg or re.search(r'‖grad‖\s*inf', svg), svg[:2000]


def test_exact_sums_answer_nan_and_inf_where_math_fsum_raises():
    assert math.isnan(fsum([INF, -INF])) and math.isnan(fsum([1e308, 1e308, NAN]))
    assert fsum([1e308, 1e308]) == INF and fsum([-1e308, -1e308]) == -INF
    assert fsum([1e308, 1e308, -1e308]) == 1e308          # exact: not inf, as a running float sum would give
    assert fsum(x for x in (0.1, 0.2, 0.3)) == math.fsum([0.1, 0.2, 0.3])


def test_a_tour_writes_strict_json_for_the_page_to_parse():
    assert strict(_json_script({'grad': NAN, 'data': [INF, -INF, 1.5]})) == {'grad': 'nan', 'data': ['inf', '-inf', 1.5]}


# -- the script whose loss is NaN, in the browser ----------------------------------------------
needs_browser = pytest.mark.skipif(bool(_missing), reason=f"browser tests need {' and '.join(_missing)}")


@needs_browser
def test_a_script_whose_loss_is_nan_opens_and_the_page_shows_where_the_nan_starts(browser):
    script = ROOT / 'tests' / 'scripts' / 'nan_loss.py'
    with stopped_in_the_end(_start(str(script), '--timeout', '60')) as p:
        origin, token = _printed(p.stdout.readline())
        status, info = _api(origin, token, '/api/info')
        assert status == 200 and info['loss'] == 'nan'
        # x * w overflows: the first value in forward order that is not finite (ids: w 0, b 1, x 2)
        assert info['nonfinite']['data'] == {'id': 3, 'name': 'mul #3', 'value': 'inf',
                                             'to': 'view=node&node=3&depth=2&level=auto&sel=3'}
        ctx = browser.new_context(viewport={'width': 1366, 'height': 768}, bypass_csp=True)
        try:
            page = ctx.new_page()
            errors = []
            page.on('pageerror', lambda e: errors.append(str(e)))
            page.goto(f'{origin}/#token={token}')
            page.wait_for_selector('#graph svg g.node')
            assert 'loss nan' in page.locator('#positions .lbl').inner_text()
            chip = page.locator('#positions .chip.nonfinite[data-k=data]')
            assert chip.inner_text() == '⚠ first NaN/inf: mul #3 = inf'
            assert page.locator('#panel a[data-k=data]').inner_text() == 'mul #3'     # and in the panel
            chip.click()                                                               # one click
            page.wait_for_function('window.explorer.view.state.node === "3" || window.explorer.view.state.node === 3')
            page.wait_for_selector('#panel #facts')
            assert page.locator('#panel td[data-k=data]').inner_text() == 'inf'
            assert page.locator('#panel h3').inner_text().startswith('mul #3')
            page.select_option('#overlay', 'grad')                                     # colour by |grad|
            assert page.locator('#graph g.node.ovnan').count() >= 1
            assert 'NaN or inf' in page.locator('#ovlegend').inner_text()
            assert errors == []
        finally:
            ctx.close()
    assert 'Traceback' not in p.err

