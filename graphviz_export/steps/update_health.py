"""Health of the update, per parameter matrix: makemore part 3's update:data ratio and its neighbours.

    health = update_health(trace, rows)     # rows: steps.update.adam_update's, every cell of the matrices
    health_html(health)                     # the Adam panel's table

Per matrix: std(w) and std(grad) (the spread of its values and of its grads), std(Δw)
and the update:data ratio log10(std(Δw) / std(w)) that makemore part 3 plots for every
layer (about -3 is its rule of thumb for SGD; Adam's first step moves every cell with a
grad by about lr, so a fresh model shows log10(0.01 / 0.08) ≈ -0.9), the share of cells
whose grad is exactly 0, and flags:

  dead units       ReLU units that output 0 at every position of this document: no grad
                   reaches their row of mlp_fc1 or their column of mlp_fc2
  saturated units  attention heads whose softmax puts >= SATURATED of its weight on one
                   position at every position that reads two or more (the grad through a
                   saturated softmax is nearly 0, as through a saturated tanh); positions
                   whose next-character probability is >= SATURATED (lm_head learns little there)

std is the sample standard deviation (n - 1), as torch's .std() that makemore uses.
"""

import math
from html import escape
from itertools import repeat
from operator import itemgetter, mul, sub

from microgpt.recording.sums import fsum

from ..draw.style import fmt, full

SATURATED = 0.99     # a softmax weight at least this large on one position: saturated


def _std(xs):
    n = len(xs)
    if n < 2:
        return 0.0
    m = fsum(xs) / n
    # (x - m) * (x - m), not ** 2: a float's ** raises OverflowError where * gives inf (grads near 1e308);
    # computed in C (a token view's matrices hold 200,000 cells at 4 x 64)
    d = list(map(sub, xs, repeat(m)))
    return math.sqrt(fsum(list(map(mul, d, d))) / (n - 1))


def _values(trace, sid):
    return trace.names().scope_values(sid)


def unit_flags(trace):
    """{matrix name: [flag text]} of dead and saturated units (see the module docstring)."""
    out = {}
    relus, heads, probs = {}, {}, []
    for sid, s in enumerate(trace.scopes):
        if s.role == 'relu' and s.layer is not None:
            relus.setdefault(s.layer, []).append(sid)
        elif s.role == 'attn_weights' and s.head is not None:
            heads.setdefault((s.layer, s.head), []).append(sid)
        elif s.role == 'probs' and s.block == 'loss':
            probs.append(sid)
    data = trace.data
    for layer, sids in sorted(relus.items()):
        units = [_values(trace, sid) for sid in sids]
        width = min(map(len, units)) if units else 0
        dead = [j for j in range(width) if all(data[u[j]] == 0 for u in units)]
        if dead:
            shown = ', '.join(map(str, dead[:12])) + (' …' if len(dead) > 12 else '')
            out.setdefault(f'layer{layer}.mlp_fc1', []).append(
                f'{len(dead)} of {width} ReLU units dead at every position (rows {shown}): no grad reaches them')
            out.setdefault(f'layer{layer}.mlp_fc2', []).append(
                f'{len(dead)} of {width} input units dead (columns {shown}): their columns get no grad')
    for (layer, head), sids in sorted(heads.items()):
        rows = [[data[i] for i in _values(trace, sid)] for sid in sids]
        rows = [r for r in rows if len(r) >= 2]
        if rows and all(max(r) >= SATURATED for r in rows):
            for m in ('attn_wq', 'attn_wk'):
                out.setdefault(f'layer{layer}.{m}', []).append(
                    f'head {head} saturated: softmax weight >= {SATURATED} on one position at every position')
    sure = [trace.scopes[sid].pos for sid in probs if any(data[i] >= SATURATED for i in _values(trace, sid))]
    if sure:
        out.setdefault('lm_head', []).append(f'saturated at positions {", ".join(map(str, sure))}: '
                                             f'next-character probability >= {SATURATED}')
    return out


def update_health(trace, rows):
    """[{'name', 'cells', 'std_data', 'std_grad', 'std_delta', 'ratio', 'zero_grad', 'flags'}] per
    matrix of `rows`, in the model's order; `ratio` is -inf when nothing moves, nan when a spread is
    nan; a spread whose squares pass the largest double is inf."""
    by = {}
    for r in rows:
        by.setdefault(r['matrix'], []).append(r)
    return health_of(trace, {name: tuple(list(map(itemgetter(k), rs)) for k in ('data', 'grad', 'delta'))
                             for name, rs in by.items()})


def health_of(trace, columns):
    """update_health of {matrix name: (its cells' data, grads, deltas)} (sequences of floats, each in id
    order: read as columns in C), in the model's order."""
    flags = unit_flags(trace)
    out = []
    for name in trace.param_names:
        if name not in columns:
            continue
        data, grads, deltas = columns[name]
        sd, sg, su = _std(data), _std(grads), _std(deltas)
        if math.isnan(su) or math.isnan(sd):
            ratio = math.nan            # unknown, not "nothing moves"
        else:
            ratio = math.log10(su / sd) if su > 0 and sd > 0 else -math.inf
        zero = grads.count(0) / len(grads)
        out.append({'name': name, 'cells': len(grads), 'std_data': sd, 'std_grad': sg, 'std_delta': su,
                    'ratio': ratio, 'zero_grad': zero, 'flags': flags.get(name, [])})
    return out


def health_html(health):
    """The table the Adam panel shows under the update (one row per matrix, its flags below it)."""
    if not health:
        return ''
    h = ('<h4 id="health">health per matrix <span class="hint">(makemore part 3: update:data ratio '
         'log10(std(Δw)/std(w)), about −3 for SGD)</span></h4><div class="sumwrap"><table class="mg-update" '
         'id="healthtable"><tr><th>matrix</th><th title="log10(std(Δw)/std(w))">update:data</th>'
         '<th>std(w)</th><th>std(grad)</th><th>std(Δw)</th><th title="cells whose grad is exactly 0">grad = 0</th></tr>')
    for m in health:
        ratio = '−∞' if m['ratio'] == -math.inf else f"{m['ratio']:.2f}"
        h += (f'<tr data-matrix="{escape(m["name"])}"><td>{escape(m["name"])}</td>'
              f'<td data-k="ratio" data-v="{full(m["ratio"])}" title="{full(m["ratio"])}">{ratio}</td>'
              + ''.join(f'<td data-k="{k}" data-v="{full(m[k])}" title="{full(m[k])}">{fmt(m[k])}</td>'
                        for k in ('std_data', 'std_grad', 'std_delta'))
              + f'<td data-k="zero_grad">{m["zero_grad"]:.0%}</td></tr>')
        for f in m['flags']:
            h += f'<tr class="flag"><td colspan="6">⚠ {escape(m["name"])}: {escape(f)}</td></tr>'
    return h + '</table></div>'
