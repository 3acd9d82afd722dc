"""Node-level gradient check on a recorded `Trace`: which op's derivative is wrong.

    trace = record_step(params, config, tok, 'emma')
    result = check_trace(trace, dloss=trace.nodes(pos=0, role='relu')[:3])
    result.ok, result.first, result.nodes
    print(format_node_report(result))

The trace holds every node's op, its children's data, the exponent of a pow, the
local derivatives the engine stored and the grads backward produced, so each
node can be checked on its own. Four kinds of check, each a `NodeFailure.kind`:

  'forward'  data(node) == op(children's data), exactly (a replay of the op)
  'local'    each stored local derivative d node / d child vs a central
             difference of the op at the recorded inputs (below)
  'sum'      grad(node) == the sum of local * grad(parent) over its parents, added
             in backward order as backward adds them (so exactly, by default);
             grad(loss) == 1
  'dloss'    (only for the nodes asked for) grad(node) vs d loss / d node measured
             by replaying the forward from that node: its data is moved by +-h and
             every node that depends on it is recomputed in id order (ids are a
             topological order) with its op; constants stay constant

A wrong local derivative shows up as 'local' failures at exactly the nodes that
hold it, and nowhere else: grads further down are wrong too, but each follows
correctly from its parents, so 'sum' passes. A wrong accumulation (`=` for `+=`)
shows up as 'sum' failures at the nodes with several parents. Failures are listed
in backward order (trace.backward_rank: nearest the loss first), so `first` is
where the backward pass first went wrong.

Local derivatives, numerically. For child x of a node y = f(..., x, ...):
    h = REL_EPS * scale,  scale = |x| for log and pow (keeps x - h inside the domain
    near 0), 1 for exp (its relative curvature is 1 everywhere), max(|x|, 1) for
    mul and relu, max(|x|, |y|, 1) for add (so the sum's rounding is small
    against the step)
    expected = (f(x + h) - f(x - h)) / ((x + h) - (x - h))   (the step actually taken)
    ok iff |found - expected| <= ATOL + RTOL * max(|found|, |expected|) + round
    where round = 4 * 2^-52 * max(|f(x-h)|, |f(x)|, |f(x+h)|) / h bounds the rounding
    error of the difference itself. Measured on the correct engine (default model,
    'christopher': 189,506 edges; also 'emma', 'olivia', 'a', 15 x 'z') the worst
    relative error is 2e-10 and the worst use of the tolerance 2e-4, so
    RTOL = 1e-6 leaves over three orders of margin and still catches any local
    derivative off by more than 0.0001% (`result.worst` reports both figures).
Kinks (relu at 0, where |x| <= h): the central difference is meaningless there,
so a stored derivative is also accepted anywhere between the one-sided
differences (f(x+h) - f(x)) / h and (f(x) - f(x-h)) / h, i.e. anywhere in [0, 1]
for relu; such edges are counted in `nonsmooth`. For smooth ops that interval is
~h * f'' wide, below the tolerance. Inputs where the op fails or overflows (log of
<= 0, exp of > 709) are counted as `skipped`, not failed.

The 'dloss' check uses h = DLOSS_EPS * max(|x|, 1) (or * |x| when the wider step
leaves a log's domain) and the parameter check's tolerances (gradcheck.RTOL,
gradcheck.ATOL), with the same one-sided allowance for a kink crossed downstream.
"""

import math
import time
from dataclasses import dataclass, field

from ..errors import InputError
from ..recording.ops import OP_CODE, OPS
from ..recording.script.closures import assigning_use, derivative_line
from . import faults
from .params import ATOL as DLOSS_ATOL
from .params import EPS as DLOSS_EPS
from .params import RTOL as DLOSS_RTOL
from .params import compare

REL_EPS = 1e-6       # relative step of the local-derivative differences
RTOL = 1e-6       # relative tolerance of a local derivative
ATOL = 1e-12      # absolute floor (derivatives that are 0 or nearly)
SUM_RTOL = 0.0    # grad vs sum of contributions: exact by default
_ROUND = 4 * 2.0**-52

KINDS = ('forward', 'local', 'sum', 'dloss')
_ADD, _MUL, _POW, _LOG, _EXP, _RELU = (OP_CODE[o] for o in ('add', 'mul', 'pow', 'log', 'exp', 'relu'))
_CHECKED_OPS = (_ADD, _MUL, _POW, _LOG, _EXP, _RELU)


class NodeCheckError(InputError):
    """The check cannot run on this trace (no backward pass, a bad node id)."""


@dataclass
class NodeFailure:
    """One disagreement at one node (and, for 'local', one argument of it)."""
    node: int
    op: str
    scope: str          # scope path, e.g. 'pos3/layer0/attn/head1/attn_weights'
    kind: str           # 'forward' | 'local' | 'sum' | 'dloss'
    expected: float     # what the check computed
    found: float        # what the trace holds
    child: int = None   # for 'local': which argument (0 = left/only, 1 = right)
    child_id: int = None
    rank: int = -1      # place in the backward pass, 0 = loss (-1: not reached)
    source: object = None   # recording.sources.Source of a trace recorded from a script
    script: str = None      # that script's file name
    line: tuple = None      # (file, line) to blame in that script's files: where the
    #                         derivative of this edge is written ('local'), where a closure
    #                         set this grad with = ('sum'); see recording.script.closures

    @property
    def message(self):
        """The learner's line: 'line 51: your derivative of tanh is wrong (...)'; for a
        trace of the port, the reason with the node's scope."""
        src = self.source
        if src is None:
            return f"node {self.node} {self.op} at {self.scope}: {self.reason}"

        def at(file, line):
            return f"line {line}" if file == self.script else f"{file} line {line}"
        made = f"node {self.node}, made by {at(src.file, src.line)}" + (f" `{src.text}`" if src.text else '')
        if self.kind == 'local':
            file, line = self.line or (src.op_file, src.grad_line or src.op_line)
            head = f"{at(file, line)}: your derivative of {self.op} is wrong"
        elif self.kind == 'forward':
            head = f"{at(src.op_file, src.op_line)}: your {self.op} does not compute {self.op}"
        elif self.kind == 'sum' and self.line is not None:
            head = (f"{at(*self.line)}: this line sets a grad with = where backward must add to it with +=, "
                    f"so this node's grad is not the sum of what its users passed back")
        elif self.kind == 'sum':
            head = (f"{at(src.file, src.line)}: this node's grad is not the sum of what its users passed back "
                    f"(accumulate with += ?)")
        else:
            head = f"{at(src.file, src.line)}: this node's grad is not d loss / d node"
        return f"{head} ({made}; {self.reason})"

    @property
    def reason(self):
        """A short line for a table row or a picture's tooltip."""
        if self.kind == 'local':
            what = f"d {self.op}/d arg{self.child} (node {self.child_id})"
        elif self.kind == 'forward':
            what = f"{self.op} output"
        elif self.kind == 'sum':
            what = "grad vs sum of its parents' contributions"
        else:
            what = "grad vs d loss/d node, numerically"
        return f"{what}: found {self.found:.6g}, expected {self.expected:.6g}"

    def to_dict(self):
        d = {'node': self.node, 'op': self.op, 'scope': self.scope, 'kind': self.kind,
             'expected': self.expected, 'found': self.found, 'rank': self.rank, 'reason': self.reason}
        if self.child is not None:
            d.update(child=self.child, child_id=self.child_id)
        if self.source is not None:
            d.update(message=self.message, source={'file': self.source.file, 'line': self.source.line,
                                                   'op_file': self.source.op_file, 'op_line': self.source.op_line,
                                                   'grad_line': self.source.grad_line, 'text': self.source.text})
        if self.line is not None:
            d['line'] = {'file': self.line[0], 'line': self.line[1]}
        return d


@dataclass
class NodeCheckResult:
    """Every failure, nearest the loss first, and what was checked with which tolerances."""
    failures: list                  # [NodeFailure], in backward order
    checked: dict                   # {'forward': nodes, 'local': edges, 'sum': nodes, 'dloss': nodes}
    nonsmooth: int                  # local checks accepted only by the kink rule
    skipped: list                   # [(node, kind, why)]: could not be measured
    tolerances: dict
    seconds: float
    loss_id: int
    dloss: list = field(default_factory=list)   # [{'node', 'grad', 'numeric', 'step', 'abs_err', 'ok'}]
    worst: dict = field(default_factory=dict)   # largest relative error / tolerance use among passing local checks
    faults: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.failures

    @property
    def first(self):
        """The failure nearest the loss in backward order: where backward first went wrong."""
        return self.failures[0] if self.failures else None

    @property
    def nodes(self):
        """Failing node ids, each once, in backward order."""
        return list(dict.fromkeys(f.node for f in self.failures))

    def by_kind(self):
        out = {}
        for f in self.failures:
            out.setdefault(f.kind, set()).add(f.node)
        return out

    def highlight(self):
        """{node id: reason} of the failing nodes (first reason per node), for pictures."""
        out = {}
        for f in self.failures:
            out.setdefault(f.node, f.reason)
        return out

    def summary(self):
        """'636 exp nodes: local' style counts, per (op, kind)."""
        counts = {}
        for f in self.failures:
            counts.setdefault((f.op, f.kind), set()).add(f.node)
        return [f"{len(ids)} {op} node{'s' if len(ids) != 1 else ''}: {kind}"
                for (op, kind), ids in sorted(counts.items(), key=lambda kv: -len(kv[1]))]

    def to_dict(self):
        return {'check': 'nodes', 'ok': self.ok, 'loss_id': self.loss_id,
                'first': self.first.to_dict() if self.first else None,
                'failing_nodes': len(self.nodes), 'summary': self.summary(),
                'checked': self.checked, 'nonsmooth': self.nonsmooth,
                'skipped': [{'node': n, 'kind': k, 'why': w} for n, k, w in self.skipped],
                'tolerances': self.tolerances, 'worst': self.worst, 'seconds': self.seconds, 'faults': self.faults,
                'dloss': self.dloss, 'failures': [f.to_dict() for f in self.failures]}


# -- the ops, on plain floats ------------------------------------------------------------------
def _eval(code, xs, n):
    """The forward of op `code` on floats, exactly as the engine computes it."""
    if code == _ADD:
        return xs[0] + xs[1]
    if code == _MUL:
        return xs[0] * xs[1]
    if code == _POW:
        return xs[0] ** n
    if code == _LOG:
        return math.log(xs[0])
    if code == _EXP:
        return math.exp(xs[0])
    return max(0, xs[0])


def _is_float(v):
    return isinstance(v, (float, int))


def _same(a, b):
    return a == b or (a != a and b != b)


# -- (forward, local) ------------------------------------------------------------------------------
def _check_local(trace, ids, rel_eps, rtol, atol, failures, skipped):
    data, local, child, ptr, ops = trace.data, trace.local, trace.child, trace.child_ptr, trace.op
    exps = trace.pow_exponent
    n_nodes = n_edges = nonsmooth = 0
    worst_rel = worst_score = 0.0   # over the edges that passed outright: how close they came
    isfinite = math.isfinite
    for i in ids:
        code = ops[i]
        if code not in _CHECKED_OPS:
            continue
        a, b = ptr[i], ptr[i + 1]
        xs = [data[c] for c in child[a:b]]
        n = exps.get(i)
        y = data[i]
        try:
            fx = _eval(code, xs, n)
        except (ValueError, ZeroDivisionError, OverflowError) as e:
            skipped.append((i, 'forward', f"{OPS[code]} fails at the recorded input: {e}"))
            continue
        n_nodes += 1
        if not _is_float(fx):
            skipped.append((i, 'forward', f"{OPS[code]} of the recorded input is not a real number"))
            continue
        if not _same(fx, y):
            failures.append(('forward', i, None, fx, y))
        for k in range(b - a):
            found = local[a + k]
            x = xs[k]
            ax = abs(x)
            if code == _LOG or code == _POW:
                scale = ax
            elif code == _ADD:
                scale = max(ax, abs(fx), 1.0)
            elif code == _EXP:
                scale = 1.0
            else:
                scale = ax if ax > 1.0 else 1.0
            h = rel_eps * scale
            xp, xm = x + h, x - h
            try:
                if code == _ADD:
                    o = xs[1 - k]
                    fp, fm = xp + o, xm + o
                elif code == _MUL:
                    o = xs[1 - k]
                    fp, fm = xp * o, xm * o
                elif code == _RELU:
                    fp, fm = max(0, xp), max(0, xm)
                elif code == _EXP:
                    fp, fm = math.exp(xp), math.exp(xm)
                elif code == _LOG:
                    fp, fm = math.log(xp), math.log(xm)
                else:
                    fp, fm = xp ** n, xm ** n
            except (ValueError, ZeroDivisionError, OverflowError) as e:
                skipped.append((i, 'local', f"{OPS[code]} fails near the recorded input: {e}"))
                continue
            if not (_is_float(fp) and _is_float(fm)) or xp == xm:
                skipped.append((i, 'local', f"no usable step around {x!r}"))
                continue
            expected = (fp - fm) / (xp - xm)
            if not isfinite(expected):
                skipped.append((i, 'local', f"numerical derivative of {OPS[code]} is {expected}"))
                continue
            n_edges += 1
            tol = atol + _ROUND * max(abs(fp), abs(fm), abs(fx)) / h
            diff = abs(found - expected)
            big = max(abs(found), abs(expected))
            allowed = tol + rtol * big
            if diff <= allowed:
                if diff:
                    if diff > worst_rel * big:
                        worst_rel = diff / big
                    if diff > worst_score * allowed:
                        worst_score = diff / allowed
                continue
            if isfinite(found) and xp != x and x != xm:
                d_fwd, d_bwd = (fp - fx) / (xp - x), (fx - fm) / (x - xm)
                lo, hi = min(d_fwd, d_bwd), max(d_fwd, d_bwd)
                slack = 2 * tol + rtol * max(abs(lo), abs(hi))
                if lo - slack <= found <= hi + slack:
                    nonsmooth += 1
                    continue
            failures.append(('local', i, k, expected, found))
    return n_nodes, n_edges, nonsmooth, {'local_rel_err': worst_rel, 'local_score': worst_score}


# -- (local) for a script's own ops: the probes measured when it was recorded --------------------
def _check_probed(trace, ids, rtol, atol, failures, skipped):
    """Each stored local derivative of a script's own op (code past OPS) against the
    central difference of the probes recording.script took by re-running the op on
    inputs moved by +-h: the same tolerance and kink rule as _check_local. The
    forward of such an op cannot be replayed, so it is not checked."""
    data, local, ptr, ops, probes = trace.data, trace.local, trace.child_ptr, trace.op, trace.probes
    first = len(OPS)
    edges = nonsmooth = 0
    for i in ids:
        if ops[i] < first:
            continue
        a, b = ptr[i], ptr[i + 1]
        node_probes = probes.get(i) or ['no probe was recorded'] * (b - a)
        fx = data[i]
        for k in range(b - a):
            p = node_probes[k]
            if isinstance(p, str):
                skipped.append((i, 'local', f"{trace.op_name(i)}: {p}"))
                continue
            xp, xm, fp, fm = p
            if not (math.isfinite(fp) and math.isfinite(fm)) or xp == xm:
                skipped.append((i, 'local', f"{trace.op_name(i)}: no usable step around its input"))
                continue
            edges += 1
            found, x = local[a + k], (xp + xm) / 2
            expected = (fp - fm) / (xp - xm)
            h = (xp - xm) / 2
            tol = atol + _ROUND * max(abs(fp), abs(fm), abs(fx)) / h
            if abs(found - expected) <= tol + rtol * max(abs(found), abs(expected)):
                continue
            if math.isfinite(found) and xp != x and x != xm:   # a kink: between the one-sided slopes
                d_fwd, d_bwd = (fp - fx) / (xp - x), (fx - fm) / (x - xm)
                lo, hi = min(d_fwd, d_bwd), max(d_fwd, d_bwd)
                if lo - 2 * tol - rtol * max(abs(lo), abs(hi)) <= found <= hi + 2 * tol + rtol * max(abs(lo), abs(hi)):
                    nonsmooth += 1
                    continue
            failures.append(('local', i, k, expected, found))
    return edges, nonsmooth


# -- (sum) --------------------------------------------------------------------------------------------
def _check_sums(trace, ids, sum_rtol, failures):
    grad = trace.grad.tolist()
    local, child, ptr = trace.local, trace.child, trace.child_ptr
    acc = [0.0] * len(grad)
    loss = trace.meta['loss_id']
    acc[loss] = 1.0
    for p in trace.backward_order:   # the engine's order: each parent adds local * grad
        g = grad[p]
        for e in range(ptr[p], ptr[p + 1]):
            acc[child[e]] += local[e] * g
    count = 0
    for i in ids:
        count += 1
        e, f = acc[i], grad[i]
        if _same(e, f):
            continue
        if sum_rtol and math.isfinite(e) and math.isfinite(f) and abs(e - f) <= sum_rtol * max(abs(e), abs(f)):
            continue
        failures.append(('sum', i, None, e, f))
    return count


# -- (dloss): replaying the forward from one node ----------------------------------------------------
def _descendants_sorted(trace, node):
    return sorted(trace.descendants([node]))


def replay_loss(trace, node, value, order=None):
    """The loss recomputed with node's data set to `value`: every node that depends
    on it is re-evaluated, in id order, from its op and its children's (new or
    recorded) data; everything else, constants included, keeps its recorded data.
    `order`: the sorted descendant ids of node, if already known."""
    order = _descendants_sorted(trace, node) if order is None else order
    vals = trace.data.tolist()
    vals[node] = value
    ops, child, ptr, exps = trace.op, trace.child, trace.child_ptr, trace.pow_exponent
    for j in order:
        if j == node:
            continue
        a = ptr[j]
        code = ops[j]
        if code == _ADD:
            vals[j] = vals[child[a]] + vals[child[a + 1]]
        elif code == _MUL:
            vals[j] = vals[child[a]] * vals[child[a + 1]]
        elif code == _EXP:
            vals[j] = math.exp(vals[child[a]])
        elif code == _POW:
            vals[j] = vals[child[a]] ** exps[j]
        elif code == _LOG:
            vals[j] = math.log(vals[child[a]])
        elif code == _RELU:
            vals[j] = max(0, vals[child[a]])
    return vals[trace.meta['loss_id']]


def numeric_dloss(trace, node, eps=DLOSS_EPS):
    """(d loss / d node by central difference of `replay_loss`, the step used, the
    one-sided differences) — the step is eps * max(|x|, 1), or eps * |x| if the
    wider step leaves an op's domain."""
    order = _descendants_sorted(trace, node)
    own = next((j for j in order if trace.op[j] >= len(OPS)), None)
    if own is not None:
        raise NodeCheckError(f"node {node}: d loss / d node needs a replay through {trace.op_name(own)} "
                             f"(node {own}), the script's own op, which a trace cannot re-run")
    x = trace.data[node]
    base = trace.data[trace.meta['loss_id']]
    for h in (eps * max(abs(x), 1.0), eps * abs(x)):
        if h == 0:
            continue
        xp, xm = x + h, x - h
        try:
            up = replay_loss(trace, node, xp, order)
            down = replay_loss(trace, node, xm, order)
        except (ValueError, ZeroDivisionError, OverflowError):
            continue
        if not (_is_float(up) and _is_float(down)):
            continue
        return (up - down) / (xp - xm), h, ((up - base) / (xp - x), (base - down) / (x - xm))
    raise NodeCheckError(f"node {node}: the forward cannot be replayed around {x!r}")


def _check_dloss(trace, nodes, eps, rtol, atol, failures, skipped, rows):
    for i in nodes:
        g = trace.grad[i]
        try:
            numeric, h, (d_fwd, d_bwd) = numeric_dloss(trace, i, eps)
        except NodeCheckError as e:
            skipped.append((i, 'dloss', str(e)))
            continue
        abs_err, _, score, ok = compare(g, numeric, rtol, atol)
        if not ok and math.isfinite(g):
            lo, hi = min(d_fwd, d_bwd), max(d_fwd, d_bwd)
            slack = atol + rtol * max(abs(lo), abs(hi))
            ok = lo - slack <= g <= hi + slack
        rows.append({'node': i, 'grad': g, 'numeric': numeric, 'step': h, 'abs_err': abs_err, 'ok': ok})
        if not ok:
            failures.append(('dloss', i, None, numeric, g))


# -- the check ------------------------------------------------------------------------------------------
def check_trace(trace, *, local=True, sums=True, dloss=(), only=None,
                rel_eps=REL_EPS, rtol=RTOL, atol=ATOL, sum_rtol=SUM_RTOL,
                dloss_eps=DLOSS_EPS, dloss_rtol=DLOSS_RTOL, dloss_atol=DLOSS_ATOL):
    """Check a recorded trace node by node; returns a `NodeCheckResult`.

    local: the 'forward' and 'local' checks; sums: the 'sum' check; dloss: node
    ids to measure d loss / d node for by replay (each costs two replays of the
    part of the graph that depends on it); only: restrict the forward, local and
    sum checks to these node ids (e.g. trace.nodes(layer=0)). Tolerances: see
    the module docstring.
    """
    t0 = time.perf_counter()
    if 'loss_id' not in trace.meta or not len(trace.backward_order):
        raise NodeCheckError("this trace has no backward pass: record loss.backward() inside record()")
    n = len(trace)
    if only is None:
        ids = range(n)
    else:
        ids = sorted(set(only))
        bad = [i for i in ids if not (isinstance(i, int) and 0 <= i < n)]
        if bad:
            raise NodeCheckError(f"node {bad[0]!r} is not in this trace; node ids are 0..{n - 1}")
    dloss = list(dloss)
    bad = [i for i in dloss if not (isinstance(i, int) and 0 <= i < n)]
    if bad:
        raise NodeCheckError(f"node {bad[0]!r} is not in this trace; node ids are 0..{n - 1}")
    raw, skipped, rows = [], [], []
    checked = {'forward': 0, 'local': 0, 'sum': 0, 'dloss': 0}
    nonsmooth, worst = 0, {}
    if local and len(trace.op_names) > len(OPS):   # a script's own ops (tanh, gelu, ...)
        probed, nonsmooth = _check_probed(trace, ids, rtol, atol, raw, skipped)
        checked['local'] = checked['probed'] = probed
    if local:
        checked['forward'], edges, kinked, worst = _check_local(trace, ids, rel_eps, rtol, atol, raw, skipped)
        checked['local'] += edges
        nonsmooth += kinked
    if sums:
        checked['sum'] = _check_sums(trace, ids, sum_rtol, raw)
    if dloss:
        _check_dloss(trace, dloss, dloss_eps, dloss_rtol, dloss_atol, raw, skipped, rows)
        checked['dloss'] = len(rows)

    rank = trace.backward_rank
    script = trace.meta.get('recorded_from', {}).get('script')
    big = n
    order = {k: j for j, k in enumerate(KINDS)}
    raw.sort(key=lambda f: (rank[f[1]] if rank[f[1]] >= 0 else big, f[1], order[f[0]], f[2] or 0))
    failures = []
    for kind, i, k, expected, found in raw:
        child_id = trace.child[trace.child_ptr[i] + k] if k is not None else None
        failures.append(NodeFailure(node=i, op=trace.op_name(i), scope=trace.scope_path(i), kind=kind,
                                    source=trace.source_of(i), script=script, line=_blame(trace, kind, i, k),
                                    expected=float(expected), found=float(found), child=k,
                                    child_id=child_id, rank=rank[i]))
    tolerances = {'rel_eps': rel_eps, 'rtol': rtol, 'atol': atol, 'sum_rtol': sum_rtol,
                  'dloss_eps': dloss_eps, 'dloss_rtol': dloss_rtol, 'dloss_atol': dloss_atol}
    return NodeCheckResult(failures=failures, checked=checked, nonsmooth=nonsmooth, skipped=skipped,
                           tolerances=tolerances, seconds=time.perf_counter() - t0,
                           loss_id=trace.meta['loss_id'], dloss=rows, worst=worst, faults=faults.active_faults())


def _blame(trace, kind, i, k):
    """The (file, line) a script trace's failure names (NodeFailure.line), or None."""
    if trace.source is None:
        return None
    if kind == 'local':
        return derivative_line(trace, i, k)
    use = assigning_use(trace, i) if kind == 'sum' else None
    return use[2] if use else None


def format_node_report(result, limit=20):
    """The readable report: verdict, the first failure spelled out, then a table."""
    c = result.checked
    what = (f"{c['forward']} nodes' forward, {c['local']} local derivatives, {c['sum']} grad sums"
            + (f", {c['dloss']} d loss/d node by replay" if c['dloss'] else ''))
    lines = [f"node check: {'ok' if result.ok else 'FAIL'} — {what}; "
             f"{len(result.nodes)} failing node{'s' if len(result.nodes) != 1 else ''} ({result.seconds:.2f} s)"]
    if result.faults:
        lines.append(f"fault injected: {', '.join(result.faults)}")
    if result.nonsmooth or result.skipped:
        lines.append(f"{result.nonsmooth} derivatives at a kink accepted between their one-sided values; "
                     f"{len(result.skipped)} could not be measured")
    if result.ok:
        return '\n'.join(lines)
    f = result.first
    lines.append(f"first wrong (nearest the loss, backward step {f.rank}): node {f.node} {f.op} at {f.scope}")
    lines.append(f"  {f.reason}")
    if f.source is not None:
        lines.append(f"  {f.message}")
    lines.append("failing: " + '; '.join(result.summary()))
    shown = result.failures[:limit]
    w = max(5, max(len(x.scope) for x in shown))
    lines.append(f"  {'node':>7}  {'op':<5} {'scope':<{w}}  {'check':<7} {'arg':>3}  {'found':>13}  {'expected':>13}")
    for x in shown:
        arg = '' if x.child is None else str(x.child)
        lines.append(f"  {x.node:>7}  {x.op:<5} {x.scope:<{w}}  {x.kind:<7} {arg:>3}  "
                     f"{x.found:>13.6e}  {x.expected:>13.6e}")
    if len(result.failures) > limit:
        lines.append(f"  ... {len(result.failures) - limit} more, in backward order")
    return '\n'.join(lines)
