""""Made by": the innermost line of microgpt/model.py that made an op (inside rmsnorm, softmax,
linear), with the call chain from gpt(); the same whether the chains were captured while recording
(record_step(lines=True), as the explorer records) or replayed afterwards. Every line number is
found here by reading model.py's source, none is written down."""

import ast
import inspect

import pytest

from microgpt import engine, model
from microgpt.recording import record_step
from microgpt.recording.madeby import made_by
from microgpt.recording.trace import Trace
from microgpt.train import fresh_model

LINES = inspect.getsource(model).splitlines()


def line_with(text, fn=None):
    """The 1-based line of model.py holding `text` (inside function `fn`, when given): exactly one."""
    lo, hi = 1, len(LINES)
    if fn is not None:
        f = next(n for n in ast.parse(inspect.getsource(model)).body if isinstance(n, ast.FunctionDef) and n.name == fn)
        lo, hi = f.lineno, f.end_lineno
    found = [k + 1 for k in range(lo - 1, hi) if text in LINES[k]]
    assert len(found) == 1, (text, fn, found)
    return found[0]


@pytest.fixture(scope='module')
def traces():
    model_ = fresh_model(42)
    plain = record_step(*model_, 'emma')
    return {'captured': record_step(*model_, 'emma', lines=True), 'replayed': plain,
            'loaded': Trace.from_json(plain.to_json())}       # a saved trace (explore --trace) replays too


def ops_in(trace, pos, layer, role, op):
    sid = next(s for s, sc in enumerate(trace.scopes) if sc.pos == pos and sc.layer == layer and sc.role == role
               and trace.runs_of_scope()[s])
    return [i for i in trace.scope_members(sid) if trace.op_name(i) == op]


@pytest.mark.parametrize('how', ['captured', 'replayed', 'loaded'])
def test_made_by_is_the_line_inside_rmsnorm_softmax_and_linear_with_the_call_from_gpt(traces, how):
    trace = traces[how]
    def where(role, op, test=lambda i: True):
        return [i for i in ops_in(trace, 2, 0, role, op) if test(i)]
    pows = where('rmsnorm', 'pow', lambda i: trace.pow_exponent.get(i) == -0.5)
    assert len(pows) == 1
    cases = [   # (nodes, the function, the text of the line that makes them, the call in gpt())
        (pows, 'rmsnorm', 'scale = (ms', 'x = rmsnorm(x)'),
        (where('rmsnorm', 'mul', lambda i: pows[0] in trace.children(i)), 'rmsnorm', 'return [xi * scale',
         'x = rmsnorm(x)'),
        (where('rmsnorm', 'mul', lambda i: len(set(trace.children(i))) == 1), 'rmsnorm', 'ms = sum(xi * xi',
         'x = rmsnorm(x)'),
        (where('q', 'mul'), 'linear', 'sum(wi * xi', "q = linear(x, params[f'layer{li}.attn_wq'])"),
        (where('q', 'add'), 'linear', 'sum(wi * xi', "q = linear(x, params[f'layer{li}.attn_wq'])"),
        (where('attn_weights', 'exp'), 'softmax', '.exp() for val in logits', 'attn_weights = softmax(attn_logits)'),
    ]
    for nodes, fn, text, call in cases:
        made = line_with(text, fn)
        # the rmsnorm of layer 0's attention, not the embedding's: the second such call in gpt()
        call_line = line_with(call, 'gpt') if fn != 'rmsnorm' else \
            [k + 1 for k, t in enumerate(LINES) if t.strip() == call][1]
        assert nodes, (fn, text)
        for i in nodes:
            d = made_by(trace, i)
            assert (d['file'], d['function'], d['line']) == ('microgpt/model.py', fn, made), (i, d)
            assert d['code'] == LINES[made - 1].strip()
            assert d['chain'] == [['gpt', call_line], [fn, made]] and d['chain_text'] == f'gpt:{call_line} → {fn}:{made}'
    # where its derivative is written: the primitive's return in engine.py
    engine_lines = inspect.getsource(engine).splitlines()
    exp = ops_in(trace, 2, 0, 'attn_weights', 'exp')[0]
    at = int(made_by(trace, exp)['derivative_at'].split(':')[1])
    assert 'return Value(' in engine_lines[at - 1] and 'exp' in ''.join(engine_lines[at - 4:at])


def test_the_loss_ops_are_made_in_doc_loss(traces):
    trace = traces['replayed']
    logs = [i for i in range(len(trace)) if trace.op_name(i) == 'log']
    assert logs
    for i in logs:
        d = made_by(trace, i)
        assert d['function'] == 'doc_loss' and '.log()' in LINES[d['line'] - 1]


def test_sources_are_parsed_one_thread_at_a_time(monkeypatch):
    """The explorer's threads read engine.py (made-by's derivative lines) and model.py (the source
    map) at the same time; CPython 3.11's AST builder keeps its recursion depth in state threads
    share (python/cpython#106905: "SystemError: AST constructor recursion depth mismatch", seen in
    the explorer's node check). A parse that lingers shows whether another thread got in meanwhile."""
    import threading
    import time

    from microgpt.recording import sourcemap
    from microgpt.recording.madeby import derivative_lines
    from microgpt.recording.script.places import loop_ranges

    inside, most, real = [0], [0], ast.parse

    def slow_parse(*args, **kwargs):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.02)
        try:
            return real(*args, **kwargs)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(sourcemap.ast, 'parse', slow_parse)
    want_lines, want_blocks = derivative_lines(), sourcemap.SourceMap().blocks
    results = []
    jobs = [derivative_lines, lambda: sourcemap.SourceMap().blocks, lambda: loop_ranges(inspect.getsourcefile(model))]
    threads = [threading.Thread(target=lambda job=job: results.append(job())) for job in jobs * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
    assert len(results) == 12 and results.count(want_lines) == 4 and results.count(want_blocks) == 4
