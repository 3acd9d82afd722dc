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

from ..recording.ops import OP_CODE, OPS
from ..recording.script.closures import assigning_use, derivative_line
from . import faults
from .findings import NodeCheckResult, NodeFailure
from .params import ATOL as DLOSS_ATOL
from .params import EPS as DLOSS_EPS
from .params import RTOL as DLOSS_RTOL
from .params import compare
from .replay import NodeCheckError, numeric_dloss

REL_EPS = 1e-6       # relative step of the local-derivative differences
RTOL = 1e-6       # relative tolerance of a local derivative
ATOL = 1e-12      # absolute floor (derivatives that are 0 or nearly)
SUM_RTOL = 0.0    # grad vs sum of contributions: exact by default
_ROUND = 4 * 2.0**-52

KINDS = ('forward', 'local', 'sum', 'dloss')
_ADD, _MUL, _POW, _LOG, _EXP, _RELU = (OP_CODE[o] for o in ('add', 'mul', 'pow', 'log', 'exp', 'relu'))
_CHECKED_OPS = (_ADD, _MUL, _POW, _LOG, _EXP, _RELU)


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


# -- (dloss): d loss / d node by replaying the forward (replay.py) --------------------------------
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
        failures.append(NodeFailure(node=i, op=trace.op_name(i), name=trace.name(i), scope=trace.scope_path(i), kind=kind,
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
