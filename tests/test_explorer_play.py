"""Play training and the backprop lab in the explorer (issue 26): the API over real HTTP, and the
page in headless chromium.

Oracles: the played run's step k is recorded independently here (the port's own loop, then
record_step), and drawn afresh with the ordinary pipeline; what the page shows after playing
on its one layout must read as that fresh drawing reads (texts and fills of every node).
"""

import json

import pytest

from graphviz_export.view import build_view, render_view
from microgpt.checkpoint import fresh_model
from microgpt.checks import faults
from microgpt.recording.lab import lab_step
from microgpt.recording.step import record_step
from microgpt.train import NUM_STEPS, start_run, train
from tests.conftest import names_path, needs_names
from tests.explorer_helpers import get_json, running_server
from tests.svg_read import read_svg

VIEW = 'view=token&token=2'


@pytest.fixture(scope='module')
def server():
    with running_server(doc='emma', seed=42, data=str(names_path()), faults=faults) as s:
        yield s


@pytest.fixture(scope='module')
def run3():
    """The reference run after 3 steps and 'emma' recorded on it, made here."""
    run = start_run(names_path().read_text().split())
    train(run, 3, schedule=NUM_STEPS)
    return run, record_step(run.params, run.config, run.tokenizer, 'emma')


def _api(server, path):
    status, body = get_json(server, path)
    return status, body


@needs_names
def test_node_and_update_answer_for_the_played_step(server, run3):
    run, trace = run3
    status, body = _api(server, '/api/node?id=43894&train=3')
    assert status == 200, body
    assert (float(body['data']), float(body['grad'])) == (trace.data[43894], trace.grad[43894])
    cell = trace.param_base['layer0.attn_wq'] + 3 * 16 + 5
    status, upd = _api(server, '/api/update?view=param&param=layer0.attn_wq[3][5]&train=3')
    assert status == 200, upd
    assert upd['source'] == "the played run's optimizer after 3 of 1000 steps (the update of step 4)"
    row = next(r for r in upd['rows'] if r['id'] == cell)
    assert float(row['m_prev']) == run.optimizer.m[cell] and float(row['grad']) == trace.grad[cell]


@needs_names
def test_play_steps_on_one_layout(server, run3):
    """/api/play answers numbers for the run's layout; the layout is made once per view per run."""
    api = server.api
    status, v0 = _api(server, f'/api/view?{VIEW}&train=0')
    assert status == 200, v0
    layouts = api.layouts
    status, played = _api(server, f'/api/play?{VIEW}&train=0&steps=3')
    assert status == 200, played
    assert [s['step'] for s in played['steps']] == [1, 2, 3] and played['url'].endswith('train=3')
    status, v3 = _api(server, f'/api/view?{VIEW}&train=3')
    status, frames = _api(server, f'/api/frames?{VIEW}&train=3')
    assert status == 200
    assert api.layouts == layouts                       # no layout for steps 1..3, the view or its frames
    assert v3['svg'] == v0['svg'] and v3['live']['step'] == 3
    _, trace = run3
    fresh = read_svg(render_view(build_view(trace, token=2, level='block'), 'svg'))['nodes']
    last = played['steps'][-1]['nodes']
    for name, got in last.items():
        texts, fill = [t[0] for t in got[:-2]], got[-2]
        assert all(t in fresh[name]['texts'] for t in texts), name
        assert fill in fresh[name]['fills'], name
    assert v3['live']['now'] == last
    assert played['steps'][-1]['doc_loss'] == trace.loss
    # the step-through of step 3 ends on step 3's numbers: the final text of each grad field
    name = next(iter(last))
    grad_field = frames['nodes'][name]['fields'][0]
    assert grad_field['drawn'] == last[name][1][0]


@needs_names
def test_lab_and_step_compare_views(server):
    status, v = _api(server, '/api/view?lab=recursive')
    assert status == 200, v
    first = v['compare']['first']
    assert (first['id'], first['op'], first['path']) == (43800, 'add', 'pos4/loss/probs')
    assert 'passed its grad on when 1 of its 2 uses had arrived' in ' '.join(first['notes'])
    assert 'node=43800' in v['links']['first'] and 'lab=recursive' in v['links']['first']
    status, v = _api(server, '/api/view?lab=exp-x2&view=node&node=43797&depth=1')
    assert status == 200 and v['highlight'] == [] or 'n43797' in v['svg']
    status, v = _api(server, f'/api/view?{VIEW}&train=3&cmp=train:1')
    assert status == 200, v
    assert v['compare']['labels'] == ['step 1', 'step 3'] and v['compare']['first'] is not None


@needs_names
def test_the_outlined_group_says_the_range_of_what_it_holds(server):
    """At block level the first wrong node of lab=recursive is inside the loss block, whose 27
    values (what leaves it) have equal grads in both backwards: their range alone read
    "\u0394grad 0 \u2026 0" beside a red outline. The outlined group's figures are those of all its
    ops but constants, recomputed here from the lab's two backwards."""
    status, v = _api(server, '/api/view?lab=recursive')
    assert status == 200, v
    outlined = [n for n in read_svg(v['svg'])['nodes'].values() if '#e41a1c' in n.get('strokes', ())]
    assert len(outlined) == 1, outlined
    texts = outlined[0]['texts']
    lab = lab_step(*fresh_model(42), 'emma', 'recursive')     # the server's model: no checkpoint, seed 42
    c, w = lab.correct, lab.wrong
    held = [i for i in range(len(c.op)) if c.scope_path(i).startswith('pos4/loss')]
    assert len(held) == 166 and '27 values \u00b7 166 ops' in texts      # the loss block of position 4
    diffs = [w.grad[i] - c.grad[i] for i in held if c.op_name(i) != 'const']
    lo, hi = min(diffs), max(diffs)
    assert (lo, hi) != (0, 0) and lo < 0
    assert f'\u0394grad in its 166 ops {lo:.4g} \u2026 {hi:.4g}' in texts, texts


@needs_names
@pytest.mark.parametrize('query, message', [
    ('train=1001', 'train must be in 0..1000, got 1001'),
    ('train=0&lr=0', 'lr must be a learning rate in (0, 1]'),
    ('lab=nope', "lab 'nope' is not one of: recursive, twice, assign, exp-x2"),
    ('lab=Bad!', "lab 'Bad!' is not a lab mode"),
    ('cmp=train:1', 'compares steps of a played run: give train=k too'),
    ('train=2&cmp=steps:3', 'with train=k, compare with cmp=train:J'),
    ('train=0&tdoc=hi!', "tdoc: train_doc:"),
    ('lab=twice&train=1', 'leave train and cmp first'),
])
def test_bad_live_fields_are_one_line_400s(server, query, message):
    status, body = _api(server, f'/api/view?{query}')
    assert status == 400 and message in body['error'], body


@needs_names
def test_play_refusals(server):
    assert _api(server, '/api/play?steps=1')[1]['error'].startswith('play needs train=k')
    assert 'steps must be in 1..10' in _api(server, '/api/play?train=0&steps=11')[1]['error']


def test_a_server_without_the_fault_registry_offers_only_the_labs_own_modes():
    with running_server(doc='emma') as s:
        status, body = get_json(s, '/api/view?lab=exp-x2')
        assert status == 400 and body['error'] == "lab 'exp-x2' is not one of: recursive, twice, assign"


# -- the page ---------------------------------------------------------------------------------
def _texts_and_fills(pg):
    return pg.evaluate('''() => Object.fromEntries([...document.querySelectorAll('#graph g.node')].map(g =>
        [g.querySelector('title').textContent, {texts: [...g.querySelectorAll('text')].map(t => t.textContent),
         fills: [...g.querySelectorAll('polygon, path')].map(s => s.getAttribute('fill')),
         box: [...g.querySelectorAll('polygon, path')].map(s => s.getAttribute('points') || s.getAttribute('d'))}]))''')


@needs_names
def test_playing_in_the_page_keeps_the_layout_and_shows_step_k(server, browser, run3):
    ctx = browser.new_context(viewport={'width': 1366, 'height': 768}, bypass_csp=True)
    pg = ctx.new_page()
    errors = []
    pg.on('pageerror', lambda e: errors.append(str(e)))
    try:
        pg.goto(server.link(VIEW + '&train=0'))
        pg.wait_for_function('window.explorer && window.explorer.view && window.explorer.view.live')
        before = _texts_and_fills(pg)
        pg.evaluate('document.querySelector("#graph svg").dataset.mark = "first"')
        layouts = server.api.layouts
        pg.fill('#playn', '3')
        pg.click('#playbtn')
        pg.wait_for_function('explorer.play.step === 3 && !explorer.play.playing && explorer.view.live.step === 3 '
                             '&& !document.querySelector("#busy:not([hidden])")', timeout=180_000)
        assert 'train=3' in pg.url
        assert pg.evaluate('document.querySelector("#graph svg").dataset.mark') == 'first'    # the same <svg>
        assert server.api.layouts == layouts
        after = _texts_and_fills(pg)
        assert {k: v['box'] for k, v in after.items()} == {k: v['box'] for k, v in before.items()}
        _, trace = run3
        fresh = read_svg(render_view(build_view(trace, token=2, level='block'), 'svg'))['nodes']
        changed = 0
        for name, shown in after.items():
            if name not in fresh or name.startswith('legend') or not fresh[name]['texts']:
                continue
            assert shown['texts'] == fresh[name]['texts'], name
            changed += shown['texts'] != before[name]['texts']
            assert [f for f in shown['fills'] if f != 'none'] == [f for f in fresh[name]['fills'] if f != 'none'], name
        assert changed >= 20                          # the numbers did move
        run, _ = run3     # the step line: step 3's training loss (the document trained at step 3), not the shown one's
        assert pg.text_content('#playstep') == f'step 3 / 1000 \u00b7 training loss {run.losses[2]:.4g} \u00b7 lr 0.01'
        base = pg.text_content('#losschart line.baseline title')
        assert base == 'uniform baseline: \u2212log(1/27) = 3.296'
        assert pg.locator('#losschart path.train').get_attribute('d').count('L') == 2     # 3 steps: 3 points
        pg.click('#losschart')          # folded to its legend, so it does not cover the picture; and back
        assert not pg.is_visible('#losschart svg') and pg.is_visible('#losschart .legend')
        pg.click('#losschart')
        assert pg.is_visible('#losschart svg')
        # a reload lands on the same step, same numbers
        pg.reload()
        pg.wait_for_function('window.explorer && window.explorer.view && window.explorer.view.live '
                             '&& window.explorer.view.live.step === 3')
        assert {k: v['texts'] for k, v in _texts_and_fills(pg).items()} == {k: v['texts'] for k, v in after.items()}
        assert errors == []
    finally:
        ctx.close()


@needs_names
def test_the_lab_select_draws_the_difference_and_leads_to_the_first_node(server, browser):
    ctx = browser.new_context(viewport={'width': 1366, 'height': 768}, bypass_csp=True)
    pg = ctx.new_page()
    try:
        pg.goto(server.link(VIEW))
        pg.wait_for_function('window.explorer && window.explorer.view && window.explorer.info')
        pg.select_option('#lab', 'assign')
        pg.wait_for_selector('#gofirst', timeout=120_000)
        assert 'lab=assign' in pg.url
        assert 'with = only the last contribution stays' in pg.text_content('#comparebar')
        pg.click('#gofirst')
        pg.wait_for_function('String(explorer.view.state.node) === "43801"', timeout=120_000)
        assert 'sel=43801' in pg.url
        red = pg.evaluate('[...document.querySelectorAll("#graph g.node")].filter(g => '
                          '[...g.querySelectorAll("polygon, path")].some(s => s.getAttribute("stroke") === "#e41a1c"))'
                          '.map(g => g.querySelector("title").textContent)')
        assert red == ['n43801']
    finally:
        ctx.close()


def test_the_lab_tour_opens_from_disk_offline(browser, tmp_path):
    """examples/backprop_lab.toml built by the CLI, opened from file:// with every network request refused."""
    from click.testing import CliRunner

    from microgpt_graph.cli import main
    out = tmp_path / 'lab.html'
    result = CliRunner().invoke(main, ['tour', 'examples/backprop_lab.toml', '-o', str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_text()
    page = json.loads(data[data.index('id="tour-data">') + len('id="tour-data">'):data.index('</script>',
                                                                                      data.index('id="tour-data"'))])
    assert [s['title'] for s in page['stops']][:4] == ['Why does backward need a topological sort?',
                                                        'What if I call backward() twice?',
                                                        'backward() twice: what does Adam do with it?', '= or += ?']
    ctx = browser.new_context(viewport={'width': 1366, 'height': 768}, offline=True)
    pg = ctx.new_page()
    asked = []
    pg.route('**/*', lambda r: (asked.append(r.request.url), r.abort()) if not r.request.url.startswith('file:')
             else r.continue_())
    errors = []
    pg.on('pageerror', lambda e: errors.append(str(e)))
    try:
        pg.goto(out.as_uri())
        pg.wait_for_selector('#stop-0:not([hidden]) svg')
        assert 'topological' in pg.text_content('#caption')
        titles = pg.evaluate('[...document.querySelectorAll("#stop-0 g.node")].filter(g => [...g.querySelectorAll('
                             '"polygon, path")].some(s => s.getAttribute("stroke") === "#e41a1c"))'
                             '.map(g => g.querySelector("title").textContent)')
        assert titles == ['n43800']          # the first diverging node of the recursive backward, outlined
        pg.keyboard.press('PageDown')
        assert 'twice' in pg.text_content('#caption')
        assert asked == [] and errors == []
    finally:
        ctx.close()


# -- a user's script: its backward() calls 1, 2, 3 played on one layout -----------------------
def test_a_scripts_recorded_calls_play_on_one_layout():
    from microgpt.recording.script import record_script
    calls = [record_script('examples/own_script/micrograd_mlp.py', step=k) for k in (1, 2, 3)]
    with running_server(trace=calls[0], calls=calls[1:]) as s:
        status, v0 = get_json(s, '/api/view?view=node&node=loss&train=0')
        assert status == 200, v0
        layouts = s.api.layouts
        status, played = get_json(s, '/api/play?view=node&node=loss&train=0&steps=2')
        assert status == 200, played
        assert [x['doc_loss'] for x in played['steps']] == [calls[1].loss, calls[2].loss]
        assert s.api.layouts == layouts
        import graphviz_export.web.explorer.state as st
        options = st.build_kwargs(st.parse('view=node&node=loss'))      # the page's view of it (level block)
        fresh = read_svg(render_view(build_view(calls[2], **options), 'svg'))['nodes']
        for name, got in played['steps'][-1]['nodes'].items():
            assert all(t[0] in fresh[name]['texts'] for t in got[:-2]), name
        status, body = get_json(s, '/api/play?view=node&node=loss&train=2&steps=1')
        assert status == 400 and body['error'] == "the script's recorded calls end at step 2 (call 3)"
        status, body = get_json(s, '/api/view?view=node&node=loss&train=2&lr=0.1')
        assert status == 400 and 'no seed, lr or tdoc' in body['error']


def test_calls_of_another_graph_are_refused(recorded_christopher):
    from microgpt.recording.play import ScriptCalls
    from microgpt.recording.step import record_step as rec
    from microgpt.train import fresh_model
    other = rec(*fresh_model(), 'emma')
    with pytest.raises(Exception, match=r"backward\(\) call 2 of the script has another graph than call 1 "
                                        r"\(column 'op' differs\)"):
        ScriptCalls([recorded_christopher, other])


def test_explore_calls_needs_a_script():
    from click.testing import CliRunner

    from microgpt_graph.cli import main
    result = CliRunner().invoke(main, ['explore', '--calls', '3', '--no-browser'])
    assert result.exit_code == 2 and "--calls records a SCRIPT's backward() calls; give a SCRIPT" in result.output
