"""Tours: the file format's errors, the HTML's contents, and the page played in a real headless browser."""

import json
import os
import re
import shutil

import pytest

from graphviz_export.steps.frames import frames as view_frames
from graphviz_export.view import build_view
from graphviz_export.web.tour import (
    TourError,
    build_tour_html,
    frame_svg,
    load_tour,
    parse_tour,
    write_frames,
)
from microgpt.recording import record_step
from tests.tiny_model import tiny_model

TOUR = """
title = "test tour"
doc = "emma"

[[stop]]
caption = "the loss's neighbourhood, backward"
node = "loss"
depth = 3
level = "scalar"

[[stop]]
caption = "forward"
node = "loss"
depth = 2
level = "scalar"
step = "forward"

[[stop]]
caption = "one head"
layer = 0
head = 1
token = 3

[[stop]]
caption = "a parameter and its update"
param = "layer0.attn_wq[3][5]"
update = true
frames = [2, 9]

[[stop]]
caption = "just a picture"
token = 1
level = "block"
step = "none"
"""

_TRACES = {}


def get_trace(doc, checkpoint, seed):
    if doc not in _TRACES:
        params, config, tok = tiny_model(seed)
        _TRACES[doc] = record_step(params, config, tok, doc)
    return _TRACES[doc]


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    tour = parse_tour(TOUR)
    html = build_tour_html(tour, get_trace)
    path = tmp_path_factory.mktemp('tour') / 'lecture.html'
    path.write_text(html, encoding='utf-8')
    data = json.loads(re.search(r'<script type="application/json" id="tour-data">(.*?)</script>', html, re.DOTALL)
                      .group(1).replace('<\\/', '</'))
    return tour, html, path, data


@pytest.mark.parametrize('text, message', [
    ('[[stop]]\ncaption = "x"\ntokn = 3', "stop 1: unknown key 'tokn'; allowed: caption"),
    ('[[stop]]\ntoken = 3', 'stop 1: every stop needs a caption'),
    ('[[stop]]\ncaption = "x"\nstep = "up"', "stop 1: step 'up' is not one of: backward, forward, none"),
    ('[[stop]]\ncaption = "x"\nframes = [5, 2]', 'stop 1: frames must be [first, last]'),
    ('[[stop]]\ncaption = "x"\ntoken = "3"', 'stop 1: token must be a whole number'),
    ('title = "t"', 'has no stops'),
    ('[[stop]\n', 'is not valid TOML'),
    ('colour = 1\n[[stop]]\ncaption = "x"', "unknown key 'colour'"),
])
def test_bad_tour_files_are_one_line(text, message):
    with pytest.raises(TourError, match=re.escape(message)):
        parse_tour(text)


def test_missing_file(tmp_path):
    with pytest.raises(TourError, match='tour file not found'):
        load_tour(tmp_path / 'nope.toml')


def test_example_tour_parses():
    tour = load_tour(os.path.join(os.path.dirname(__file__), '..', 'examples', 'backprop_tour.toml'))
    assert len(tour.stops) == 10 and all(s.caption for s in tour.stops)


def test_html_is_self_contained(built):
    _tour, html, _, data = built
    assert len(data['stops']) == 5 and html.count('<svg') == 5
    # nothing is fetched: no src/href to anything but in-page anchors
    assert not re.search(r'\b(?:src|href)="(?!#)', html.replace('xlink:href', 'x'))
    # the only URLs are XML namespace names (identifiers, never fetched)
    assert 'http://' not in re.sub(r'''xmlns(:\w+)?="[^"]*"|["']http://www\.w3\.org/[^"']*["']''', '', html)
    assert data['stops'][3]['range'] == [2, 9] and data['stops'][4]['frames'] is None
    # the update table is the explorer's (web/update_table.py): one cell here, its card, every digit
    trace = get_trace('emma', None, 42)
    cell = trace.param_nodes('layer0.attn_wq[3][5]')[0]
    upd = data['stops'][3]['update']
    assert 'id="updtable"' in upd and f'<tbody data-id="{cell}">' in upd
    assert f'data-k="grad" data-v="{trace.grad[cell]!r}"' in upd


def test_slide_frames(tmp_path):
    tour = parse_tour(TOUR.split('[[stop]]\ncaption = "forward"')[0])
    written = write_frames(tour, get_trace, tmp_path, write=lambda p, b: p.write_bytes(b))
    svgs = sorted(p for p in written if p.suffix == '.svg')
    fr = view_frames(build_view(get_trace('emma', None, 42), node='loss', depth=3, level='scalar'))
    assert len(svgs) == len(fr['frames']) + 1
    last = svgs[-1].read_text()
    assert 'class="node mg-current"' in last and 'class="node mg-pending"' not in last
    if shutil.which('rsvg-convert'):
        assert len([p for p in written if p.suffix == '.png']) == len(svgs)
    again = write_frames(tour, get_trace, tmp_path / 'svg-only', write=lambda p, b: p.write_bytes(b), png=False)
    assert [p.name for p in again] == [p.name for p in svgs]     # png=False: the same slides, no PNG


def test_frame_svg_classes(built):
    trace = get_trace('emma', None, 42)
    view = build_view(trace, node='loss', depth=2, level='scalar')
    from graphviz_export.view import render_view
    svg = render_view(view).decode()
    fr = view_frames(view)
    first = frame_svg(svg, fr, 1)
    loss = fr['frames'][0]['node']
    assert f'<g id="node-{loss}" class="node mg-current">' in first
    assert first.count('class="node mg-pending"') == len(fr['frames']) - 1


# -- in a real browser ---------------------------------------------------------------------
def test_tour_plays_offline_in_chromium(built, tmp_path, browser):
    _tour, _html, path, data = built
    errors, requests = [], []
    ctx = browser.new_context(offline=True, viewport={'width': 1400, 'height': 900})
    page = ctx.new_page()
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.on('request', lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    # the camera moves at once: a pan animated over each of the 142 frames of stop 3, played at 30 ms a
    # frame, kept Chromium painting all along (~12 s at load 20, once past the 20 s wait); nothing here
    # reads the camera (its pans: test_lecture_browser)
    page.evaluate('MicrogptCamera.animateMs = 0')
    assert page.evaluate('tour.stops') == 5
    for k, stop in enumerate(data['stops']):
        page.evaluate(f'tour.go({k})')
        fr = stop['frames']
        if fr is None:
            assert page.evaluate('tour.player()') is None
            continue
        first, last = stop['range']
        assert page.evaluate('tour.player().position()') == first
        # play to the end of the stop's range at top speed
        page.evaluate('tour.player().speed(20); tour.player().play()')
        page.wait_for_function(f'tour.player().position() >= {last} && !tour.player().playing()',
                               timeout=20000)
        assert page.evaluate('tour.player().position()') == last
        if last == len(fr['frames']) and fr['mode'] == 'backward':
            # every node final: no 'grad ?' or partial sum left; the panel shows the last frame's grad
            texts = page.evaluate(f"""Array.from(document.querySelectorAll('#stop-{k} svg g.node text'))
                                      .map(t => t.textContent)""")
            assert texts and not [t for t in texts if t.startswith(('grad ?', 'grad +=', '+= '))]
            pending = page.evaluate(f"document.querySelectorAll('#stop-{k} svg .mg-pending').length")
            assert pending == 0
            lastf = fr['frames'][-1]
            if 'grad' in lastf:
                shown = page.evaluate("parseFloat(document.querySelector('#panel .mg-grad').textContent)")
                assert shown == lastf['grad']
            # each scalar node's label shows its recorded grad (4 significant digits, as drawn)
            trace = get_trace('emma', None, 42)
            for name, info in fr['nodes'].items():
                if info['kind'] == 'scalar':
                    t = page.evaluate(f"""Array.from(document.querySelectorAll('#stop-{k} svg [id="node-{name}"] text'))
                                          .map(t => t.textContent).filter(s => s.startsWith('grad '))""")
                    assert t and float(t[0].split()[1]) == pytest.approx(trace.grad[info['id']], rel=1e-3,
                                                                          abs=1e-12)
        if stop['update'] and last == len(fr['frames']):
            assert page.evaluate("document.querySelectorAll('#update #updtable tr').length") > 1
        # <- and -> move one frame (within the range)
        page.keyboard.press('ArrowLeft')
        assert page.evaluate('tour.player().position()') == last - 1
        page.keyboard.press('ArrowRight')
        assert page.evaluate('tour.player().position()') == last
        assert f'frame={last}' in page.evaluate('location.hash')
    # the first stop's scrubber: one step of the range input moves one frame
    page.evaluate('tour.go(0)')
    page.focus('#scrub')
    page.keyboard.press('ArrowRight')
    assert page.evaluate('tour.player().position()') == 1
    # stepping is a class switch: time 30 steps (the budget is 50 ms each)
    ms = page.evaluate("""(() => { const p = tour.player(); const t0 = performance.now();
                          for (let i = 0; i < 30; i++) p.seek(i % p.count);
                          return (performance.now() - t0) / 30; })()""")
    assert ms < 50
    page.screenshot(path=str(tmp_path / 'tour.png'))
    assert errors == []
    assert all(u.startswith(('file://', 'data:')) for u in requests), requests


def test_a_tour_file_can_open_in_presentation_mode_for_a_screen_shape():
    tour = parse_tour('present = true\naspect = "4:3"\n[[stop]]\ncaption = "a"\ntoken = 1\n'
                      '[[stop]]\ncaption = "b"\ntoken = 2\naspect = "16:9"\n')
    assert tour.present and [s.view['aspect'] for s in tour.stops] == ['4:3', '16:9']     # a stop may set its own
    with pytest.raises(TourError, match=r"tour: aspect '16x9' is not one of: auto, 16:9"):
        parse_tour('aspect = "16x9"\n[[stop]]\ncaption = "a"\n')
    with pytest.raises(TourError, match='present must be true or false'):
        parse_tour('present = 1\n[[stop]]\ncaption = "a"\n')


# -- the example tour: each caption says what its view shows ---------------------------------------
@pytest.fixture(scope='module')
def example():
    """The example tour's stops with their views and frames, on the very step it records."""
    from microgpt.train import fresh_model
    tour = load_tour(os.path.join(os.path.dirname(__file__), '..', 'examples', 'backprop_tour.toml'))
    trace = record_step(*fresh_model(tour.seed), tour.doc)
    out = []
    for s in tour.stops:
        view = build_view(trace, **s.view)
        out.append((s, view, view_frames(view, s.step) if s.step != 'none' else None))
    return trace, out


def test_every_caption_of_the_example_tour_describes_the_view_it_shows(example):
    trace, stops = example
    names = [{n.name: n for n in view.folded.nodes} for _, view, _ in stops]
    loss = trace.meta['loss_id']
    # 1: forward, the loss's neighbourhood, values in the order computed
    s, view, fr = stops[0]
    assert 'Forward' in s.caption and fr['mode'] == 'forward' and view.selection.focus == (loss,)
    # 2: backward starts at the loss, grad 1
    s, view, fr = stops[1]
    assert 'grad is 1' in s.caption and fr['frames'][0]['node'] == f'n{loss}' and fr['frames'][0]['grad'] == 1.0
    # 3: the mean: every position's loss gets 1/5 of the upstream grad
    s, view, fr = stops[2]
    n = len(trace.positions())
    assert '1/5' in s.caption and n == 5
    # each position's loss_t: the last op of its position, read only by the mean
    per_position = [i for i in view.selection.nodes if trace.scope_of(i).role == 'loss' and trace.scope_of(i).pos is not None
                    and trace.op_name(i) != 'const' and not any(trace.scope_of(p).pos is not None for p in trace.parents(i))]
    assert len(per_position) == n and all(trace.grad[i] == pytest.approx(1 / n) for i in per_position)
    # 4: the last position block by block: lm_head, then the MLP, then attention, then the embedding
    s, view, fr = stops[3]
    order = [names[3][f['node']].scope.block for f in fr['frames'] if names[3][f['node']].side == 'interior']
    firsts = [order.index(b) for b in ('lm_head', 'mlp', 'attn', 'embed')]
    assert 'block by block' in s.caption and view.selection.query['token'] == 4 and firsts == sorted(firsts)
    # 5: the same position, vector level
    s, view, fr = stops[4]
    assert 'one level finer' in s.caption and view.folded.level == 'vector' and view.selection.query['token'] == 4
    # 6: one attention head at position 3
    s, view, fr = stops[5]
    assert 'head at position 3' in s.caption and view.selection.query == {'layer': 0, 'head': 2, 'token': 3}
    # 7: one multiply of that head's output: attn_w[h2][t1]@pos3 × v[8]@pos1
    s, view, fr = stops[6]
    (centre,) = view.selection.focus
    assert 'One multiply' in s.caption and trace.op_name(centre) == 'mul'
    assert trace.scope_path(centre) == 'pos3/layer0/attn/head2/head_out'
    assert [trace.name(c) for c in trace.children(centre)] == ['attn_w[h2][t1]@pos3', 'v[8]@pos1']
    assert all(trace.name(c) in s.caption for c in trace.children(centre))
    # 8: a parameter used at every position; its grad is the sum of its uses, then Adam moves it
    s, view, fr = stops[7]
    (cell,) = view.selection.focus
    uses = trace.uses(cell)
    assert 'used at every position' in s.caption and s.update
    assert sorted({trace.scope_of(p).pos for p, _, _ in uses}) == trace.positions()
    total = 0.0
    for _, _, c in uses:
        total += c
    assert total == trace.grad[cell]
    # 9: the whole layer at every position, block level
    s, view, fr = stops[8]
    assert 'every position' in s.caption and view.selection.kind == 'layer' and view.folded.level == 'block'
    assert view.selection.positions == tuple(trace.positions())
    # 10: wte: the rows of the letters in 'emma' and BOS get grads, the others stay 0
    s, view, fr = stops[9]
    rows, cols = trace.param_shapes['wte']
    base = trace.param_base['wte']
    with_grad = {r for r in range(rows) if any(trace.grad[base + r * cols + c] for c in range(cols))}
    tokens = set(trace.meta['tokens'][:-1])              # the inputs: BOS, e, m, m, a
    assert "letters in 'emma' and BOS" in s.caption and with_grad == tokens
