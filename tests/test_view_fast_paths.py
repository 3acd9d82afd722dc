"""Fast paths of view building (issue 25: a new view of a 5 M-node step <= 300 ms server-side)
say what the plain paths say: the explorer's early refusal and the build share one selection
and draw the same DOT as build_view alone; a record label's fields are read piece by piece as
the character-by-character reading (written out here) reads them; a boundary group's share
record is found from its ends as from its min and max."""

import random

import pytest

import graphviz_export.select as select_module
import graphviz_export.view as view_module
import graphviz_export.web.explorer.drawing as drawing
import graphviz_export.web.explorer.state as st
from graphviz_export import build_view
from graphviz_export.draw.labels import param_rows
from graphviz_export.draw.page import _fields, label_width_lr
from graphviz_export.fold.summary import Interior
from microgpt.recording import shares
from microgpt.recording.runs import runs_of
from microgpt.recording.shares import stored_magnitudes, stored_share

QUERIES = ['view=token&token=3&level=vector', 'view=head&layer=0&head=1&token=2&level=scalar',
           'view=token&token=2&expand=pos2/layer0/attn/head0', 'view=layer&layer=0&token=5',
           'view=token&token=0', 'view=head&layer=0&head=1&token=4']


class Job:
    def at(self, _):
        pass


@pytest.mark.parametrize('query', QUERIES)
def test_the_explorer_selects_once_and_draws_what_build_view_draws(recorded_christopher, monkeypatch, query):
    trace = recorded_christopher
    state = st.parse(query)
    kwargs = st.build_kwargs(state)
    plain = build_view(trace, **kwargs).source
    made = []
    real = select_module.select

    def counting(*args, **kw):
        made.append(kw)
        return real(*args, **kw)
    monkeypatch.setattr(drawing, 'select', counting)
    monkeypatch.setattr(view_module, 'select', counting)
    monkeypatch.setattr(drawing, 'render_view', lambda view, fmt, **kw: b'<svg/>')
    view, _, _ = drawing.drawn(trace, dict(kwargs), state, Job(), renderer='auto', timeout=20)
    assert len(made) == 1, made         # the early refusal's selection (when it makes one) is the view's
    assert view.source == plain


def test_a_given_selection_is_the_one_drawn(recorded_christopher):
    """build_view(selection=...) draws that selection, whatever the query says (a caller gives the
    selection of its own query): the proof that it is used, not selected again."""
    trace = recorded_christopher
    sel = select_module.select(trace, token=4)
    assert build_view(trace, token=9, selection=sel).source == build_view(trace, token=4).source
    assert build_view(trace, token=9, selection=sel).source != build_view(trace, token=9).source


def fields_per_character(label):
    """The record's fields as first written: one character at a time, '\\' keeps the next one,
    an unescaped '|' ends a field, braces dropped."""
    out, cur, k = [], [], 0
    text = str(label)
    while k < len(text):
        ch = text[k]
        if ch == '\\' and k + 1 < len(text):
            cur.append(text[k + 1])
            k += 2
            continue
        if ch == '|':
            out.append(''.join(cur))
            cur = []
        elif ch not in '{}':
            cur.append(ch)
        k += 1
    out.append(''.join(cur))
    return out


def test_record_fields_are_read_as_character_by_character():
    rng = random.Random(3)
    cases = ['', '\\', 'a\\', '|', '{a|b}', '\\|\\{x\\}', 'a\\\\|b', '{{a}|{b\\n|c}}', 'x\\\n|y']
    cases += [''.join(rng.choice('ab \\|{}\nl') for _ in range(rng.randrange(12))) for _ in range(20000)]
    for text in cases:
        assert _fields(text) == fields_per_character(text), repr(text)


def test_record_fields_of_real_labels(recorded_christopher):
    dot = build_view(recorded_christopher, token=11, level='vector').source
    labels = [line.split(' [label="', 1)[1].split('" ', 1)[0] for line in dot.splitlines() if ' [label="' in line]
    assert len(labels) > 30
    for text in labels:
        assert _fields(text) == fields_per_character(text)
        if not text.startswith('{'):
            continue
        chars = sum(map(len, fields_per_character(text))) + 2 * len(fields_per_character(text))
        assert label_width_lr(text) == pytest.approx(chars * 5.2 + 14)


def share_record_by_min_max(trace, name, ids, scopes, real):
    """share_record as first written: the group's ends found by min and max."""
    found, k = real(trace, name, sorted(ids), scopes)
    if k is None:
        return found, k
    a, b = shares.matrix_span(trace.param_shapes, trace.param_base, name)
    ok = trace.index('share_n')[k] == len(ids) and a <= min(ids) <= max(ids) < b
    return (True, k) if ok else (False, None)


@pytest.mark.parametrize('kw', [dict(token=3), dict(layer=0, token=5), dict(layer=0), dict(token=11, level='vector')])
def test_share_records_are_found_from_a_groups_ends(recorded_christopher, kw):
    trace = recorded_christopher
    view = build_view(trace, **kw)
    interior = Interior(trace, view.selection.nodes)
    checked = 0
    for n in view.folded.nodes:
        if n.kind == 'group' and n.side == 'input' and n.scope.block == 'params' and n.scope.role in trace.param_shapes:
            got = shares.share_record(trace, n.scope.role, n.ids, interior.scopes)
            assert got == share_record_by_min_max(trace, n.scope.role, n.ids, interior.scopes, shares.share_record)
            assert stored_share(trace, n.scope.role, n.ids, interior.scopes)[0] == got[0]
            assert (stored_magnitudes(trace, n.scope.role, n.ids, interior.scopes) is None) == (not got[0])
            checked += got[1] is not None
    assert checked >= 3
    # a group one cell short, or with a cell of another matrix at its end, is not the record's
    n = next(n for n in view.folded.nodes if n.kind == 'group' and n.side == 'input' and n.scope.block == 'params'
             and n.scope.role in trace.param_shapes and shares.share_record(trace, n.scope.role, n.ids,
                                                                           interior.scopes)[1] is not None)
    assert shares.share_record(trace, n.scope.role, n.ids[:-1], interior.scopes) == (False, None)
    a, b = shares.matrix_span(trace.param_shapes, trace.param_base, n.scope.role)
    moved = (*n.ids[1:], b)         # as many cells, the last one past the matrix
    assert shares.share_record(trace, n.scope.role, moved, interior.scopes) == (False, None)


@pytest.mark.parametrize('kw', [dict(token=3), dict(token=11, level='vector'), dict(layer=0), dict(document=True),
                                dict(param='layer0.mlp_fc1'), dict(layer=0, head=1, token=4, level='scalar')])
def test_runs_a_fold_sets_are_the_runs_of_the_ids(recorded_christopher, kw):
    """A folded node's runs, and its values' runs when fold set them (a boundary group whose values are
    all its ids: the same tuple), are what runs_of finds; a boundary group's values are its non-constant
    members, or all of them when every member is a constant (as first written, here)."""
    trace = recorded_christopher
    view = build_view(trace, **kw)
    shared = 0
    for n in view.folded.nodes:
        if n.kind == 'ref':
            continue
        assert n.__dict__['runs'] == runs_of(list(n.ids)), n.name
        if 'value_runs' in n.__dict__:      # set by fold (its values are its ids), or found by the labels
            assert n.__dict__['value_runs'] == runs_of(list(n.values)), n.name
            shared += n.values is n.ids
        if n.kind == 'group' and n.side != 'interior':
            want = [i for i in n.ids if trace.op_name(i) != 'const'] or list(n.ids)
            assert list(n.values) == want, n.name
        if n.kind == 'group' and n.scope.block == 'params':
            assert param_rows(trace, n.ids, n.runs) == param_rows(trace, list(n.ids)), n.name
    assert shared > 0 or kw.get('level') == 'scalar'
