"""`microgpt-graph inspect --why NODE`: the terminal's answer (made by, rules, paths + remainder =
grad) and its JSON, whose floats add up to the grad bit for bit; a bad NODE is a one-line error."""

import json

import pytest
from click.testing import CliRunner

import cli
from microgpt import model
from microgpt.recording import record_step
from microgpt.train import fresh_model
from tests.test_cli import one_line_error


@pytest.fixture(scope='module')
def trace():
    return record_step(*fresh_model(42), 'emma')


def test_inspect_why_prints_made_by_paths_and_a_remainder_that_close_the_grad(trace):
    cell = trace.param_nodes('layer0.attn_wq[3][5]')[0]
    r = CliRunner().invoke(cli.main, ['inspect', '--why', 'layer0.attn_wq[3][5]'])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == f"{trace.name(cell)} (node {cell}): param, data {trace.data[cell]:.6g}, grad {trace.grad[cell]:.6g}"
    init = 1 + next(k for k, t in enumerate(model.__loader__.get_source('microgpt.model').splitlines())
                    if '[[Value(rng.gauss(0, std))' in t)
    assert lines[1].startswith(f'made by microgpt/model.py:{init} (init_params:{init}):')
    assert any(t.startswith('grad = its 5 largest paths from the loss + the other ') for t in lines)
    assert any(t.startswith('  remainder (the other paths): ') and t.endswith('bit for bit') for t in lines)
    r = CliRunner().invoke(cli.main, ['inspect', '--why', str(cell), '--json'])
    d = json.loads(r.output)
    s = 0.0
    for p in d['paths']['paths']:
        s += p['product']
    for x in d['paths']['remainder']:
        s += x
    assert s == trace.grad[cell] == d['grad'] and d['paths']['exact']


def test_inspect_why_of_an_op_gives_the_rule_of_each_input(trace):
    i = next(i for i in range(len(trace)) if trace.op_name(i) == 'log')
    r = CliRunner().invoke(cli.main, ['inspect', '--why', str(i)])
    assert r.exit_code == 0, r.output
    x = trace.data[trace.children(i)[0]]
    assert f'd log(x)/dx = 1/x = 1/{x:.4g} = {1 / x:.4g}' in r.output
    assert 'doc_loss:' in r.output


@pytest.mark.parametrize('node,fragment', [('99999999', 'node 99999999 is not in this trace; node ids are 0..43894'),
                                            ('nosuch', "no node is named 'nosuch'")])
def test_inspect_why_of_a_bad_node_is_one_line(node, fragment):
    one_line_error(CliRunner().invoke(cli.main, ['inspect', '--why', node]), 2, "--why", fragment)


def test_the_route_count_reads_the_same_in_the_terminal_its_json_and_the_page(trace):
    """One number everywhere: the terminal's 'the other N', the JSON's count/others and the page's answer
    write a node's route count the same way, and it is the exact count (written in tests/test_why_paths)."""
    from graphviz_export.web.explorer.why import node_why
    from tests.test_why_paths import exact_counts

    cell = trace.param_nodes('layer0.attn_wq[3][5]')[0]
    exact = exact_counts(trace)[cell]
    r = CliRunner().invoke(cli.main, ['inspect', '--why', str(cell)])
    assert f'+ the other {exact - 5} (summed' in r.output
    d = json.loads(CliRunner().invoke(cli.main, ['inspect', '--why', str(cell), '--json']).output)
    page = node_why(trace, cell, sources=None)['paths']
    assert (d['paths']['count'], d['paths']['others']) == (page['count'], page['others']) == (str(exact), str(exact - 5))
