"""Recording a user's own script (microgpt.recording.script): the fixture scripts in
tests/scripts run unmodified in a child process, copied into a temporary folder."""

import os
import random
import time
from pathlib import Path

import pytest

from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import record_step
from microgpt.recording.script import NoBackward, ScriptRaised, ScriptTimeout, record_script
from microgpt.recording.script.places import parse_tags

SCRIPTS = Path(__file__).resolve().parent / 'scripts'
NAMES = ['emma', 'olivia', 'ava', 'isabella', 'sophia', 'mia']


def install(tmp_path, name, as_name=None, edit=None):
    """Copy fixture `name` into tmp_path (with a small input.txt); `edit`: (old, new)
    text replaced once. Returns the script path."""
    text = (SCRIPTS / name).read_text()
    if edit is not None:
        old, new = edit
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / (as_name or name)
    path.write_text(text)
    (tmp_path / 'input.txt').write_text('\n'.join(NAMES) + '\n')
    return path


def line_of(path, text):
    """1-based line of the only line of `path` containing `text`."""
    hits = [i for i, ln in enumerate(Path(path).read_text().splitlines(), 1) if text in ln]
    assert len(hits) == 1, (text, hits)
    return hits[0]


@pytest.fixture(scope='module')
def microgpt_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp('mgpt')
    path = install(folder, 'microgpt_style.py')
    return path, record_script(path, args=['1'])


def reference_step(names):
    """record_step on the document the script's first step trains on, with the
    parameters the script draws: random.seed(42), shuffle, then the matrices."""
    docs = list(names)
    rng = random.Random(42)
    rng.shuffle(docs)
    tok = Tokenizer(sorted(set(''.join(docs))))
    config = GPTConfig(vocab_size=tok.vocab_size)
    return record_step(init_params(config, rng), config, tok, docs[0]), docs[0]


def test_microgpt_style_script_equals_record_step_bit_for_bit(microgpt_run):
    _, trace = microgpt_run
    ref, doc = reference_step(NAMES)
    assert len(trace) == len(ref)
    for column in ('op', 'data', 'grad', 'child_ptr', 'child', 'local', 'backward_order'):
        assert getattr(trace, column).tobytes() == getattr(ref, column).tobytes(), column
    assert trace.pow_exponent == ref.pow_exponent
    assert trace.param_names == ref.param_names and trace.param_shapes == ref.param_shapes
    assert trace.meta['loss_id'] == ref.meta['loss_id']
    assert trace.meta['recorded_from']['convention'] == 'microgpt'
    assert trace.meta['recorded_from']['params_from'] == 'state_dict'
    assert trace.meta['recorded_from']['tags'] == {'head': ['h'], 'layer': ['li'], 'pos': ['pos_id']}


def test_microgpt_style_tags_from_loop_variables(microgpt_run):
    path, trace = microgpt_run
    ref, doc = reference_step(NAMES)
    n = len(doc) + 1
    assert trace.positions() == list(range(n))
    assert trace.layers() == [0]
    assert trace.heads() == [0, 1, 2, 3]
    # the same number of ops per position as the port's own scopes give
    assert trace.position_nodes_count() == ref.position_nodes_count()
    # every relu node was made by the script's relu line, inside gpt, at layer 0
    relu_line = line_of(path, 'x = [xi.relu() for xi in x]')
    relus = [i for i in range(len(trace)) if trace.op_name(i) == 'relu']
    assert len(relus) == 64 * n
    for i in relus:
        src = trace.sources[trace.source[i]]
        assert (src[0], src[1], src[2]) == ('microgpt_style.py', relu_line, ('gpt',))
        pos, layer, block, head, role = trace.scope_of(i)
        assert (layer, block, head, role) == (0, 'gpt', None, f'line {relu_line}')
    # the mean loss is below the position loop: pos_id no longer counts there
    loss_scope = trace.scope_of(trace.meta['loss_id'])
    assert loss_scope[0] is None and loss_scope[4] == f"line {line_of(path, 'loss = (1 / n) * sum(losses)')}"
    # the exp of softmax is made in softmax, called from gpt's head loop
    exp_line = line_of(path, 'exps = [(val - max_val).exp() for val in logits]')
    heads = {trace.scope_of(i)[3] for i in range(len(trace))
             if trace.op_name(i) == 'exp' and trace.sources[trace.source[i]][2] == ('gpt', 'softmax')}
    assert heads == {0, 1, 2, 3}
    assert all(trace.sources[trace.source[i]][1] == exp_line for i in range(len(trace)) if trace.op_name(i) == 'exp')


def test_micrograd_style_closures(tmp_path):
    path = install(tmp_path, 'micrograd_style.py')
    trace = record_script(path)
    rf = trace.meta['recorded_from']
    assert (rf['convention'], rf['class'], rf['params_from']) == ('micrograd', 'Value', 'leaves made before the first op')
    # MLP(3, [4, 4, 1]): 4*(3+1) + 4*(4+1) + 1*(4+1) parameters, made in Neuron.__init__
    assert trace.param_shapes == {'params': (1, 41)}
    tanh = [i for i in range(len(trace)) if trace.op_name(i) == 'tanh']
    assert len(tanh) == 4 * 9   # 4 examples x 9 neurons
    tanh_line = line_of(path, "out = Value(t, (self,), 'tanh')")
    grad_line = line_of(path, 'self.grad += (1 - t**2) * out.grad')
    for i in tanh:
        (c,) = trace.children(i)
        t = trace.data[i]
        assert trace.local_grads(i) == [(1 - t**2) * 1.0]       # probed from the closure
        xp, xm, fp, fm = trace.probes[i][0]                       # and by re-running tanh
        assert abs((fp - fm) / (xp - xm) - (1 - t**2)) < 1e-6
        src = trace.sources[trace.source[i]]
        assert src[5] == tanh_line and src[6] == grad_line
        assert src[2] == ('MLP.__call__', 'Layer.__call__', 'Neuron.__call__')
    # the loss and its grads: 1 at the root, children's grads as the user's backward left them
    assert trace.grad[trace.meta['loss_id']] == 1.0
    mul = next(i for i in range(len(trace)) if trace.op_name(i) == 'mul' and len(trace.children(i)) == 2)
    a, b = trace.children(mul)
    assert trace.local_grads(mul) == [trace.data[b], trace.data[a]]


def test_micrograd_step_n_sees_updated_parameters(tmp_path):
    path = install(tmp_path, 'micrograd_style.py')
    first, third = record_script(path, step=1), record_script(path, step=3)
    assert len(first) == len(third)
    assert third.meta['recorded_from']['params_from'] == 'leaves made before step 3'
    p1, p3 = first.data[:41].tolist(), third.data[:41].tolist()
    assert p1 != p3 and all(abs(x - y) < 1 for x, y in zip(p1, p3))
    assert third.data[third.meta['loss_id']] < first.data[first.meta['loss_id']]


def test_script_reads_input_txt_from_its_own_folder(tmp_path, monkeypatch):
    path = install(tmp_path, 'microgpt_style.py')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    trace = record_script(os.path.relpath(path, elsewhere), args=['1'])
    assert trace.meta['recorded_from']['script'] == 'microgpt_style.py'
    assert len(trace.positions()) >= 3


def test_a_users_own_microgpt_module_is_theirs(tmp_path):
    """A folder with microgpt.py (their engine) and train.py importing it."""
    install(tmp_path, 'micrograd_style.py', as_name='microgpt.py')
    train = tmp_path / 'train.py'
    train.write_text("import microgpt\nprint('trained', microgpt.loss.data)\n")
    # importing microgpt.py runs its training loop, whose first backward() is recorded
    trace = record_script(train)
    assert trace.meta['recorded_from']['convention'] == 'micrograd'
    assert trace.sources[trace.source[trace.meta['loss_id']]][0] == 'microgpt.py'


def test_no_backward(tmp_path):
    path = install(tmp_path, 'no_backward.py')
    with pytest.raises(NoBackward, match=r"no_backward.py finished without being recorded: "
                                         r"backward\(\) was never called \(class Value, micrograd convention\)"):
        record_script(path)


def test_fewer_backward_calls_than_step(tmp_path):
    path = install(tmp_path, 'micrograd_style.py')
    with pytest.raises(NoBackward, match=r"backward\(\) was called 20 times; --step 25 asks for the 25th call"):
        record_script(path, step=25)


def test_class_without_graph_attributes(tmp_path):
    path = tmp_path / 'foo.py'
    path.write_text("class Foo:\n    def __init__(self, x):\n        self.data, self.grad = x, 0\n"
                    "    def backward(self):\n        self.grad = 1\n\nFoo(1.0).backward()\n")
    with pytest.raises(NoBackward, match="class Foo has data and grad but neither _children nor _prev"):
        record_script(path)


def test_no_class_at_all(tmp_path):
    path = tmp_path / 'plain.py'
    path.write_text("print(sum(range(10)))\n")
    with pytest.raises(NoBackward, match=r"no scalar autograd class was found: no class with a backward\(\) "
                                         r"method was defined in plain.py or a module in its folder"):
        record_script(path)


def test_sys_exit_before_backward(tmp_path):
    path = install(tmp_path, 'no_backward.py')
    path.write_text(path.read_text() + "\nimport sys\nsys.exit(3)\n")
    with pytest.raises(NoBackward, match=r"no_backward.py exited \(status 3\) before it was recorded"):
        record_script(path)


def test_script_that_raises_shows_the_users_traceback(tmp_path):
    path = install(tmp_path, 'raises.py')
    with pytest.raises(ScriptRaised, match="raises.py raised ZeroDivisionError: float division by zero") as e:
        record_script(path)
    tb = e.value.traceback
    assert tb.startswith('Traceback (most recent call last):\n')
    assert f'line {line_of(path, "loss = normalise(Value(1.0), Value(0.0))")}, in <module>' in tb
    assert f'line {line_of(path, "return x / total")}, in normalise' in tb
    assert f'line {line_of(path, "return Value(self.data / other.data")}, in __truediv__' in tb
    for ours in ('child.py', 'runpy', 'recorder.py', 'microgpt/recording'):
        assert ours not in tb
    assert tb.rstrip().endswith('ZeroDivisionError: float division by zero')


def test_script_that_runs_forever_is_stopped(tmp_path):
    path = install(tmp_path, 'forever.py')
    t0 = time.perf_counter()
    with pytest.raises(ScriptTimeout, match=r"forever.py ran past --timeout 2 s without its backward\(\) "
                                            r"call number 1 and was stopped"):
        record_script(path, timeout=2)
    assert time.perf_counter() - t0 < 10
    pid = int((tmp_path / 'pid.txt').read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="script 'nope.py' does not exist"):
        record_script('nope.py')
    path = install(tmp_path, 'no_backward.py')
    with pytest.raises(ValueError, match="step must be an integer >= 1"):
        record_script(path, step=0)
    with pytest.raises(ValueError, match=r"--tag 'pos': write FIELD=VARIABLE"):
        record_script(path, tags=['pos'])
    with pytest.raises(ValueError, match=r"--tag 'row=i'"):
        parse_tags(['row=i'])
    assert parse_tags(['pos=i'])['pos'] == ('i',) and parse_tags([])['head'] == ('h', 'head')


def test_tag_override(tmp_path):
    """--tag pos=t: the attention logits' key index becomes the position tag there."""
    path = install(tmp_path, 'microgpt_style.py')
    trace = record_script(path, args=['1'], tags=['pos=t', 'layer=nothing'])
    assert trace.meta['recorded_from']['tags'] == {'head': ['h'], 'pos': ['t']}
    assert trace.layers() == []
    logits_line = line_of(path, 'attn_logits = [sum(q_h[j] * k_h[t][j] for j in range(head_dim)) / head_dim**0.5')
    tagged = {trace.scope_of(i)[0] for i in range(len(trace))
              if trace.sources[trace.source[i]][1] == logits_line}
    assert tagged == set(range(len(reference_step(NAMES)[1]) + 1))


# -- the node check on a script's trace --------------------------------------------------------
from click.testing import CliRunner  # noqa: E402

import cli  # noqa: E402
from graphviz_export.select import function_view, line_view  # noqa: E402
from microgpt.checks.findings import format_node_report  # noqa: E402
from microgpt.checks.nodes import check_trace  # noqa: E402
from microgpt.recording import Trace  # noqa: E402

TANH_OK = 'self.grad += (1 - t**2) * out.grad'
TANH_BAD = 'self.grad += (1 - t) * out.grad'
LOG_OK = 'return Value(math.log(self.data), (self,), (1 / self.data,))'
LOG_BAD = 'return Value(math.log(self.data), (self,), (-1 / self.data,))'


def test_node_check_passes_on_both_conventions(microgpt_run, tmp_path):
    assert check_trace(microgpt_run[1]).ok
    result = check_trace(record_script(install(tmp_path, 'micrograd_style.py')))
    assert result.ok and result.checked['probed'] == 36 and result.skipped == []


def test_wrong_tanh_derivative_names_its_line(tmp_path):
    path = install(tmp_path, 'micrograd_style.py', edit=(TANH_OK, TANH_BAD))
    trace = record_script(path)
    result = check_trace(trace)
    tanh = {i for i in range(len(trace)) if trace.op_name(i) == 'tanh'}
    assert set(result.nodes) == tanh and {f.kind for f in result.failures} == {'local'}
    f = result.first
    t = trace.data[f.node]
    assert f.found == (1 - t) * 1.0 and abs(f.expected - (1 - t * t)) < 1e-6
    line = line_of(path, TANH_BAD)
    assert f.message.startswith(f"line {line}: your derivative of tanh is wrong (node {f.node}, made by "
                                f"line {line_of(path, 'return act.tanh()')} `return act.tanh()`;")
    assert f"line {line}: your derivative of tanh is wrong" in format_node_report(result)


def test_wrong_log_derivative_in_microgpt_style_names_its_line(tmp_path):
    path = install(tmp_path, 'microgpt_style.py', edit=(LOG_OK, LOG_BAD))
    trace = record_script(path, args=['1'])
    result = check_trace(trace)
    logs = {i for i in range(len(trace)) if trace.op_name(i) == 'log'}
    assert set(result.nodes) == logs and len(logs) == len(trace.positions())
    assert result.first.message.startswith(f"line {line_of(path, LOG_BAD)}: your derivative of log is wrong")
    f = result.first
    assert f.found == -1 / trace.data[f.child_id] and abs(f.found + f.expected) < 1e-6 * abs(f.expected)


def test_script_trace_json_round_trip(tmp_path):
    trace = record_script(install(tmp_path, 'micrograd_style.py'))
    back = Trace.from_json(trace.to_json())
    assert back == trace
    assert back.op_names[-1] == 'tanh' and back.sources == trace.sources and back.probes == trace.probes


def test_function_and_line_views(microgpt_run):
    path, trace = microgpt_run
    sel = function_view(trace, 'rmsnorm')
    assert set(sel.nodes) == {i for i in range(len(trace)) if 'rmsnorm' in trace.sources[trace.source[i]].funcs}
    line = line_of(path, 'x = [xi.relu() for xi in x]')
    sel = line_view(trace, line)
    assert set(sel.nodes) == {i for i in range(len(trace)) if trace.op_name(i) == 'relu'}
    assert 'line' in sel.title and '`x = [xi.relu() for xi in x]`' in sel.title
    with pytest.raises(ValueError, match="line 1 of microgpt_style.py made no node in this trace; lines that did:"):
        line_view(trace, 1)
    with pytest.raises(ValueError, match="function 'nope' made no node in this trace; functions: .*rmsnorm"):
        function_view(trace, 'nope')


# -- the command line ------------------------------------------------------------------------------------
def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def test_cli_record_then_gradcheck_render_inspect_export(tmp_path):
    path = install(tmp_path, 'micrograd_style.py', edit=(TANH_OK, TANH_BAD))
    out = tmp_path / 't.json'
    r = invoke('record', path, '-o', out, '--timeout', 60)
    assert r.exit_code == 0, r.output
    assert f"wrote {out}: " in r.output and '(class Value, micrograd convention;' in r.output
    r = invoke('gradcheck', '--trace', out)
    assert r.exit_code == 1
    assert f"line {line_of(path, TANH_BAD)}: your derivative of tanh is wrong" in r.output
    r = invoke('render', '--trace', out, '--function', 'Neuron.__call__', '--format', 'dot', '-o', '-')
    assert r.exit_code == 0, r.output
    assert r.output.startswith('digraph') and 'tanh' in r.output
    r = invoke('render', '--trace', out, '--line', line_of(path, 'return act.tanh()'), '--format', 'json', '-o', '-')
    assert r.exit_code == 0, r.output
    r = invoke('inspect', '--trace', out, '--json')
    assert r.exit_code == 0 and '"tanh": 36' in r.output
    r = invoke('export', '--trace', out, '-o', tmp_path / 'again.json')
    assert r.exit_code == 0
    assert Trace.from_json(tmp_path / 'again.json') == Trace.from_json(out)


def test_cli_record_failures_exit_1(tmp_path):
    r = invoke('record', install(tmp_path, 'raises.py'))
    assert r.exit_code == 1
    assert 'Traceback (most recent call last):' in r.output and 'in normalise' in r.output
    assert r.output.rstrip().endswith('Error: raises.py raised ZeroDivisionError: float division by zero')
    r = invoke('record', install(tmp_path, 'forever.py'), '--timeout', 1)
    assert r.exit_code == 1
    assert r.output == ("Error: forever.py ran past --timeout 1 s without its backward() call number 1 "
                        "and was stopped\n")
    r = invoke('record', install(tmp_path, 'no_backward.py'))
    assert r.exit_code == 1 and 'backward() was never called' in r.output
    r = invoke('record', install(tmp_path, 'no_backward.py'), '--tag', 'row=i')
    assert r.exit_code == 2 and "--tag 'row=i': write FIELD=VARIABLE" in r.output


def test_cli_record_help_says_it_runs_the_script():
    r = invoke('record', '--help')
    assert r.exit_code == 0 and 'This RUNS SCRIPT' in r.output
