"""Identities of backprop, checked on the tape: what the lecture says out loud, verified.

    badges = identities(trace)          # [Badge], once per trace (cached)
    by_node(trace)                      # {node id: [badge index]}: the badges a node carries
    kv_positions(trace, k_node)         # a cached key's grad, position by position

Each is computed from the recorded floats alone and says whether it holds and by how
much it misses (`deviation`, the largest over its nodes):

  logits      the logits' grad = (probs - onehot(target)) / n at each position (the
              derivative of -log softmax, averaged over n positions); the engine never
              computes it this way (it goes through exp, the sum and log), so it holds
              up to rounding: ROUND_TOL
  residual    a residual add x + f(x) passes its grad unchanged to both branches: local
              derivatives exactly 1, contributions exactly equal to its grad
  dead-relu   a ReLU whose input is <= 0 passes nothing back: local 0, contribution 0,
              and its input's grad is 0 when the ReLU is its only user
  cached-kv   a key or value made at position t is read by positions t, t+1, ... (never an
              earlier one); its grad = the sum of what each of them sent back (listed per
              position by kv_positions), up to the rounding of regrouping the sum
  loss-init   the loss against -log(1/vocab) = log(vocab), the loss of guessing uniformly,
              which a fresh model's small weights do (holds within LOSS_INIT_RTOL)

Measured on the correct engine (default config and n_layer 2, n_embd 8: 'emma',
'christopher', 'a', 'olivia'): the logits identity misses by at most 5.6e-17 and the
cached-kv one by at most 1.7e-18; residual and dead-relu hold exactly. ROUND_TOL leaves four
orders of magnitude of margin and still sees exp's derivative off by 0.1% (1e-4 on a
logit's grad).
"""

import math
from dataclasses import dataclass, field

from .ops import OP_CODE
from .scopes import scope_path
from .sums import fsum

ROUND_TOL = 1e-12        # absolute: every identity here is about grads of size <= 1
LOSS_INIT_RTOL = 0.15    # a fresh model's loss within 15% of log(vocab) (measured: -12% .. +0.5%)
_RELU, _ADD, _CONST = OP_CODE['relu'], OP_CODE['add'], OP_CODE['const']
KINDS = ('logits', 'residual', 'dead-relu', 'cached-kv', 'loss-init')
TITLES = {
    'logits': "logits' grad = (probs − onehot(target)) / n",
    'residual': 'residual: the grad passes through unchanged',
    'dead-relu': "a dead ReLU's input gets grad 0",
    'cached-kv': "a cached key/value's grad = Σ over the positions that read it",
    'loss-init': 'loss vs −log(1/vocab): uniform guessing',
}


@dataclass
class Badge:
    """One identity at one place (a position, a layer's block, a scope)."""
    kind: str            # KINDS
    scope: str           # where: 'pos2/lm_head/logits'
    holds: bool
    deviation: float     # the largest miss over its nodes (0.0: exact)
    nodes: list          # node ids it is about (drawn nodes holding one carry the badge)
    text: str            # one line: what was checked, and the figure
    detail: list = field(default_factory=list)   # per node or per position, as the kind has it

    @property
    def title(self):
        return TITLES[self.kind]

    def to_dict(self):
        return {'kind': self.kind, 'title': self.title, 'scope': self.scope, 'holds': self.holds,
                'deviation': self.deviation, 'nodes': len(self.nodes), 'text': self.text}


def identities(trace):
    """Every identity of the trace that it has the nodes for (a user's script has no model
    roles: none), in KINDS order, then scope order. Cached on the trace."""
    got = trace._cache.get('identities')
    if got is None:
        got = []
        _ = trace.backward_rank      # Trace.uses orders by it: built once, not searched per node
        if 'loss_id' in trace.meta and len(trace.backward_order):
            for make in (_logits, _residual, _dead_relu, _cached_kv, _loss_init):
                got.extend(make(trace))
        trace._cache['identities'] = got
    return got


def by_node(trace):
    """{node id: [index into identities(trace)]} of every node a badge is about."""
    got = trace._cache.get('identities_by_node')
    if got is None:
        got = {}
        for k, b in enumerate(identities(trace)):
            for i in b.nodes:
                got.setdefault(i, []).append(k)
        trace._cache['identities_by_node'] = got
    return got


def _values(trace, sid):
    """The values (Trace.names: the elements of a role's vector) of scope `sid`, in index order."""
    return trace.names().scope_values(sid)


def _scopes(trace, role, block=None, pos=None):
    """[(scope id, scope)] with `role` (and `block`, `pos`) that hold nodes, in scope order."""
    groups = trace.runs_of_scope()
    return [(sid, s) for sid, s in enumerate(trace.scopes)
            if s.role == role and (block is None or s.block == block) and (pos is None or s.pos == pos)
            and groups[sid]]


def _first(trace, role, block, pos):
    """The values of the one scope of (role, block, pos) with no layer, or []."""
    got = [sid for sid, s in _scopes(trace, role, block, pos) if s.layer is None]
    return _values(trace, got[0]) if len(got) == 1 else []


# -- logits -----------------------------------------------------------------------------------------
def _logits(trace):
    tokens = trace.meta.get('tokens')
    losses = trace.meta.get('position_loss_ids') or []
    if tokens is None or not losses:
        return []
    n = len(losses)
    out = []
    for p in trace.positions():
        logits = _first(trace, 'logits', 'lm_head', p)
        probs = _first(trace, 'probs', 'loss', p)
        if not logits or len(logits) != len(probs) or p + 1 >= len(tokens):
            continue
        target = tokens[p + 1]
        worst, detail = 0.0, []
        for j, (lg, pr) in enumerate(zip(logits, probs)):
            expected = (trace.data[pr] - (1.0 if j == target else 0.0)) / n
            dev = abs(trace.grad[lg] - expected)
            if not dev <= worst:            # NaN stays the worst
                worst = dev
            detail.append({'node': lg, 'expected': expected, 'grad': trace.grad[lg]})
        holds = worst <= ROUND_TOL
        out.append(Badge('logits', f'pos{p}/lm_head/logits', holds, worst, logits,
                         f"grad of logits@pos{p} = (probs − onehot({_char(trace, target)})) / {n}: "
                         f"{'holds' if holds else 'FAILS'}, largest deviation {worst:.2g}", detail))
    return out


def _char(trace, k):
    chars = trace.meta.get('chars')
    if chars is None:
        return str(k)
    return repr(chars[k]) if k < len(chars) else 'BOS'


# -- residual -----------------------------------------------------------------------------------------
def _residual(trace):
    out = []
    ptr, local, grad, op = trace.child_ptr, trace.local, trace.grad, trace.op
    for sid, s in _scopes(trace, 'residual'):
        ids = [i for i in _values(trace, sid) if op[i] == _ADD]
        if not ids:
            continue
        worst, exact = 0.0, True
        for i in ids:
            g = grad[i]
            for e in range(ptr[i], ptr[i + 1]):
                c = local[e] * g
                if local[e] != 1 or not (c == g or (c != c and g != g)):
                    exact = False
                    for dev in (abs(local[e] - 1), abs(c - g)):
                        if not dev <= worst:
                            worst = dev
        out.append(Badge('residual', scope_path(s), exact, worst, ids,
                         f"{scope_path(s)}: local derivatives 1 and 1, each branch gets the grad unchanged: "
                         + ('holds exactly' if exact else f'FAILS by up to {worst:.2g}')))
    return out


# -- dead ReLUs ---------------------------------------------------------------------------------------
def _dead_relu(trace):
    out = []
    ptr, child, local, grad, data, op = (trace.child_ptr, trace.child, trace.local, trace.grad,
                                          trace.data, trace.op)
    pptr = trace.parents_index()[0]
    for sid, s in _scopes(trace, 'relu'):
        ids = [i for i in _values(trace, sid) if op[i] == _RELU]
        dead = [i for i in ids if data[child[ptr[i]]] <= 0]
        if not dead:
            continue
        worst = 0.0
        for i in dead:
            e = ptr[i]
            x = child[e]
            devs = [abs(local[e]), abs(local[e] * grad[i])]
            if pptr[x + 1] - pptr[x] == 1:          # the ReLU is its input's only user
                devs.append(abs(grad[x]))
            for dev in devs:
                if not dev <= worst:
                    worst = dev
        holds = worst == 0
        out.append(Badge('dead-relu', scope_path(s), holds, worst, dead,
                         f"{scope_path(s)}: {len(dead)} of {len(ids)} ReLUs dead (input <= 0), each passes back 0: "
                         + ('holds exactly' if holds else f'FAILS, up to {worst:.2g} passes')))
    return out


# -- cached keys and values -----------------------------------------------------------------------------
def kv_positions(trace, node):
    """[(position, Σ of what that position sent back to `node`)] in position order, and the
    positions' sum (fsum): a cached key's or value's grad, one reading position at a time."""
    by = {}
    for p, _lg, c in trace.uses(node):
        pos = trace.scope_of(p).pos
        by.setdefault(pos, []).append(c)
    rows = []
    for pos in sorted(by, key=lambda x: (x is None, x if x is not None else 0)):
        s = 0.0
        for c in by[pos]:           # in backward order, as the engine adds them
            s += c
        rows.append((pos, s))
    return rows, fsum(s for _, s in rows)


def _cached_kv(trace):
    out = []
    for role in ('k', 'v'):
        for sid, s in _scopes(trace, role, 'attn'):
            ids = _values(trace, sid)
            if not ids:
                continue
            worst, early, reads = 0.0, [], set()
            for i in ids:
                rows, total = kv_positions(trace, i)
                reads.update(p for p, _ in rows)
                early += [p for p, _ in rows if p is None or p < s.pos]
                dev = abs(trace.grad[i] - total)
                if not dev <= worst:
                    worst = dev
            holds = worst <= ROUND_TOL and not early
            shown = ', '.join(map(str, sorted(x for x in reads if x is not None)))
            text = (f"{scope_path(s)}: grad = Σ over the positions that read it ({shown}): "
                    + (f'holds, largest deviation {worst:.2g}' if holds else
                       f'read by an earlier position {early[0]}' if early else f'FAILS by {worst:.2g}'))
            out.append(Badge('cached-kv', scope_path(s), holds, worst, ids, text,
                             [{'position': p} for p in sorted(x for x in reads if x is not None)]))
    return out


# -- the loss at initialisation -----------------------------------------------------------------------------
def _loss_init(trace):
    config = trace.meta.get('config') or {}
    vocab = config.get('vocab_size')
    if not vocab or vocab < 2:
        return []
    loss = trace.loss
    uniform = math.log(vocab)
    dev = loss - uniform
    holds = abs(dev) <= LOSS_INIT_RTOL * uniform
    text = (f"loss {loss:.4f} vs −log(1/{vocab}) = {uniform:.4f} ({dev:+.4f}): "
            + ("a fresh model guesses about uniformly" if holds else
               "far below uniform guessing: this model has learned something" if dev < 0 else
               "above uniform guessing: worse than not knowing"))
    return [Badge('loss-init', 'loss', holds, abs(dev), [trace.meta['loss_id']], text,
                  [{'loss': loss, 'uniform': uniform, 'vocab': vocab}])]
