"""diagnose(): the one call under `gradcheck`, record + both checks + health + replay;
diagnose_trace(): the same Diagnosis for a saved trace, drawn by the same failure picture."""

import json
import re
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import cli
from graphviz_export.options import DEFAULT_RENDERER
from graphviz_export.steps.failure import failure_view
from microgpt.checks.diagnose import AUTO_SAMPLE, Diagnosis, diagnose, diagnose_trace
from microgpt.checks.faults import active_faults
from microgpt.engine import PRIMITIVES, Value
from microgpt.recording import Trace
from microgpt_graph.plumbing import drawn_by
from tests.test_record_script import TANH_BAD, TANH_OK, install


def test_clean_engine(tiny):
    params, config, tok = tiny
    d = diagnose(params, config, tok, 'ava')
    assert d.ok and d.first is None and d.highlight() == {} and d.notes() == []
    assert len(d.params.rows) == AUTO_SAMPLE
    assert d.nodes.dloss == []             # nothing to confirm
    assert d.format().endswith('gradcheck: ok')
    one = diagnose(params, config, tok, 'ava', select='wpe[1][2]', health=False, nodes=False)
    assert [r.cell for r in one.params.rows] == ['wpe[1][2]'] and one.nodes is None and one.health is None


def test_fault_is_found_confirmed_and_removed(tiny):
    params, config, tok = tiny
    before = {a: Value.__dict__[a] for a in PRIMITIVES.values()}
    d = diagnose(params, config, tok, 'emma', fault='relu-flip', select='layer0.mlp_fc1', sample=6)
    assert {a: Value.__dict__[a] for a in PRIMITIVES.values()} == before and active_faults() == []
    assert not d.ok and d.fault.name == 'relu-flip'
    assert d.first.op == 'relu' and d.first.kind == 'local'
    assert list(d.highlight()) == d.nodes.nodes
    assert d.params.faults == ['relu-flip'] and not d.params.ok
    # replay: the relu's own grad is right, its input's is not
    first, below = d.nodes.dloss
    assert (first['node'], first['ok']) == (d.first.node, True)
    assert (below['node'], below['ok']) == (d.first.child_id, False)
    text = d.format()
    assert text.startswith('fault injected: relu-flip (relu: gradient flipped')
    assert f"{d.first.name} #{d.first.node} at {d.first.scope}" in text and '(DISAGREES)' in text
    assert d.first.name == d.trace.name(d.first.node) and d.first.name.startswith('relu[')
    assert text.endswith('gradcheck: FAIL')
    out = json.loads(json.dumps(d.to_dict()))
    assert out['ok'] is False and out['fault']['name'] == 'relu-flip'
    assert out['nodes']['first']['node'] == d.first.node and out['params']['checked'] == 6


def test_scope_limits_the_node_check(tiny):
    params, config, tok = tiny
    d = diagnose(params, config, tok, 'emma', fault='exp-x2', scope='pos2/*', param_check=False)
    assert d.params is None and not d.ok
    assert all(f.scope.startswith('pos2/') for f in d.nodes.failures)
    assert d.nodes.checked['sum'] == len(d.trace.nodes(pos=2))


def test_unknown_fault(tiny):
    params, config, tok = tiny
    with pytest.raises(ValueError, match='unknown fault'):
        diagnose(params, config, tok, 'emma', fault='nope')


# -- one path: a saved trace gives the same Diagnosis, drawn by the same failure picture --------------
def _without_seconds(d):
    return {k: v for k, v in d.items() if k != 'seconds'}


def test_a_saved_trace_gets_the_diagnosis_of_the_recorded_step(tiny, tmp_path):
    params, config, tok = tiny
    recorded = diagnose(params, config, tok, 'emma', fault='exp-x2', param_check=False)
    recorded.trace.to_binary(tmp_path / 'emma.mgtrace')
    saved = diagnose_trace(Trace.load(tmp_path / 'emma.mgtrace'))
    assert isinstance(saved, Diagnosis) and saved.params is None and not saved.ok
    assert _without_seconds(saved.nodes.to_dict()) == _without_seconds(recorded.nodes.to_dict())
    assert saved.nodes.dloss == recorded.nodes.dloss and saved.nodes.dloss      # confirmed by replay, both
    assert saved.health.to_dict() == recorded.health.to_dict()
    assert saved.format().endswith('gradcheck: FAIL')
    assert 'first wrong (nearest the loss, backward step 10): exp → ' in saved.format()
    # the same picture: failure_view draws both the same, node for node and note for note
    assert failure_view(saved).digraph.source == failure_view(recorded).digraph.source
    limited = diagnose_trace(saved.trace, scope='pos2/*')
    assert all(f.scope.startswith('pos2/') for f in limited.nodes.failures)


def test_gradcheck_trace_render_exits_1_with_one_line_and_draws_the_failing_node(tmp_path):
    """`record` a script whose tanh backward is (1 - t) instead of (1 - t**2), then
    `gradcheck --trace X --render f.svg`: exit 1, one line on stderr, and the picture
    shows the first failing tanh node with the derivative it found and the right one."""
    script = install(tmp_path, 'micrograd_style.py', edit=(TANH_OK, TANH_BAD))
    runner = CliRunner()
    r = runner.invoke(cli.main, ['record', str(script), '-o', str(tmp_path / 'mlp.json')])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli.main, ['gradcheck', '--trace', str(tmp_path / 'mlp.json'), '--render',
                                 str(tmp_path / 'f.svg')])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 1, r.output
    assert r.stderr.splitlines() == [f"wrote {tmp_path / 'f.svg'}{drawn_by('svg', DEFAULT_RENDERER)}"]
    assert 'Traceback' not in r.output and r.stdout.rstrip().endswith('gradcheck: FAIL')
    root = ET.fromstring((tmp_path / 'f.svg').read_bytes())
    ns = {'s': 'http://www.w3.org/2000/svg'}
    marked = [g for g in root.iter('{http://www.w3.org/2000/svg}g')
              if g.get('class') == 'node' and any('d tanh/d arg0: found' in (t.text or '')
                                                  for t in g.iterfind('.//s:text', ns))]
    assert len(marked) == 1                                  # the first failing node, and only it
    texts = [t.text for t in marked[0].iterfind('.//s:text', ns)]
    found, should = re.search(r'found (\S+) \| should be (\S+)', ' '.join(texts)).groups()
    tip = marked[0].find('.//s:a', ns).get('{http://www.w3.org/1999/xlink}title')
    t = float(re.search(r'\ndata (\S+)\n', tip).group(1))     # the tanh's output
    assert float(found) == pytest.approx(1 - t, rel=1e-3)                # what the bug computes
    assert float(should) == pytest.approx(1 - t * t, rel=1e-3)           # the derivative of tanh
