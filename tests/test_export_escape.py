"""Text from users reaches the picture verbatim, and the SVG stays well-formed XML.

Every place a text can sit (record field, plain label, cluster and graph label,
edge label, tooltip) is rendered with hostile strings and read back; then a whole
trace whose document and vocabulary are made of DOT/XML/record metacharacters is
drawn in every kind of view.
"""


import graphviz
import pytest

from graphviz_export import build_view, render_view
from graphviz_export.draw import escape
from graphviz_export.render import render
from tests.export_helpers import HOSTILE_DOC, hostile_trace
from tests.svg_read import read_svg

HOSTILE = ['a<&"{|}>\\b', '&amp; &#92; &lt; \\n \\l \\N \\G', '  two  spaces ', '<<b>html?</b>>',
           '\u00fcn\u00efcode \u2197 \u2016', 'back\\', '"', '|', '{', '}', '\\\\']
RENDERERS = ['wasm', 'native']   # 'native': skipped or pinned by tests/conftest.py (one decision)


@pytest.mark.parametrize('renderer', RENDERERS)
def test_every_text_position_shows_the_text_verbatim(renderer):
    g = graphviz.Digraph('G')
    for k, text in enumerate(HOSTILE):
        g.node(f'r{k}', graphviz.nohtml('{' + escape.record_field(text) + '|data 1}'), shape='record',
               tooltip=escape.tooltip([text, text]))
        g.node(f'p{k}', escape.plain(text), tooltip=escape.tooltip([text]))
        g.edge(f'r{k}', f'p{k}', label=escape.plain(text), tooltip=escape.tooltip([text]))
        with g.subgraph(name=f'cluster_{k}') as c:
            c.attr(label=escape.plain(text))
            c.node(f'c{k}', escape.lines([text, 'second']))
    g.attr(label=escape.plain(HOSTILE[0]))
    svg = read_svg(render(g.source, renderer=renderer))
    assert svg['title'] == [HOSTILE[0]]
    for k, text in enumerate(HOSTILE):
        assert svg['nodes'][f'r{k}']['texts'] == [text, 'data 1']
        assert svg['nodes'][f'r{k}']['tooltip'] == text + '\n' + text
        assert svg['nodes'][f'p{k}']['texts'] == [text] and svg['nodes'][f'p{k}']['tooltip'] == text
        assert svg['edges'][f'r{k}->p{k}']['texts'] == [text]
        assert svg['edges'][f'r{k}->p{k}']['tooltip'] == text
        assert svg['clusters'][f'cluster_{k}']['texts'] == [text]
        assert svg['nodes'][f'c{k}']['texts'] == [text, 'second']


def test_control_characters_are_shown_by_their_code():
    label = escape.plain('x\x00y\ttab')
    svg = read_svg(render('digraph { a [label="' + label + '"] }'))
    assert svg['nodes']['a']['texts'] == ['x\\x00y\\x09tab']


@pytest.mark.parametrize('q', [{}, {'token': 3, 'level': 'scalar'}, {'token': 9, 'expand': ['head1']},
                               {'layer': 0}, {'param': 'wte[4][1]'}, {'param': 'wte'},
                               {'node': 'loss', 'depth': 2}])
def test_a_hostile_document_draws_well_formed_and_exact(q):
    t = hostile_trace()
    strs = t.meta['token_strs']
    view = build_view(t, **q, highlight={t.meta['loss_id']: 'reason <&"{|}>\\'},
                      notes=[f'note {HOSTILE_DOC}', HOSTILE[1]])
    svg = read_svg(render_view(view))                   # parses: well-formed XML
    assert svg['title'][0] == view.selection.title and f"'{HOSTILE_DOC}'" in svg['title'][0]
    assert svg['nodes']['notes']['texts'][:2] == [f'note {HOSTILE_DOC}', HOSTILE[1]]
    positions = [c['texts'][0] for c in svg['clusters'].values() if c['texts'] and c['texts'][0].startswith('pos')]
    for label in positions:
        p = int(label.split(':')[0].split()[1])
        assert label == f"position {p}: '{strs[p]}' -> '{strs[p + 1]}'"
    if q.get('token') is not None and q.get('level') is None:
        assert positions
    if 'node' in q:
        (loss,) = [i for n, i in svg['nodes'].items() if n == f"n{t.meta['loss_id']}"]
        assert loss['tooltip'].startswith(f"HIGHLIGHT: node {t.meta['loss_id']}: reason <&\"{{|}}>\\")



def test_the_fast_path_escapes_each_character_as_the_slow_one():
    # a text none of whose characters _PLAIN_SPECIAL matches is returned as is (plain) or
    # translated (a record field), without the per-character escape: for every character, the
    # fast path's answer is the slow one's (a backslash the pattern missed would reach the DOT
    # raw; a record's space left untranslated would break the record)
    record = lambda ch: escape._RECORD.get(ch) or escape._char(ch)     # noqa: E731 (record_field's)
    every = [chr(c) for c in range(0x110000)]
    assert [c for c in every if escape._PLAIN_SPECIAL.search(c)] == [c for c in every if escape._char(c) != c]
    kept = [c for c in every if not escape._PLAIN_SPECIAL.search(c)]
    assert [c.translate(escape._RECORD_TABLE) for c in kept] == [record(c) for c in kept]
    assert escape.plain('a\\b "c"') == 'a\\\\b &quot;c&quot;'
    assert escape.record_field('a b|c{d}') == 'a\\ b\\|c\\{d\\}'
    assert escape.record_field('x' * (escape.MAX_TEXT - 1)).endswith('x')      # within the budget: whole
    assert escape.record_field(' ' * 10 + 'a b' * 2000).endswith('\u2026')     # past it: cut, as before


def test_a_tooltip_with_nothing_to_escape_is_written_as_line_by_line_near_every_budget():
    # tooltip's shortcut (no character to escape, no line near its budget: the lines joined as
    # they are) must give what writing each line under its budget gives, also where a line or the
    # whole tooltip reaches a budget (cut with '…', later lines left out)
    slow = lambda texts: escape._joined(texts, lambda t, b: escape.plain(t, b // 2).replace('\\', '\\\\'),  # noqa: E731
                                        '&#10;')
    sizes = (0, 1, 2, 30, 3990, 3997, 3998, 3999, 4000, 4001, 5990, 5994, 5995, 5996, 6000, 11980, 12000)
    cases = [['x' * n] for n in sizes] + [['ab' * 10] * k for k in (1, 65, 400, 479, 480, 481, 600)]
    cases += [['y' * n, 'z' * m] for n in sizes for m in sizes] + [[s] * k for s in ('', 'x') for k in range(1990, 2402)]
    for texts in cases:
        assert escape.tooltip(texts) == slow(texts), [len(t) for t in texts]
    assert escape.tooltip(['a < b', 'c']) == 'a &lt; b&#10;c'       # something to escape: the general path
    assert escape.tooltip(['ab' * 10] * 600).endswith('\u2026')      # over the budget: cut, as before
