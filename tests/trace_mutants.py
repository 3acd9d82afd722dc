"""Corrupt traces for the codec fuzz (tests/test_hardening_fuzz.py): small real traces
as plain columns (microgpt.recording.codecs.validate), mutations of them that both
file formats can hold, and `assert_sound`, the fuzz's own check of what a loaded
trace must satisfy (written here, independent of the validator it tests)."""

import copy
import math
import random
import shutil
from array import array

from hypothesis import strategies as st

from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import record_step
from microgpt.recording.codecs import plain_of
from microgpt.recording.script import record_script

COLUMN_NAMES = ('op', 'data', 'grad', 'scope', 'child', 'local', 'backward_order', 'source')
FLOATS = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]
# values for the tables: JSON values of every type, hostile text, near-miss numbers
VALUES = [None, True, 0, -1, 1, 2 ** 31, 10 ** 400, 1.5, -1e308, math.nan, math.inf, '', '3', 'x',
          '\ud800', '\ufffe', 'a\x00b', [], [0], ['a'], [None], {}, {'a': 1},
          'pow', 'param', 'tanh', 'wte', 'loss', 3, [0, 1], [[0, 1, 'attn', 0, 'q']]]


class Quiet(dict):
    """A dict that Hypothesis prints as its keys (a falsifying example names the trace, not its columns)."""

    def __repr__(self):
        return f"<{', '.join(self)}>"


def port_plain():
    """'a' on a 2-wide model with 2 heads: 2 positions, 531 nodes, 9 matrices, 16 pow nodes."""
    tok = Tokenizer(['a'])
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=2, n_head=2, block_size=2)
    return plain_of(record_step(init_params(config, random.Random(0)), config, tok, 'a'))


def script_plain(folder, scripts):
    """A step of tests/scripts/micrograd_style.py: 398 nodes with sources, probes, its own op (tanh)
    and meta.recorded_from."""
    shutil.copy(scripts / 'micrograd_style.py', folder)
    (folder / 'input.txt').write_text('ab\n')
    return plain_of(record_script(folder / 'micrograd_style.py'))


def clone(plain):
    out = {k: (copy.copy(v) if isinstance(v, array) else copy.deepcopy(v)) for k, v in plain.items()}
    return out


def _owner(plain, k):
    ptr = plain['child_ptr']
    return next(p for p in range(len(ptr) - 1) if ptr[p] <= k < ptr[p + 1])


def column_values(plain, name, k):
    """Hostile values for element k of column `name`, each one the column's array type can hold."""
    n = len(plain['op'])
    if name in ('data', 'grad', 'local'):
        return FLOATS
    if name == 'op':
        return list(range(9 + len(plain['ops'])))      # every op that has a name (JSON writes names)
    if name in ('scope', 'source'):
        size = len(plain['scopes'] if name == 'scope' else plain['sources'])
        return [0, size - 1, size, size + 1, 2 ** 32 - 1]
    if name == 'child':
        p = _owner(plain, k)
        return [-1, 0, p - 1, p, p + 1, n - 1, n, n + 7, 2 ** 40, -(2 ** 40)]
    return [-1, 0, n - 1, n, 2 ** 40]                  # backward_order


def table_paths(plain, table, value, prefix=(), depth=0):
    """(path, may replace, may delete) into a table: nodes and long lists sampled."""
    out = []
    if depth > 0 or table in ('meta', 'scopes', 'sources'):       # JSON writes these three as they are
        out.append((prefix, True, depth > 0 and table != 'ops'
                    and not (table in ('pow_exponent', 'probes') and depth == 2)))
    if depth > 4:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += table_paths(plain, table, v, prefix + (k,), depth + 1)
    elif isinstance(value, list):
        idx = range(len(value)) if len(value) <= 6 else [0, 1, len(value) // 2, len(value) - 1]
        for i in idx:
            if table in ('pow_exponent', 'probes') and depth == 0:
                # [node, value]: a JSON file writes the value on its node, so only the value (or the
                # whole entry) can change in both formats
                out.append(((i,), False, True))
                out += table_paths(plain, table, value[i][1], (i, 1), 2)
            else:
                out += table_paths(plain, table, value[i], prefix + (i,), depth + 1)
    return out


@st.composite
def mutations(draw, plain):
    """(description, mutated plain columns): one column element or one table entry changed."""
    m = clone(plain)
    if draw(st.booleans()):
        names = [c for c in COLUMN_NAMES if m[c] is not None and len(m[c])]
        name = draw(st.sampled_from(names))
        col = m[name]
        k = draw(st.sampled_from(sorted({0, 1, len(col) // 2, len(col) - 2, len(col) - 1} - {-1})))
        value = draw(st.sampled_from(column_values(plain, name, k)))
        col[k] = value
        return f"{name}[{k}] = {value!r}", m
    table = draw(st.sampled_from([t for t in ('meta', 'scopes', 'params', 'pow_exponent', 'probes',
                                              'sources', 'ops') if m[t]]))
    path, replace, delete = draw(st.sampled_from(table_paths(plain, table, m[table])))
    if delete and (not replace or draw(st.booleans())):
        target = m[table]
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return f"del {table}{list(path)}", m
    value = draw(st.sampled_from(VALUES))
    if not path:
        m[table] = value
    else:
        target = m[table]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return f"{table}{list(path)} = {value!r}", m


def _text_ok(x):
    if isinstance(x, str):
        return '\x00' not in x and '\ufffe' not in x and '\uffff' not in x and not any(
            0xd800 <= ord(c) <= 0xdfff for c in x)
    if isinstance(x, dict):
        return all(_text_ok(k) and _text_ok(v) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return all(map(_text_ok, x))
    return True


def _whole(x, low, high):
    return isinstance(x, int) and not isinstance(x, bool) and low <= x < high


def assert_sound(t):
    """What any trace the loaders accept must hold, checked node by node in plain Python."""
    n = len(t)
    assert n > 0 and len(t.data) == len(t.grad) == len(t.scope) == n
    ptr = t.child_ptr
    assert len(ptr) == n + 1 and ptr[0] == 0 and ptr[-1] == len(t.child) == len(t.local)
    has_children = [ptr[i + 1] > ptr[i] for i in range(n)]
    for i in range(n):
        assert ptr[i] <= ptr[i + 1]
        assert 0 <= t.op[i] < len(t.op_names) and 0 <= t.scope[i] < len(t.scopes)
        for c in t.child[ptr[i]:ptr[i + 1]]:
            assert 0 <= c < n, (i, c)
            assert c < i or not has_children[c], f"node {i} has the later child {c}: a cycle is possible"
        if t.source is not None:
            assert 0 <= t.source[i] < len(t.sources)
        if t.op_names[t.op[i]] == 'pow':
            assert isinstance(t.pow_exponent[i], (int, float))
    assert all(0 <= i < n for i in t.backward_order)
    assert all(0 <= i < n and t.op_names[t.op[i]] == 'pow' for i in t.pow_exponent)
    for i, probes in t.probes.items():
        assert 0 <= i < n and len(probes) == ptr[i + 1] - ptr[i]
    for name in t.param_names:
        rows, cols = t.param_shapes[name]
        base = t.param_base[name]
        assert _whole(rows, 1, n + 1) and _whole(cols, 1, n + 1) and 0 <= base and base + rows * cols <= n
        for i in range(base, base + rows * cols):
            assert t.param_cell(i)[0] == name
    meta = t.meta
    assert _whole(meta['loss_id'], 0, n)
    assert all(_whole(x, 0, 1 << 31) for x in meta.get('tokens', []))
    assert all(isinstance(x, str) for x in meta.get('token_strs', []))
    assert all(_whole(x, 0, n) for x in meta.get('position_loss_ids', []))
    rf = meta.get('recorded_from', {})
    assert isinstance(rf, dict) and all(isinstance(rf.get(k, ''), str) for k in ('script', 'class', 'convention'))
    assert all(_whole(rf.get(k, 0), 0, 1 << 53) for k in ('step', 'nodes_made', 'unreached', 'older_nodes'))
    assert _text_ok(meta) and _text_ok([list(s) for s in t.scopes]) and _text_ok(list(t.op_names))
    assert _text_ok(t.param_names) and (t.sources is None or _text_ok([list(s) for s in t.sources]))
