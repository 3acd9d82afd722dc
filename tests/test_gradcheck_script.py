"""The node check on traces of scripts with their own engine, in both conventions:
two engines written for these tests (tests/scripts/engines: `closures.py`, micrograd's
set of children and a `_backward` closure per node, also installed as `closures-list`
with a list of children, as engines that keep `x * x`'s operand twice do; `stored.py`,
microgpt's `_children` and `_local_grads`), copied next to a driver script as
engine.py, with one line bent at a time. The check must name the bent line, per operand; an `=` for `+=`
must name the engine line that assigns; micrograd's `p*p` must never fail on correct
code; an accumulator must not be taken for a parameter."""

import functools
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphviz_export.steps.frames import ledger_sum, ledgers
from graphviz_export.view import build_view
from graphviz_export.web.explorer.clicks import node_details
from microgpt.checks.findings import format_node_report
from microgpt.checks.nodes import check_trace
from microgpt.recording import Trace
from microgpt.recording.script import describe_params, record_script
from microgpt.recording.script.closures import closure_reader
from microgpt.recording.script.params import BadParams
from microgpt.recording.sourcemap import SourceMap
from microgpt_graph.cli import main as cli_main

ENGINES = Path(__file__).resolve().parent / 'scripts' / 'engines'


LIST_OF_CHILDREN = ('self._prev = set(_children)', 'self._prev = list(_children)')


def install(folder, engine, driver, edit=None):
    """engine (closures.py, closures-list.py or stored.py) as folder/engine.py, with
    `edit` = (old, new) replaced once, and the driver beside it; returns the driver's
    path. closures-list.py is closures.py keeping its children in a list."""
    if engine == 'closures-list.py':
        text = (ENGINES / 'closures.py').read_text()
        assert text.count(LIST_OF_CHILDREN[0]) == 1
        text = text.replace(*LIST_OF_CHILDREN)
    else:
        text = (ENGINES / engine).read_text()
    if edit is not None:
        assert text.count(edit[0]) == 1, edit[0]
        text = text.replace(*edit)
    (folder / 'engine.py').write_text(text)
    shutil.copy(ENGINES / driver, folder / driver)
    return folder / driver


def line_of(path, text):
    hits = [i for i, ln in enumerate(Path(path).read_text().splitlines(), 1) if text.strip() in ln]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def ops_named(trace, op):
    return {i for i in range(len(trace)) if trace.op_name(i) == op}


# -- a bent derivative: the line of the operand that is wrong ------------------------------------
CLOSURE_BENDS = [   # (op, operand, line as written, bent)
    ('add', 0, 'self.grad += out.grad\n', 'self.grad += 1.5 * out.grad\n'),
    ('add', 1, 'other.grad += out.grad\n', 'other.grad += 1.5 * out.grad\n'),
    ('mul', 0, 'self.grad += other.data * out.grad', 'self.grad += 1.5 * other.data * out.grad'),
    ('mul', 1, 'other.grad += self.data * out.grad', 'other.grad += 1.5 * self.data * out.grad'),
    ('pow', 0, 'self.grad += k * self.data ** (k - 1) * out.grad', 'self.grad += k * self.data ** k * out.grad'),
    ('tanh', 0, 'self.grad += (1 - t * t) * out.grad', 'self.grad += (1 - t) * out.grad'),
    ('tanh', 0, 'self.grad += (1 - t * t) * out.grad', 'self.grad += (t * t - 1) * out.grad'),   # its sign
    ('exp', 0, 'self.grad += out.data * out.grad', 'self.grad += 1.5 * out.data * out.grad'),
    ('log', 0, 'self.grad += out.grad / self.data', 'self.grad += out.grad * self.data'),
    ('relu', 0, 'self.grad += (out.data > 0) * out.grad', 'self.grad += 1.5 * (out.data > 0) * out.grad'),
]
STORED_BENDS = [
    ('add', 0, '(1.0, 1.0)', '(1.5, 1.0)'),
    ('add', 1, '(1.0, 1.0)', '(1.0, 1.5)'),
    ('mul', 0, '(other.data, self.data)', '(1.5 * other.data, self.data)'),
    ('mul', 1, '(other.data, self.data)', '(other.data, 1.5 * self.data)'),
    ('pow', 0, '(k * self.data ** (k - 1),)', '(k * self.data ** k,)'),
    ('tanh', 0, '(1 - t * t,)', '(1 - t,)'),
    ('tanh', 0, '(1 - t * t,)', '(t * t - 1,)'),
    ('exp', 0, '(e,)', '(1.5 * e,)'),
    ('log', 0, '(1 / self.data,)', '(self.data,)'),
    ('relu', 0, '(float(self.data > 0),)', '(1.5 * float(self.data > 0),)'),
]
BENDS = ([('closures.py', *b) for b in CLOSURE_BENDS] + [('closures-list.py', *b) for b in CLOSURE_BENDS]
         + [('stored.py', *b) for b in STORED_BENDS])


@pytest.mark.parametrize('engine,op,operand,old,new', BENDS,
                         ids=[f"{e.split('.')[0]}-{op}-arg{k}" for e, op, k, _, _ in BENDS])
def test_a_bent_derivative_is_named_by_its_own_line(tmp_path, engine, op, operand, old, new):
    driver = install(tmp_path, engine, 'every_op.py', edit=(old, new))
    trace = record_script(driver)
    result = check_trace(trace)
    line = line_of(tmp_path / 'engine.py', new)
    # every node of that op fails, at that operand only, and nothing else fails
    assert ops_named(trace, op) and set(result.nodes) == ops_named(trace, op), format_node_report(result)
    assert {(f.kind, f.child) for f in result.failures} == {('local', operand)}
    for f in result.failures:
        assert f.line == ('engine.py', line)
        assert f.message.startswith(f"engine.py line {line}: your derivative of {op} is wrong (node {f.node}, ")
    assert f"engine.py line {line}: your derivative of {op} is wrong" in format_node_report(result)
    for back in (Trace.from_json(trace.to_json()), Trace.from_binary(trace.to_binary())):    # saved, then checked
        assert [f.message for f in check_trace(back).failures] == [f.message for f in result.failures]


def test_the_unbent_engines_pass(tmp_path):
    for engine in ('closures.py', 'closures-list.py', 'stored.py'):
        folder = tmp_path / engine.split('.')[0]
        folder.mkdir()
        trace = record_script(install(folder, engine, 'every_op.py'))
        result = check_trace(trace)
        assert result.ok and result.skipped == [] and result.nonsmooth == 0, format_node_report(result)
        # add x4 (a+b, c+2, two in dot), mul x4 (s*c, three in dot), and one of each other op
        assert {op: len(ops_named(trace, op)) for op in ('add', 'mul', 'pow', 'tanh', 'exp', 'log', 'relu')} == \
            {'add': 4, 'mul': 4, 'pow': 1, 'tanh': 1, 'exp': 1, 'log': 1, 'relu': 1}
        # replayed: every op but tanh (12 nodes, 2 + 2 + 1 + 1 + 1 + 1 edges); tanh re-run: 1 edge
        assert result.checked == {'forward': 12, 'local': 21, 'sum': len(trace), 'dloss': 0, 'probed': 1}
        assert trace.meta['recorded_from']['params_from'] == 'params' and trace.param_shapes == {'params': (1, 3)}
        assert describe_params(trace) == "the 3 values of the script's `params` global (another choice: --params NAME)"


def test_a_scripts_own_ops_at_a_kink_under_another_name_or_not_re_runnable(tmp_path):
    """own_ops.py: |x| at 0, the closure's -1 is the left slope (the re-run's central
    difference is 0); the leaky relu labelled 'ReLU' is the script's own op, re-run like
    |x|; `scaled` cannot be re-run on a copy of its input, which the check says instead
    of checking it; `square` is a pow by its label; y ** True is re-run, not replayed."""
    # as a new user's shell runs it: Python may write bytecode, beside the script (the runner's
    # environment may not, and the suite's children share one bytecode folder elsewhere: conftest)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONDONTWRITEBYTECODE', 'PYTHONPYCACHEPREFIX')}
    trace = record_script(install(tmp_path, 'closures.py', 'own_ops.py'), env=env)
    assert not (tmp_path / '__pycache__').exists()          # the recording wrote nothing beside the script
    result = check_trace(trace)
    assert result.ok and result.nonsmooth == 1 and result.checked['probed'] == 3, format_node_report(result)
    assert ops_named(trace, 'relu') == set() and len(ops_named(trace, 'relu*')) == 1     # labelled ReLU, not relu
    (square,) = (i for i in ops_named(trace, 'pow') if trace.pow_exponent[i] == 2)     # replayed as the port's pow
    assert trace.data[square] == 1.5 ** 2 and len(ops_named(trace, 'pow*')) == 1            # y ** True: re-run
    assert Trace.from_json(trace.to_json()) == trace
    (scaled,) = ops_named(trace, 'scaled')
    assert result.skipped == [(scaled, 'local', "scaled: re-running scaled failed: "
                                                "AttributeError(\"'Value' object has no attribute 'scale'\")")]
    old = 'self.grad += (1.0 if self.data > 0 else -1.0) * out.grad'
    new = 'self.grad += (1.0 if self.data > 0 else -2.0) * out.grad'
    first = (tmp_path / 'engine.py').stat().st_mtime_ns
    install(tmp_path, 'closures.py', 'own_ops.py', edit=(old, new))
    # the bent engine.py has the first's size; written within the same second (often, when the
    # machine is quiet) a .pyc of the first would pass Python's check and run in its place: made so here
    os.utime(tmp_path / 'engine.py', ns=(first, first))
    result = check_trace(record_script(tmp_path / 'own_ops.py', env=env))
    assert [(f.kind, f.op, f.found) for f in result.failures] == [('local', 'abs', -2.0)]
    assert result.first.message.startswith(f"engine.py line {line_of(tmp_path / 'engine.py', new)}: your derivative "
                                           f"of abs is wrong")


def test_a_scripts_own_op_with_a_one_sided_infinite_probe_or_a_large_value(tmp_path):
    """probe_limits.py: safe_log 5e-7 from 0, where the probe's left side is -inf, is
    skipped with its reason, neither failed (the difference is inf) nor passed as a kink
    (the inf widens the tolerance to everything); offset(1e6), correct, passes outright
    though its difference is off by 8e-6 of the slope (the rounding of two values near a
    million, allowed for by the round term), and bent by 1% it is still named."""
    trace = record_script(install(tmp_path, 'closures.py', 'probe_limits.py'))
    (log,), (offset,) = ops_named(trace, 'safe_log'), ops_named(trace, 'offset')
    (xp, xm, fp, fm), = trace.probes[log]
    assert xm < 0 < xp and fm == float('-inf') and fp == math.log(xp)     # one side only
    (xp, xm, fp, fm), = trace.probes[offset]
    assert abs((fp - fm) / (xp - xm) - 1.0) > 1e-6                          # more than rtol off
    for t in (trace, Trace.from_json(trace.to_json())):
        result = check_trace(t)
        assert result.ok and result.nonsmooth == 0 and result.checked['probed'] == 1, format_node_report(result)
        assert result.skipped == [(log, 'local', 'safe_log: no usable step around its input')]
        assert format_node_report(result).endswith("0 derivatives at a kink accepted between their one-sided "
                                                   "values; 1 could not be measured")
    old = 'self.grad += 1.0 * out.grad'
    new = 'self.grad += 1.01 * out.grad'
    result = check_trace(record_script(install(tmp_path, 'closures.py', 'probe_limits.py', edit=(old, new))))
    assert [(f.kind, f.node, f.found) for f in result.failures] == [('local', offset, 1.01)]
    assert result.first.message.startswith(f"engine.py line {line_of(tmp_path / 'engine.py', new)}: your derivative "
                                           f"of offset is wrong")


# -- `=` instead of `+=` ------------------------------------------------------------------------------
@pytest.mark.parametrize('operand,old,leaf,found,expected', [
    # a = -4, b = 2, c = a + b = -2, d = (c * a) * b: backward adds 8 to b.grad and -4 to
    # a.grad before c's closure, which passes c.grad = a * (c*a).grad = -8 on to both
    (0, 'self.grad += out.grad\n', 'a = Value(-4.0)', -8.0, -12.0),
    (1, 'other.grad += out.grad\n', 'b = Value(2.0)', -8.0, 0.0),
])
def test_an_assignment_in_a_closure_names_the_engine_line(tmp_path, operand, old, leaf, found, expected):
    new = old.replace('+=', '=')
    driver = install(tmp_path, 'closures.py', 'assign.py', edit=(old, new))
    trace = record_script(driver)
    result = check_trace(trace)
    assert {f.kind for f in result.failures} == {'sum'} and len(result.failures) == 1, format_node_report(result)
    f = result.first
    assert (f.found, f.expected) == (found, expected)
    line = line_of(tmp_path / 'engine.py', new)
    assert f.line == ('engine.py', line)
    assert f.message.startswith(f"engine.py line {line}: this line sets a grad with = where backward must add to "
                                f"it with +=, so this node's grad is not the sum of what its users passed back "
                                f"(node {f.node}, made by line {line_of(driver, leaf)} `{leaf}`;")
    assert f.to_dict()['line'] == {'file': 'engine.py', 'line': line}
    assert check_trace(Trace.from_json(trace.to_json())).first.message == f.message


@pytest.mark.parametrize('edits,named', [
    ([('other.grad += out.grad\n', 'other.grad = out.grad\n')], 'other.grad = out.grad'),
    ([('other.grad += out.grad\n', 'other.grad = out.grad\n'),
      ('other.grad += self.data * out.grad', 'other.grad = self.data * out.grad')], 'other.grad = out.grad'),
])
def test_the_assignment_named_is_the_last_one_backward_made(tmp_path, edits, named):
    """assign_late.py: b = 2, u = 3b, v = u + b, w = v * b. Backward adds v = 8 to b.grad
    (w), then v's closure sets it to w's grad 2, then u's adds 3 * 2: 8, not 16. The line
    named is add's (v's), even when w's mul assigned first, and though u came after."""
    text = (ENGINES / 'closures.py').read_text()
    for old, new in edits:
        assert text.count(old) == 1
        text = text.replace(old, new)
    (tmp_path / 'engine.py').write_text(text)
    shutil.copy(ENGINES / 'assign_late.py', tmp_path)
    result = check_trace(record_script(tmp_path / 'assign_late.py'))
    (f,) = result.failures
    assert (f.kind, f.found, f.expected) == ('sum', 8.0, 16.0)
    assert f.line == ('engine.py', line_of(tmp_path / 'engine.py', named))


def test_an_assignment_by_the_first_use_is_not_blamed(tmp_path):
    """assign_late.py with mul's `other.grad =` (w, backward's first use of b: it loses
    nothing) and add's `other.grad += out.grad * out.grad` (v: not linear in the upstream
    grad, so b gets 2**2 = 4 where its local derivative 1 times 2 says 2): b's sum fails,
    and the line of the `=` is not named for it."""
    text = (ENGINES / 'closures.py').read_text()
    for old, new in (('other.grad += self.data * out.grad', 'other.grad = self.data * out.grad'),
                     ('other.grad += out.grad\n', 'other.grad += out.grad * out.grad\n')):
        text = text.replace(old, new)
    (tmp_path / 'engine.py').write_text(text)
    shutil.copy(ENGINES / 'assign_late.py', tmp_path)
    (f,) = check_trace(record_script(tmp_path / 'assign_late.py')).failures
    assert (f.kind, f.found, f.expected) == ('sum', 18.0, 16.0) and f.line is None     # 8 + 4 + 6, 8 + 2 + 6
    assert f.message.startswith(f"line {line_of(tmp_path / 'assign_late.py', 'b = Value(2.0)')}: this node's grad "
                                f"is not the sum of what its users passed back (accumulate with += ?)")


def test_an_assignment_in_a_stored_engines_backward_names_the_node(tmp_path):
    """microgpt's convention adds in backward(), not in a closure: the node is named."""
    driver = install(tmp_path, 'stored.py', 'assign.py', edit=('c.grad += d * v.grad', 'c.grad = d * v.grad'))
    result = check_trace(record_script(driver))
    f = next(x for x in result.failures if x.message.startswith(f"line {line_of(driver, 'a = Value(-4.0)')}:"))
    assert f.kind == 'sum' and (f.found, f.expected) == (-8.0, -12.0) and f.line is None
    assert f.message.startswith(f"line {line_of(driver, 'a = Value(-4.0)')}: this node's grad is not the sum of "
                                f"what its users passed back (accumulate with += ?) (node {f.node}, ")


def test_a_wrong_grad_found_by_replay_is_named_as_such(tmp_path):
    """--dloss on a leaf below a bent mul: its grad is not d loss / d node."""
    old, new = CLOSURE_BENDS[3][2:]
    driver = install(tmp_path, 'closures.py', 'every_op.py', edit=(old, new))
    trace = record_script(driver)
    a = trace.param_nodes('params[0][0]')[0]
    result = check_trace(trace, local=False, sums=False, dloss=[a])
    (f,) = result.failures
    assert f.kind == 'dloss' and f.node == a and f.line is None
    line = line_of(driver, 'params = [Value(0.6)')
    assert f.message.startswith(f"line {line}: this node's grad is not d loss / d node (node {a}, made by line {line} ")


# -- micrograd's p*p --------------------------------------------------------------------------------
@pytest.mark.parametrize('engine,runs', [('closures.py', 50), ('closures-list.py', 10)])
def test_p_times_p_is_checked_exactly_on_every_run(tmp_path, engine, runs):
    """squares.py: sum of p*p plus products of neighbours. With a set-based `_prev`,
    whether p*p's two additions come before or after the neighbours' depends on the
    sets' order, i.e. on the run; with one edge of local 2p the check failed on most
    runs. With a list, p*p's children are [p, p]: the same two edges, not four."""
    driver = install(tmp_path, engine, 'squares.py')
    ps = range(6)
    with ThreadPoolExecutor(2) as pool:     # each run is its own child process: two at a time
        traces = list(pool.map(lambda _: record_script(driver), range(runs)))
    for run, trace in enumerate(traces):
        result = check_trace(trace)
        assert result.ok, (run, format_node_report(result))
        squares = [i for i in ops_named(trace, 'mul') if set(trace.children(i)) == {trace.children(i)[0]}]
        assert len(squares) == 6
        for i in squares:       # two edges to p, each with local p, as micrograd adds p.data * out.grad twice
            p = trace.children(i)[0]
            assert trace.children(i) == [p, p] and trace.local_grads(i) == [trace.data[p]] * 2
        for p in ps:            # the panel's sum in backward order is the grad, bit for bit
            total = 0.0
            for _, _, c in trace.uses(p):
                total += c
            assert total == trace.grad[p], (run, p)
    for p in ps:                # and so are the explorer panel's verdict and the step-through ledger
        assert node_details(trace, p, SourceMap())['sum_is_grad'] is True
        view = build_view(trace, param=f'params[0][{p}]')
        assert ledger_sum(ledgers(trace, view.folded)[f'n{p}'][p]) == trace.grad[p]


# -- parameters of a script without a params global ------------------------------------------------
@pytest.mark.parametrize('engine', ['closures.py', 'stored.py'])
@pytest.mark.parametrize('args,accumulator,why', [
    ([], 'total = Value(0.0)', 'the loss only adds'),
    (['val-first'], 'total_loss = Value(0.0)', 'backward never reaches'),
])
def test_an_accumulator_is_not_a_parameter(tmp_path, engine, args, accumulator, why):
    driver = install(tmp_path, engine, 'accumulate.py')
    trace = record_script(driver, args=args)
    assert trace.param_shapes == {'params': (1, 3)}
    assert trace.data[:3].tolist() == [0.3, -0.2, 0.1]           # w[0], w[1], b as the script made them
    assert trace.meta['recorded_from']['params_from'] == 'leaves made before the first op'
    said = describe_params(trace)
    assert said.startswith('3 leaves made before the first op that backward reaches and the loss uses like a '
                           'parameter (no `state_dict` or `params` global); left out: ')
    assert f"1 {why} (line {line_of(driver, accumulator)} `{accumulator}`)" in said
    assert said.endswith('; choose with --params NAME (model.parameters, weights, layers would do)')
    assert check_trace(trace).ok


def test_params_by_name_and_its_errors(tmp_path):
    driver = install(tmp_path, 'closures.py', 'accumulate.py')
    trace = record_script(driver, params='model.parameters')
    assert trace.param_shapes == {'parameters': (1, 3)} and trace.data[:3].tolist() == [0.3, -0.2, 0.1]
    assert describe_params(trace) == 'the 3 values of --params model.parameters'
    trace = record_script(driver, params='model.w', step=2)       # a list attribute, at step 2
    assert trace.param_shapes == {'w': (1, 2)} and trace.data[:2].tolist() != [0.3, -0.2]
    trace = record_script(driver, params='weights')                # a matrix
    assert trace.param_shapes == {'weights': (1, 2)} and trace.data[:2].tolist() == [0.3, -0.2]
    trace = record_script(driver, params='layers')                 # a dict of matrices
    assert trace.param_names == ['w', 'b'] and trace.param_shapes == {'w': (1, 2), 'b': (1, 1)}
    assert trace.data[:3].tolist() == [0.3, -0.2, 0.1]
    hint = '; globals that would do: model.parameters, weights, layers'
    for name, why in (('modle.parameters', "the script has no global 'modle'" + hint),
                      ('model.nope', "model has no attribute 'nope'" + hint),
                      ('model.b.data', 'model.b.data is a float, not a list, matrix or dict of matrices of Value' + hint),
                      ('ragged', 'ragged is a list of 2 items, not a list, matrix or dict of matrices of Value' + hint),
                      ('twice', 'twice holds the same Value twice; each parameter once')):
        with pytest.raises(BadParams) as e:
            record_script(driver, params=name)
        assert str(e.value) == f"--params {name!r}: {why}"
    with pytest.raises(ValueError, match=r"^--params 'model\[0\]': write the name of a global"):
        record_script(driver, params='model[0]')


def test_cli_record_says_which_parameters_it_took(tmp_path):
    driver = install(tmp_path, 'closures.py', 'accumulate.py')
    runner = CliRunner()
    r = runner.invoke(cli_main, ['record', str(driver), '-o', str(tmp_path / 't.json')])
    assert r.exit_code == 0, r.output
    line = line_of(driver, 'total = Value(0.0)')
    assert (f"parameters: 3 leaves made before the first op that backward reaches and the loss uses like a "
            f"parameter (no `state_dict` or `params` global); left out: 1 the loss only adds (line {line} "
            f"`total = Value(0.0)`); choose with --params NAME (model.parameters, weights, layers would do)\n") in r.output
    r = runner.invoke(cli_main, ['record', str(driver), '-o', str(tmp_path / 't.json'), '--params', 'model.parameters'])
    assert r.exit_code == 0 and 'parameters: the 3 values of --params model.parameters\n' in r.output
    r = runner.invoke(cli_main, ['record', str(driver), '--params', 'nothing'])
    assert r.exit_code == 2 and r.output.startswith("Error: --params 'nothing': the script has no global 'nothing'")
    assert len(r.output.strip().splitlines()) == 1


# -- the closure reader on its own -------------------------------------------------------------------
class Node:
    """Just enough of a micrograd Value for the reader: data, grad, a set of children."""

    def __init__(self, data, kids=(), grad=0.0):
        self.data, self.grad, self._prev = data, grad, set(kids)


def test_the_closure_reader_makes_one_edge_per_addition_in_order_on_its_line():
    a, b = Node(3.0, grad=0.25), Node(5.0, grad=-1.0)
    out = Node(15.0, (a, b), grad=7.0)

    def backward():
        b.grad += a.data * out.grad
        a.grad -= b.data * out.grad
        b.grad = 2.0 * out.grad + b.grad
    out._backward = backward
    first = backward.__code__.co_firstlineno
    edges = closure_reader()(out, [a, b])
    assert [(e[0] is a, e[1], e[2] - first, e[3]) for e in edges] == \
        [(False, 3.0, 1, False), (True, -5.0, 2, False), (False, 2.0, 3, False)]
    assert (a.grad, b.grad, out.grad) == (0.25, -1.0, 7.0)        # every grad as it was


def test_the_closure_reader_marks_an_assignment_on_its_line_and_an_untouched_child():
    a, b = Node(3.0), Node(5.0)
    out = Node(8.0, (a, b))

    def backward():
        x = 4.0
        a.grad = x * out.grad
        return x
    out._backward = backward
    first = backward.__code__.co_firstlineno
    edges = closure_reader()(out, [a, b])
    assert [(e[0] is a, e[1], e[2] - first, e[3]) for e in edges] == [(True, 4.0, 2, True), (False, 0.0, 0, False)]
    assert (a.grad, b.grad) == (0.0, 0.0)


def test_the_closure_reader_on_a_child_added_to_then_assigned_and_on_a_closure_without_code():
    a, b = Node(3.0), Node(5.0)
    out = Node(8.0, (a, b))

    def backward():
        a.grad += 2.0 * out.grad
        b.grad += out.grad
        a.grad = 5.0 * out.grad
    out._backward = backward
    first = backward.__code__.co_firstlineno
    edges = closure_reader()(out, [a, b])
    assert [(e[0] is a, e[1], e[2] - first, e[3]) for e in edges] == [(False, 1.0, 2, False), (True, 5.0, 3, True)]

    def adds_to(node, out):
        node.grad += 4.0 * out.grad
    out._backward = functools.partial(adds_to, a, out)      # no __code__: no def line to name
    edges = closure_reader()(out, [a, b])
    line = adds_to.__code__.co_firstlineno + 1
    assert [(e[0] is a, e[1], e[2], e[3]) for e in edges] == [(True, 4.0, line, False), (False, 0.0, 0, False)]
