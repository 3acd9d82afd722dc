"""An independent, bare transcription of the reference microgpt algorithm.

Used as an oracle by the tests (our package must produce the same floats) and as
the baseline "engine with no recording support at all" by the benchmarks. It
imports nothing from this project, keeps the reference's recursive topological
sort and its double `math.exp`, and holds its state in a closure, not a module.
"""

import math
import random
import sys


class BareValue:
    __slots__ = ('data', 'grad', '_children', '_local_grads')

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other):
        other = other if isinstance(other, BareValue) else BareValue(other)
        return BareValue(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other):
        other = other if isinstance(other, BareValue) else BareValue(other)
        return BareValue(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k):
        return BareValue(self.data**k, (self,), (k * self.data**(k - 1),))

    def log(self):
        return BareValue(math.log(self.data), (self,), (1 / self.data,))

    def exp(self):
        return BareValue(math.exp(self.data), (self,), (math.exp(self.data),))

    def relu(self):
        return BareValue(max(0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self): return self * -1
    def __radd__(self, other): return self + other
    def __sub__(self, other): return self + (-other)
    def __rsub__(self, other): return other + (-self)
    def __rmul__(self, other): return self * other
    def __truediv__(self, other): return self * other**-1
    def __rtruediv__(self, other): return other * self**-1

    def backward(self):
        order, seen = [], set()

        def visit(v):
            if v not in seen:
                seen.add(v)
                for c in v._children:
                    visit(c)
                order.append(v)

        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 100_000))
        try:
            visit(self)
        finally:
            sys.setrecursionlimit(limit)
        self.grad = 1
        for v in reversed(order):
            for c, lg in zip(v._children, v._local_grads):
                c.grad += lg * v.grad


def make_reference(docs, seed=42, n_layer=1, n_embd=16, block_size=16, n_head=4):
    """Shuffle docs with Random(seed), build vocab and parameters; return a namespace
    with `step(k, num_steps)` (one Adam step, returns the loss float),
    `loss_of(doc)` (loss Value, not backpropagated), `sample(temperature)` and the state."""
    rng = random.Random(seed)
    docs = list(docs)
    rng.shuffle(docs)
    uchars = sorted(set(''.join(docs)))
    BOS = len(uchars)
    vocab = len(uchars) + 1
    hd = n_embd // n_head

    def matrix(nout, nin, std=0.08):
        return [[BareValue(rng.gauss(0, std)) for _ in range(nin)] for _ in range(nout)]

    sd = {'wte': matrix(vocab, n_embd), 'wpe': matrix(block_size, n_embd), 'lm_head': matrix(vocab, n_embd)}
    for i in range(n_layer):
        for nm in ('attn_wq', 'attn_wk', 'attn_wv', 'attn_wo'):
            sd[f'layer{i}.{nm}'] = matrix(n_embd, n_embd)
        sd[f'layer{i}.mlp_fc1'] = matrix(4 * n_embd, n_embd)
        sd[f'layer{i}.mlp_fc2'] = matrix(n_embd, 4 * n_embd)
    params = [p for mat in sd.values() for row in mat for p in row]

    def lin(x, w):
        return [sum(a * b for a, b in zip(row, x)) for row in w]

    def smax(ls):
        mx = max(v.data for v in ls)
        ex = [(v - mx).exp() for v in ls]
        tot = sum(ex)
        return [e / tot for e in ex]

    def rms(x):
        ms = sum(a * a for a in x) / len(x)
        s = (ms + 1e-5) ** -0.5
        return [a * s for a in x]

    def forward(tok, pos, K, Vs):
        x = rms([t + p for t, p in zip(sd['wte'][tok], sd['wpe'][pos])])
        for li in range(n_layer):
            res = x
            x = rms(x)
            q, k, v = (lin(x, sd[f'layer{li}.attn_w{c}']) for c in 'qkv')
            K[li].append(k)
            Vs[li].append(v)
            out = []
            for h in range(n_head):
                s = h * hd
                qh = q[s:s + hd]
                kh = [kk[s:s + hd] for kk in K[li]]
                vh = [vv[s:s + hd] for vv in Vs[li]]
                al = [sum(qh[j] * kh[t][j] for j in range(hd)) / hd**0.5 for t in range(len(kh))]
                aw = smax(al)
                out.extend(sum(aw[t] * vh[t][j] for t in range(len(vh))) for j in range(hd))
            x = [a + b for a, b in zip(lin(out, sd[f'layer{li}.attn_wo']), res)]
            res = x
            x = [a.relu() for a in lin(rms(x), sd[f'layer{li}.mlp_fc1'])]
            x = [a + b for a, b in zip(lin(x, sd[f'layer{li}.mlp_fc2']), res)]
        return lin(x, sd['lm_head'])

    def loss_of(doc, parts=None):
        """parts: a list to append (logits, probs, loss) of every position to (for tests)."""
        toks = [BOS] + [uchars.index(c) for c in doc] + [BOS]
        n = min(block_size, len(toks) - 1)
        K, Vs = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]
        losses = []
        for pos in range(n):
            logits = forward(toks[pos], pos, K, Vs)
            probs = smax(logits)
            losses.append(-probs[toks[pos + 1]].log())
            if parts is not None:
                parts.append((logits, probs, losses[-1]))
        return (1 / n) * sum(losses)

    m = [0.0] * len(params)
    v = [0.0] * len(params)

    def step(k, num_steps, lr=0.01, b1=0.85, b2=0.99, eps=1e-8):
        loss = loss_of(docs[k % len(docs)])
        loss.backward()
        lr_t = lr * (1 - k / num_steps)
        for i, p in enumerate(params):
            m[i] = b1 * m[i] + (1 - b1) * p.grad
            v[i] = b2 * v[i] + (1 - b2) * p.grad ** 2
            m_hat = m[i] / (1 - b1 ** (k + 1))
            v_hat = v[i] / (1 - b2 ** (k + 1))
            p.data -= lr_t * m_hat / (v_hat ** 0.5 + eps)
            p.grad = 0
        return loss.data

    def sample(temperature=0.5):
        K, Vs = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]
        tok, out = BOS, []
        for pos in range(block_size):
            probs = smax([l / temperature for l in forward(tok, pos, K, Vs)])
            tok = rng.choices(range(vocab), weights=[p.data for p in probs])[0]
            if tok == BOS:
                break
            out.append(uchars[tok])
        return ''.join(out)

    class Ref:
        pass

    ref = Ref()
    ref.docs, ref.uchars, ref.BOS, ref.vocab_size = docs, uchars, BOS, vocab
    ref.state_dict, ref.params, ref.rng = sd, params, rng
    ref.step, ref.loss_of, ref.sample, ref.forward = step, loss_of, sample, forward
    return ref
