"""PyTorch float64 as an independent oracle: every op, and a whole training step's
loss and all 4,192 parameter grads. `.ci/run` installs torch so these always run
in CI; elsewhere: pip install torch==2.13.0 (or any CPU build) to enable them."""

import random

import pytest

from microgpt.data import Tokenizer
from microgpt.engine import Value
from microgpt.model import GPTConfig, doc_loss, init_params, param_shapes

torch = pytest.importorskip('torch', reason="PyTorch not installed: pip install torch==2.13.0 to run the oracle tests")

OPS = {
    'add': (lambda a, b: a + b, lambda a, b: a + b),
    'mul': (lambda a, b: a * b, lambda a, b: a * b),
    'sub': (lambda a, b: a - b, lambda a, b: a - b),
    'div': (lambda a, b: a / b, lambda a, b: a / b),
    'pow': (lambda a, b: a ** -0.5 * b, lambda a, b: a ** -0.5 * b),
    'log': (lambda a, b: a.log() * b, lambda a, b: a.log() * b),
    'exp': (lambda a, b: a.exp() * b, lambda a, b: a.exp() * b),
    'relu': (lambda a, b: (a - 1.0).relu() * b, lambda a, b: torch.relu(a - 1.0) * b),
}


@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('x,y', [(0.7, 1.3), (2.5, -0.4), (1.9, 3.1)])
def test_op_forward_and_grads_match_torch(name, x, y):
    vf, tf = OPS[name]
    a, b = Value(x), Value(y)
    out = vf(a, b)
    out.backward()
    ta = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    tout = tf(ta, tb)
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-14)
    assert a.grad == pytest.approx(ta.grad.item(), rel=1e-13, abs=1e-300)
    assert b.grad == pytest.approx(tb.grad.item(), rel=1e-13, abs=1e-300)


def torch_doc_loss(W, config, tokens):
    """The same model written with tensors: all positions at once, a causal mask."""
    T = min(config.block_size, len(tokens) - 1)
    inp = torch.tensor(tokens[:T])
    tgt = torch.tensor(tokens[1:T + 1])
    H, hd = config.n_head, config.head_dim

    def rmsnorm(x):
        return x * ((x * x).mean(-1, keepdim=True) + 1e-5) ** -0.5

    x = rmsnorm(W['wte'][inp] + W['wpe'][:T])                       # (T, C)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    for li in range(config.n_layer):
        res = x
        x = rmsnorm(x)
        q, k, v = (x @ W[f'layer{li}.attn_w{c}'].T for c in 'qkv')     # (T, C)
        q, k, v = (t.view(T, H, hd).transpose(0, 1) for t in (q, k, v))  # (H, T, hd)
        att = (q @ k.transpose(1, 2)) / hd ** 0.5                      # (H, T, T)
        att = torch.softmax(att.masked_fill(mask, float('-inf')), -1)
        x = (att @ v).transpose(0, 1).reshape(T, -1) @ W[f'layer{li}.attn_wo'].T + res
        res = x
        x = torch.relu(rmsnorm(x) @ W[f'layer{li}.mlp_fc1'].T) @ W[f'layer{li}.mlp_fc2'].T + res
    logits = x @ W['lm_head'].T                                        # (T, vocab)
    return -torch.log_softmax(logits, -1)[torch.arange(T), tgt].mean()


@pytest.mark.parametrize('doc,n_layer', [('christopher', 1), ('emma', 2)])
def test_whole_step_loss_and_all_grads_match_torch(doc, n_layer):
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=n_layer)
    params = init_params(config, random.Random(7))
    tokens = tok.encode(doc)
    loss, _ = doc_loss(params, config, tokens)
    loss.backward()

    W = {n: torch.tensor([[p.data for p in row] for row in m], dtype=torch.float64, requires_grad=True)
         for n, m in params.items()}
    tloss = torch_doc_loss(W, config, tokens)
    tloss.backward()

    assert loss.data == pytest.approx(tloss.item(), rel=1e-12)
    n_checked = 0
    for name, (rows, cols) in param_shapes(config).items():
        ours = torch.tensor([[p.grad for p in row] for row in params[name]], dtype=torch.float64)
        theirs = W[name].grad
        assert torch.equal(ours == 0, theirs == 0), f"backward: {name} has zero grads where torch has none"
        nonzero = theirs != 0
        rel = ((ours - theirs).abs()[nonzero] / theirs.abs()[nonzero]).max().item()
        assert rel <= 1e-10, f"backward: {name} grads differ from torch by {rel:.3e} relative"
        n_checked += rows * cols
    assert n_checked == (4192 if n_layer == 1 else 4192 + 3072)
