"""Parameter-level check: selection, exact restore, the correct engine passes, the
numbers agree with PyTorch, a wrong grad is caught and sorted first."""

import json
import math

import pytest

from microgpt.checkpoint import load_checkpoint, save_checkpoint
from microgpt.checks.params import ATOL, EPS, RTOL, check_params, compare, format_param_table, select_cells
from microgpt.model import doc_loss, flat_params
from microgpt.train import start_run, train
from tests.tiny_model import tiny_model


@pytest.fixture
def tiny():
    return tiny_model()


def test_select_cells_by_matrix_cell_and_sample(tiny):
    params, config, tok = tiny
    assert len(select_cells(params)) == 1264
    assert select_cells(params, 'layer0.attn_wq[3][5]') == [('layer0.attn_wq', 3, 5)]
    wq = select_cells(params, 'layer0.attn_wq')
    assert len(wq) == 64 and wq[0] == ('layer0.attn_wq', 0, 0) and wq[-1] == ('layer0.attn_wq', 7, 7)
    both = select_cells(params, ['lm_head[1][2]', 'wte[0][0]', 'wte[0][0]'])
    assert both == [('wte', 0, 0), ('lm_head', 1, 2)]        # parameter order, once each
    a = select_cells(params, sample=10, seed=3)
    assert len(a) == 10 and a == select_cells(params, sample=10, seed=3)
    assert a != select_cells(params, sample=10, seed=4)
    assert select_cells(params, 'wpe', sample=1000) == select_cells(params, 'wpe')


@pytest.mark.parametrize('select,match', [
    ('wtf', "unknown parameter 'wtf'; parameters: wte, wpe"),
    ('wte[27][0]', r"cell \[27\]\[0\] is outside wte, which is 27x8"),
    ('wte[1]', "cannot read parameter"),
])
def test_select_errors_name_the_problem(tiny, select, match):
    params, _, _ = tiny
    with pytest.raises(ValueError, match=match):
        select_cells(params, select)


def test_compare():
    assert compare(1.0, 1.0, RTOL, ATOL) == (0.0, 0.0, 0.0, True)
    abs_err, rel_err, score, ok = compare(1.0, 1.0 + 2e-5, RTOL, ATOL)
    assert abs_err == pytest.approx(2e-5) and rel_err == pytest.approx(2e-5, rel=1e-4)
    assert score == pytest.approx(2e-5 / (1e-8 + 1e-5 * (1 + 2e-5)), rel=1e-9) and not ok
    assert compare(0.0, 5e-9, RTOL, ATOL)[3]                  # under the absolute floor
    assert compare(0.0, 0.0, 0.0, 0.0)[3]
    assert not compare(math.nan, 1.0, RTOL, ATOL)[3]
    assert not compare(1.0, math.inf, RTOL, ATOL)[3]


@pytest.mark.parametrize('doc', ['emma', 'ava', 'christopher'])
def test_correct_engine_passes_and_restores_everything(tiny, doc):
    params, config, tok = tiny
    flat = flat_params(params)
    for k, p in enumerate(flat):
        p.grad = k   # stale grads from somewhere: must come back as they were
    before = [(p.data, p.grad) for p in flat]
    result = check_params(params, config, tok, doc, sample=25, seed=len(doc))
    assert [(p.data, p.grad) for p in flat] == before
    assert result.ok, format_param_table(result)
    assert len(result.rows) == 25 and result.forward_passes == 51
    assert (result.eps, result.rtol, result.atol) == (EPS, RTOL, ATOL) == (1e-6, 1e-5, 1e-8)
    assert [r.score for r in result.rows] == sorted((r.score for r in result.rows), reverse=True)
    loss, _ = doc_loss(params, config, tok.encode(doc))
    assert result.loss == loss.data
    # grads of a few cells that matter, checked outright
    cells = check_params(params, config, tok, doc, select=['lm_head[0][0]', 'layer0.mlp_fc1[3][5]',
                                                           f'wte[{tok.encode(doc)[1]}][2]'])
    assert cells.ok and all(r.analytic != 0 for r in cells.rows)


def test_unused_rows_are_exactly_zero_both_ways(tiny):
    params, config, tok = tiny
    z = tok.encode('z')[1]
    result = check_params(params, config, tok, 'emma', select=f'wte[{z}][0]')
    row = result.rows[0]
    assert (row.analytic, row.numeric, row.abs_err, row.ok) == (0.0, 0.0, 0.0, True)


def test_a_wrong_grad_is_caught_and_listed_first(tiny, monkeypatch):
    """Bend one parameter's analytic grad by 1% after backward: it alone fails, first."""
    from microgpt import engine
    params, config, tok = tiny
    target = params['layer0.attn_wv'][2][3]
    real = engine.accumulate

    def accumulate_then_bend(topo):
        real(topo)
        target.grad *= 1.01
    monkeypatch.setattr(engine, 'accumulate', accumulate_then_bend)
    result = check_params(params, config, tok, 'emma',
                          select=['layer0.attn_wv[2][4]', 'layer0.attn_wv[2][3]', 'wpe[0][0]'])
    assert [r.cell for r in result.failures] == ['layer0.attn_wv[2][3]']
    worst = result.rows[0]
    assert worst.cell == 'layer0.attn_wv[2][3]' and not worst.ok
    assert worst.analytic == pytest.approx(1.01 * worst.numeric, rel=1e-6)
    assert worst.rel_err == pytest.approx(0.01 / 1.01, rel=1e-4)
    assert 'FAIL' in format_param_table(result).splitlines()[0]


def test_result_to_dict_and_table(tiny):
    params, config, tok = tiny
    result = check_params(params, config, tok, 'ava', select='wpe', sample=4, seed=0)
    d = json.loads(json.dumps(result.to_dict()))
    assert d['check'] == 'params' and d['ok'] is True and d['checked'] == 4 and d['failed'] == 0
    assert d['tolerances'] == {'eps': 1e-6, 'rtol': 1e-5, 'atol': 1e-8}
    assert d['rows'][0]['param'] == result.rows[0].cell
    text = format_param_table(result, limit=2)
    assert text.startswith('parameter check: ok — 0 of 4 parameters outside tolerance (eps 1e-06, rtol 1e-05, atol 1e-08)')
    assert result.rows[0].cell in text and result.rows[2].cell not in text
    assert '... 2 more (worst first)' in text


def test_trained_checkpoint_passes(tmp_path):
    """A tiny model trained 30 steps, saved and loaded: both checks pass on it."""
    from microgpt.checks.nodes import check_trace
    from microgpt.recording.step import record_step
    docs = ['emma', 'olivia', 'ava', 'isabella', 'sophia', 'mia', 'amelia', 'harper']
    run = start_run(docs, seed=1, n_embd=8, n_head=2, block_size=8)
    losses = train(run, 30)
    assert sum(losses[-8:]) < sum(losses[:8])        # it did learn something
    path = tmp_path / 'tiny.json'
    save_checkpoint(path, run.params, run.config, run.tokenizer, step=30)
    params, config, tok, step = load_checkpoint(path)
    assert step == 30
    for doc in ('mia', 'sophia'):
        result = check_params(params, config, tok, doc, sample=20, seed=2)
        assert result.ok, format_param_table(result)
        trace = record_step(params, config, tok, doc)
        nodes = check_trace(trace)
        assert nodes.ok and nodes.checked['local'] > 10000


def test_numeric_grads_agree_with_torch():
    """The finite differences and the analytic grads against torch autograd on the
    same weights, for a seeded sample of every matrix."""
    torch = pytest.importorskip('torch', reason="PyTorch not installed: pip install torch==2.13.0")
    from tests.test_torch_oracle import torch_doc_loss
    params, config, tok = tiny_model(seed=5)
    doc = 'olivia'
    result = check_params(params, config, tok, doc, sample=40, seed=9)
    assert result.ok
    W = {n: torch.tensor([[p.data for p in row] for row in m], dtype=torch.float64, requires_grad=True)
         for n, m in params.items()}
    tloss = torch_doc_loss(W, config, tok.encode(doc))
    tloss.backward()
    assert result.loss == pytest.approx(tloss.item(), rel=1e-12)
    for r in result.rows:
        theirs = W[r.name].grad[r.row, r.col].item()
        assert r.analytic == pytest.approx(theirs, rel=1e-10, abs=1e-15), r.cell
        assert compare(theirs, r.numeric, RTOL, ATOL)[3], (r.cell, theirs, r.numeric)
    assert len({r.name for r in result.rows}) >= 6
    assert sum(1 for r in result.rows if abs(r.numeric) > 1e-4) >= 10
