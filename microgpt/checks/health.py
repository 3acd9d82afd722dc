"""Gradient health of a recorded step, per scope: norms, zeros, NaN/inf, extremes, flags.

    report = health_report(trace)
    print(format_health_table(report))
    report.flags      # ['layer0/mlp/relu: 64 of 64 ReLU units dead (output 0 at every position)', ...]

Nodes are grouped by scope without the position ('layer0/attn/head1/attn_weights'
gathers that head's softmax at every position; by_position=True keeps them
apart); parameters are grouped by matrix ('params/layer0.mlp_fc1'). Constants
are left out: their grads exist but nothing uses them. Per group: node count,
L2 norm of the grads, share of grads that are exactly 0, NaN and inf counts
(data and grad), the largest |grad| and |data| and the nodes holding them; for
ReLU groups also how many units (the 4*n_embd hidden units of an MLP) output 0 at
every position of the document, i.e. are dead for it.

Flags, each a short string naming the scope (usable as a picture's note):
    nan / inf       any NaN or infinite data or grad
    dead ReLUs      at least DEAD_RELU_SHARE of a group's units dead
    vanishing       grad norm < VANISH_NORM in a group the backward pass reached
    exploding       some |grad| > EXPLODE_GRAD
    large values    some |data| > LARGE_DATA (exp overflows past 709)
Thresholds, set against the default model (benchmarks/bench_gradcheck.py prints
these figures): on a fresh model's 'christopher' step the smallest group grad
norm is 2.8e-3 (an attention head's logits), the largest |grad| 2.6 (d loss / d
prob, 1 / (n p)) and the largest |data| 39 (the sum of the position losses);
each flag sits two to four orders of magnitude beyond those.
"""

import math
from dataclasses import dataclass, field

from ..recording.ops import OP_CODE
from ..recording.scopes import scope_path

VANISH_NORM = 1e-7      # group grad L2 norm below this: vanishing
EXPLODE_GRAD = 1e3      # any |grad| above this: exploding
LARGE_DATA = 1e4        # any |data| above this: large values
DEAD_RELU_SHARE = 0.5   # flag a ReLU group when this share of its units is dead


@dataclass
class ScopeHealth:
    """The gradient health of one group of nodes."""
    scope: str
    nodes: int
    grad_norm: float
    zero_grad: float            # share of nodes whose grad is exactly 0
    nan: int                    # nodes with a NaN data or grad
    inf: int                    # nodes with an infinite data or grad
    max_abs_grad: float
    max_grad_node: int
    max_abs_data: float
    max_data_node: int
    reached: bool               # did the backward pass reach any node of it
    relu_units: int = None      # ReLU groups: hidden units, and how many are dead
    dead_units: int = None
    flags: list = field(default_factory=list)

    def to_dict(self):
        d = {k: getattr(self, k) for k in ('scope', 'nodes', 'grad_norm', 'zero_grad', 'nan', 'inf',
                                           'max_abs_grad', 'max_grad_node', 'max_abs_data', 'max_data_node',
                                           'reached', 'flags')}
        if self.relu_units is not None:
            d.update(relu_units=self.relu_units, dead_units=self.dead_units)
        return d


@dataclass
class HealthFlag:
    scope: str
    kind: str           # 'nan' | 'inf' | 'dead_relu' | 'vanishing' | 'exploding' | 'large_data'
    message: str
    nodes: list         # node ids the flag is about (the extreme node, or the dead units' nodes)

    def to_dict(self):
        return {'scope': self.scope, 'kind': self.kind, 'message': self.message, 'nodes': self.nodes}


@dataclass
class HealthReport:
    groups: list                # [ScopeHealth], in the order the scopes were first made
    flagged: list               # [HealthFlag]
    thresholds: dict
    loss: float = None

    @property
    def flags(self):
        """The flags as short human strings."""
        return [f.message for f in self.flagged]

    @property
    def ok(self):
        return not self.flagged

    def group(self, scope):
        for g in self.groups:
            if g.scope == scope:
                return g
        raise KeyError(f"no group {scope!r}; groups: {', '.join(g.scope for g in self.groups)}")

    def to_dict(self):
        return {'check': 'health', 'ok': self.ok, 'loss': self.loss, 'thresholds': self.thresholds,
                'flags': [f.to_dict() for f in self.flagged], 'groups': [g.to_dict() for g in self.groups]}


class _Counters:
    """What health_report counts per group of scopes."""
    __slots__ = ('nodes', 'sq', 'zeros', 'nan', 'inf', 'max_grad', 'max_grad_node', 'max_data', 'max_data_node',
                 'reached')

    def __init__(self):
        self.nodes = self.zeros = self.nan = self.inf = 0
        self.sq = self.max_grad = self.max_data = 0.0   # sq: sum of squared finite grads
        self.max_grad_node = self.max_data_node = -1
        self.reached = False                            # some node of the group got a grad in backward


def health_report(trace, *, by_position=False, vanish_norm=VANISH_NORM, explode_grad=EXPLODE_GRAD,
                  large_data=LARGE_DATA, dead_relu_share=DEAD_RELU_SHARE):
    """A `HealthReport` of `trace`, one group per scope (positions merged unless
    by_position), flags per the thresholds (module docstring)."""
    const, relu = OP_CODE['const'], OP_CODE['relu']
    data, grad, ops, scope = trace.data, trace.grad, trace.op, trace.scope
    rank = trace.backward_rank
    key_of = {}                 # scope id -> group index
    keys, acc = [], []
    units = []                  # per group: {(pos, unit index): ...} built as relu nodes come
    for sid, s in enumerate(trace.scopes):
        k = s if by_position else s._replace(pos=None)
        if k not in keys:
            keys.append(k)
            acc.append(_Counters())
            units.append(None)
        key_of[sid] = keys.index(k)
    seen_at = {}                # (group, pos) -> relu nodes met so far: the unit index
    for i in range(len(trace)):
        code = ops[i]
        if code == const:
            continue
        gi = key_of[scope[i]]
        a = acc[gi]
        d, g = data[i], grad[i]
        a.nodes += 1
        if g == 0:
            a.zeros += 1
        if d != d or g != g:
            a.nan += 1
        elif math.isinf(d) or math.isinf(g):
            a.inf += 1
        if g == g and not math.isinf(g):
            a.sq += g * g
        ag, ad = abs(g), abs(d)
        if ag > a.max_grad or a.max_grad_node < 0:
            a.max_grad, a.max_grad_node = ag, i
        if ad > a.max_data or a.max_data_node < 0:
            a.max_data, a.max_data_node = ad, i
        if rank[i] >= 0:
            a.reached = True
        if code == relu:
            pos = trace.scopes[scope[i]].pos
            j = seen_at.get((gi, pos), 0)
            seen_at[(gi, pos)] = j + 1
            if units[gi] is None:
                units[gi] = {}
            alive, members = units[gi].setdefault(j, [False, []])
            units[gi][j][0] = alive or d > 0
            members.append(i)

    groups, flagged = [], []
    for gi, k in enumerate(keys):
        a = acc[gi]
        n, sq, zeros, nan, inf, reached = a.nodes, a.sq, a.zeros, a.nan, a.inf, a.reached
        mg, mgi, md, mdi = a.max_grad, a.max_grad_node, a.max_data, a.max_data_node
        if not n:
            continue
        path = scope_path(k)
        h = ScopeHealth(scope=path, nodes=n, grad_norm=math.sqrt(sq), zero_grad=zeros / n, nan=nan, inf=inf,
                        max_abs_grad=mg, max_grad_node=mgi, max_abs_data=md, max_data_node=mdi, reached=reached)
        flags = []
        if nan:
            flags.append(HealthFlag(path, 'nan', f"{path}: {nan} node{'s' if nan != 1 else ''} with NaN", []))
        if inf:
            flags.append(HealthFlag(path, 'inf', f"{path}: {inf} node{'s' if inf != 1 else ''} with inf", []))
        if units[gi] is not None:
            u = units[gi]
            dead = [j for j in sorted(u) if not u[j][0]]
            h.relu_units, h.dead_units = len(u), len(dead)
            if dead and len(dead) >= dead_relu_share * len(u):
                flags.append(HealthFlag(path, 'dead_relu',
                                        f"{path}: {len(dead)} of {len(u)} ReLU units dead (output 0 at every position)",
                                        [i for j in dead for i in u[j][1]]))
        if reached and h.grad_norm < vanish_norm:
            flags.append(HealthFlag(path, 'vanishing',
                                    f"{path}: grad norm {h.grad_norm:.2g} < {vanish_norm:g} (vanishing)", []))
        if mg > explode_grad:
            flags.append(HealthFlag(path, 'exploding',
                                    f"{path}: |grad| {mg:.3g} at node {mgi} > {explode_grad:g} (exploding)", [mgi]))
        if md > large_data:
            flags.append(HealthFlag(path, 'large_data',
                                    f"{path}: |data| {md:.3g} at node {mdi} > {large_data:g} (large values)", [mdi]))
        h.flags = [f.message for f in flags]
        flagged.extend(flags)
        groups.append(h)
    thresholds = {'vanish_norm': vanish_norm, 'explode_grad': explode_grad, 'large_data': large_data,
                  'dead_relu_share': dead_relu_share}
    loss = trace.loss if 'loss_id' in trace.meta else None
    return HealthReport(groups=groups, flagged=flagged, thresholds=thresholds, loss=loss)


def format_health_table(report, only_flagged=False):
    """One row per group: nodes, grad norm, zero share, NaN/inf, extremes, dead units, flags."""
    groups = [g for g in report.groups if g.flags] if only_flagged else report.groups
    lines = [f"gradient health: {'ok' if report.ok else f'{len(report.flagged)} flag(s)'}"
             + (f"; loss {report.loss:.6f}" if report.loss is not None else '')]
    if groups:
        w = max(5, max(len(g.scope) for g in groups))
        lines.append(f"  {'scope':<{w}}  {'nodes':>6}  {'grad norm':>9}  {'zero':>5}  {'nan/inf':>7}  "
                     f"{'max|grad|':>9}  {'max|data|':>9}  {'dead':>6}")
        for g in groups:
            dead = f"{g.dead_units}/{g.relu_units}" if g.relu_units is not None else ''
            lines.append(f"  {g.scope:<{w}}  {g.nodes:>6}  {g.grad_norm:>9.2e}  {g.zero_grad:>5.0%}  "
                         f"{f'{g.nan}/{g.inf}':>7}  {g.max_abs_grad:>9.2e}  {g.max_abs_data:>9.2e}  {dead:>6}")
    for f in report.flags:
        lines.append(f"  ! {f}")
    return '\n'.join(lines)
