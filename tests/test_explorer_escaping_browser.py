"""Every text a trace carries reaches the explorer's page as text, never as markup, in a real Chromium.

A shared trace file is the attacker's pen: its document, characters, token strings, parameter
names, scope blocks and roles, and a script's recorded_from (file, class, convention), op names,
source files (the line's and the op's), function names and code lines are all free text the loaders accept. Each such
field of a port trace and of a script trace (tests/scripts/micrograd_style.py) here holds

    " data-inj="FIELD" '><i class="inj">FIELD</i>

— markup for a text context (an <i class="inj"> element), and an attribute break-out for a
quoted attribute of either quote (a data-inj attribute). The traces go through the real loader
(JSON), the real server and the page in Chromium, through every state that shows a text of the
trace: the first view, the document view (every block and role), a node's side
panel (its name, its inputs and uses, the script line that made it), search results, a script's
views by function and by line. In each state the test asserts that no element with class `inj` and
no `data-inj` attribute exists anywhere in the document (the SVG included), and that the field was
really shown: its text, literally, in the page's text or an attribute (so a state that stopped
showing a field fails here instead of passing with nothing to escape). The CSP is bypassed: what
is checked is the markup, not whether a script would run (the CSP stops that; an injected link or
form would still work)."""

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from microgpt.recording import Trace
from microgpt.recording.codecs import json as json_codec
from tests.explorer_helpers import running_server
from tests.test_explorer_browser import _missing
from tests.trace_mutants import clone, port_plain, script_plain

if _missing:
    pytestmark = pytest.mark.skip(reason=f"browser tests need {' and '.join(_missing)}")

SCRIPTS = Path(__file__).parent / 'scripts'


def hostile(field):
    return f'" data-inj="{field}" \'><i class="inj">{field}</i>'


SHOWN = re.compile(r'<i class="inj">([^<]*)</i>')

# The page's text and every attribute value, the SVG's included; and what was injected.
LOOK = '''() => {
  const parts = [document.body.textContent, document.title];   // as written (CSS may upper-case)
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) parts.push(a.value);
    if (el instanceof SVGElement && (el.tagName === 'text' || el.tagName === 'title')) parts.push(el.textContent);
  }
  return {injected: [...document.querySelectorAll('.inj, [data-inj]')].map(e => e.outerHTML.slice(0, 120)),
          text: parts.join('\\n')};
}'''


def hostile_port_trace():
    """The port's step of 'a' with every free text hostile. A parameter's name is also the role of
    its cells' scope (the loader checks they agree), so both change."""
    m = clone(port_plain())
    m['meta'].update(doc=hostile('doc'), chars=hostile('chars'),
                     token_strs=[hostile('token0'), hostile('token1'), hostile('token2')])
    assert m['params'][0][0] == m['scopes'][1][4] == 'wte'
    m['params'][0][0] = m['scopes'][1][4] = hostile('param')
    block, role = 2, 4          # Scope fields: pos, layer, block, head, role
    ops = next(k for k, s in enumerate(m['scopes']) if s[role] == 'embed')
    m['scopes'][ops][block], m['scopes'][ops][role] = hostile('block'), hostile('role')
    return Trace.from_json(json_codec.encode(m))


def hostile_script_trace(folder):
    m = clone(script_plain(folder, SCRIPTS))
    rf = m['meta']['recorded_from']
    for k in ('script', 'class', 'convention', 'params_from'):
        rf[k] = hostile(f'recorded_from.{k}')
    rf['params_globals'] = [hostile('recorded_from.params_globals')]
    m['ops'] = [hostile('op')]                      # the script's own op (its tanh)
    for s in m['sources']:                          # file, line, functions, code, def file, ...
        s[0], s[2], s[3], s[4] = hostile('file'), [hostile('function')], hostile('code') + s[3], hostile('def_file')
    assert m['params'][0][0] == m['scopes'][5][4] == 'params'
    m['params'][0][0] = m['scopes'][5][4] = hostile('param')
    m['scopes'][2][2], m['scopes'][2][4] = hostile('block'), hostile('role')
    return Trace.from_json(json_codec.encode(m))


class Visit:
    """The page of one server; each look() asserts nothing was injected and returns the fields shown."""

    def __init__(self, browser, server):
        self.server = server
        self.context = browser.new_context(viewport={'width': 1366, 'height': 768}, bypass_csp=True)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on('pageerror', lambda e: self.errors.append(str(e)))
        self.seen = {}

    def open(self, query=''):
        self.page.goto(self.server.link(query))
        self.page.wait_for_function('window.explorer && explorer.view && explorer.info', timeout=60000)
        assert self.page.locator('#msg').is_hidden(), (query, self.page.locator('#msg').inner_text())
        return self.look(query or 'the first view')

    def look(self, what):
        got = self.page.evaluate(LOOK)
        assert got['injected'] == [], (what, got['injected'])
        fields = set(SHOWN.findall(got['text']))
        self.seen[what] = fields
        return fields

    def search(self, text):
        self.page.fill('#q', text)
        self.page.press('#q', 'Enter')
        self.page.wait_for_selector('#results .row.match')
        return self.look(f'search {text}')

    def suggest(self, typed):
        self.page.fill('#q', '')
        self.page.click('#q')
        self.page.keyboard.type(typed, delay=20)
        self.page.wait_for_selector('#results .row.sug')
        return self.look(f'suggestions for {typed}')


def test_every_text_of_a_port_trace_is_shown_as_text(browser):
    trace = hostile_port_trace()
    cell = 0                    # the first cell of the first matrix (the parameter renamed)
    embed = next(i for i in range(len(trace)) if trace.scope_of(i).role == hostile('role'))
    with running_server(trace=trace) as server:
        v = Visit(browser, server)
        try:
            assert {'doc', 'token0', 'token1', 'token2'} <= v.open()
            assert {'block', 'role', 'param'} <= v.open('view=doc')
            v.open(f'view=node&node={cell}&depth=1&level=auto&sel={cell}')
            v.page.wait_for_selector('#panel #facts')
            assert 'param' in v.look('the panel of a cell')
            v.open(f'view=node&node={embed}&depth=1&level=auto&sel={embed}')
            v.page.wait_for_selector('#panel #facts')
            assert 'role' in v.look('the panel of an embed op')
            assert 'role' in v.search(str(embed))
            assert 'role' in v.suggest('role:')
            shown = set().union(*v.seen.values())
            # meta.chars is the tokenizer's alphabet: the page never shows it
            assert shown == {'doc', 'token0', 'token1', 'token2', 'param', 'block', 'role'}, v.seen
            assert v.errors == []
        finally:
            v.context.close()


def test_every_text_of_a_script_trace_is_shown_as_text(browser, tmp_path):
    trace = hostile_script_trace(tmp_path)
    op = next(i for i in range(len(trace)) if trace.op_name(i) == hostile('op'))
    with running_server(trace=trace) as server:
        v = Visit(browser, server)
        try:
            assert {'recorded_from.script', 'recorded_from.class', 'recorded_from.convention', 'op',
                    'function'} <= v.open()
            assert {'block', 'role', 'param'} <= v.open('view=doc')
            assert 'function' in v.open(f'view=function&function={quote(hostile("function"))}')
            v.open(f'view=node&node={op}&depth=1&level=auto&sel={op}')
            v.page.wait_for_selector('#panel #code')
            assert {'op', 'file', 'function', 'code', 'def_file'} <= v.look('the panel of the script op')
            assert 'role' in v.search(str(op))
            assert 'role' in v.suggest('role:')
            shown = set().union(*v.seen.values())
            # what the page never shows: how the parameters were found (params_from, params_globals)
            assert shown == {'recorded_from.script', 'recorded_from.class', 'recorded_from.convention', 'op',
                             'file', 'function', 'code', 'def_file', 'param', 'block', 'role'}, v.seen
            assert v.errors == []
        finally:
            v.context.close()


def test_every_text_of_a_tour_file_is_shown_as_text(browser, tmp_path):
    """A shared tour is the attacker's pen too: its title, and each stop's caption and title, reach
    the player as text (the tour's page: the title in <title> and <h1>, captions and stop titles put
    in by the player; a '</script>' must not end the page's JSON early)."""
    from graphviz_export.web.tour import build_tour_html, parse_tour
    from microgpt.recording import record_step
    from tests.tiny_model import tiny_model

    def toml(s):
        return json.dumps(s, ensure_ascii=False)         # a TOML basic string is a JSON string
    stops = ''.join(f'[[stop]]\ncaption = {toml(hostile(f"caption{k}") + "</script>")}\n'
                    f'title = {toml(hostile(f"title{k}"))}\ntoken = {k}\nstep = "none"\n' for k in (1, 2))
    tour = parse_tour(f'title = {toml(hostile("tour"))}\ndoc = "ab"\n' + stops)
    params, config, tok = tiny_model(42)
    trace = record_step(params, config, tok, 'ab')
    path = tmp_path / 'tour.html'
    path.write_text(build_tour_html(tour, lambda doc, ckpt, seed: trace), encoding='utf-8')
    ctx = browser.new_context(offline=True, bypass_csp=True)
    try:
        page = ctx.new_page()
        errors = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        seen = set()
        for k in (0, 1):
            page.evaluate(f'tour.go({k})')
            got = page.evaluate(LOOK)
            assert got['injected'] == [], got['injected']
            seen |= {f for f in ('tour', f'caption{k + 1}', f'title{k + 1}') if hostile(f) in got['text']}
            assert hostile(f'caption{k + 1}') + '</script>' in got['text']
    finally:
        ctx.close()
    assert seen == {'tour', 'caption1', 'title1', 'caption2', 'title2'} and errors == []


def test_the_name_of_an_offered_checkpoint_is_shown_as_text(browser, tmp_path):
    """A folder of checkpoints the user offers (--checkpoint DIR) may hold a file someone else named:
    its name reaches the compare bar and the panel as text. (A file name holds no '/': the markup
    here leaves its element unclosed.)"""
    from microgpt.checkpoint import save_checkpoint
    from microgpt.train import fresh_model
    name = 'x" data-inj="ckpt" \'><b class="inj">ckpt.json'
    folder = tmp_path / 'runs'
    folder.mkdir()
    save_checkpoint(folder / name, *fresh_model(7))
    with running_server(doc='emma', checkpoints=[str(folder)]) as server:
        v = Visit(browser, server)
        try:
            v.open(f"cmp=ckpt:{quote(name, safe='')}")
            v.page.wait_for_selector('#cmpafter')
            assert name in v.page.locator('#cmpafter').inner_text()
            assert v.page.evaluate(LOOK)['injected'] == [] and v.errors == []
        finally:
            v.context.close()
