"""The gradcheck failure picture: where the wrong gradient starts, what it corrupts, kept small.

`failure_view(diagnosis)` takes the result of microgpt's diagnose() (duck-typed:
.trace, .first, .nodes.failures, .notes(); this package never imports the checks)
and draws, at most `budget` nodes:

- the first failing node (nearest the loss), with found vs expected written on it,
  and the faulty edge (the argument whose local derivative is wrong) in red;
- the path from the loss down to it and on to the parameter it corrupts most;
- every drawn node whose grad is wrong marked "found | should be": the grads a
  correct backward gives are recomputed here from the trace's local derivatives,
  with the failing local derivatives replaced by the expected ones;
- one summary line instead of the list of failures (the list stays in the
  terminal and in `gradcheck --json`).
"""

import math
from collections import deque

from ..draw import draw
from ..draw.style import fmt
from ..fold import fold
from ..select import _make
from ..view import View, build_view

BUDGET = 60          # nodes the failure picture may show
WRONG_RTOL = 1e-6    # a grad differs from the corrected one by more than this (relative): wrong


def corrected_grads(trace, failures):
    """The grads a correct backward would give: the trace's local derivatives, except each
    failing 'local' check's edge, which gets the expected value; sums recomputed."""
    fix = {}
    for f in failures:
        if f.kind == 'local' and f.child_id is not None:
            fix[(f.node, f.child)] = f.expected
    ptr, child, local = trace.child_ptr, trace.child, trace.local
    grad = [0.0] * len(trace)
    grad[trace.meta['loss_id']] = 1.0
    for p in trace.backward_order:
        g = grad[p]
        if not g:
            continue
        for k in range(ptr[p], ptr[p + 1]):
            lg = fix.get((p, k - ptr[p]), local[k])
            grad[child[k]] += lg * g
    return grad


def wrong_grads(trace, correct):
    """{node id: correct grad} of the nodes whose recorded grad is wrong."""
    out = {}
    for i, (g, c) in enumerate(zip(trace.grad, correct)):
        if not math.isclose(g, c, rel_tol=WRONG_RTOL, abs_tol=1e-12):
            out[i] = c
    return out


def _path(trace, start, goals, forward):
    """Shortest list of ids from `start` to the nearest of `goals`, along parents (forward)
    or children (backward); [] if none is reachable."""
    pptr, parent, _ = trace.parents_index()
    ptr, child = trace.child_ptr, trace.child
    prev = {start: None}
    queue = deque([start])
    while queue:
        n = queue.popleft()
        if n in goals:
            out = []
            while n is not None:
                out.append(n)
                n = prev[n]
            return out[::-1]
        nbrs = parent[pptr[n]:pptr[n + 1]] if forward else child[ptr[n]:ptr[n + 1]]
        for m in nbrs:
            if m not in prev:
                prev[m] = n
                queue.append(m)
    return []


def summary_line(failures):
    """'195 failing checks at 195 nodes (exp: local); the first, nearest the loss: ...'."""
    kinds = {}
    for f in failures:
        kinds[(f.op, f.kind)] = kinds.get((f.op, f.kind), 0) + 1
    what = ', '.join(f'{n} {op}: {kind}' for (op, kind), n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    nodes = len({f.node for f in failures})
    return (f'{len(failures)} failing checks at {nodes} nodes ({what}); drawn: the first, nearest the loss. '
            f'Full list: the terminal, or gradcheck --json')


def failure_view(diagnosis, *, budget=BUDGET, level='auto'):
    """The View of a gradcheck (see the module docstring); when it passed, the last
    token with the health notes (or 'gradcheck: ok')."""
    first = diagnosis.first
    if first is None:
        return build_view(diagnosis.trace, highlight=diagnosis.highlight(),
                          notes=diagnosis.notes() or ['gradcheck: ok'])
    trace = diagnosis.trace
    failures = diagnosis.nodes.failures
    correct = corrected_grads(trace, failures)
    wrong = wrong_grads(trace, correct)
    node, arg = first.node, first.child_id
    loss = trace.meta['loss_id']
    up = _path(trace, node, {loss}, forward=True)
    params = {i for i in wrong if trace.param_cell(i) is not None}
    worst = max(params, key=lambda i: (abs(trace.grad[i] - correct[i]), -i)) if params else None
    start = arg if arg is not None else node
    down = _path(trace, start, {worst}, forward=False) if worst is not None else []
    interior = set(up) | set(down) | {node} | set(trace.children(node)) | set(trace.parents(node))
    focus = {node} | ({arg} if arg is not None else set())
    title = (f"gradcheck failure{_doc(trace)}: {trace.names().name_id(node)} at {first.scope}, "
             f"the loss above it, the parameters it corrupts below")
    sel = _make(trace, 'failure', title, interior, focus=focus,
                query={'failure': node, 'fault': getattr(getattr(diagnosis, 'fault', None), 'name', None)})
    folded = fold(trace, sel, level=level, budget=budget)
    annotate = {}
    for i in wrong:
        annotate[i] = f'grad {fmt(trace.grad[i])} | should be {fmt(correct[i])}'
    annotate[node] = (f'd {first.op}/d arg{first.child}: found {fmt(first.found)} | should be {fmt(first.expected)}'
                      if first.kind == 'local' else f'{first.kind}: found {fmt(first.found)} | should be '
                      f'{fmt(first.expected)}')
    red = {(arg, node)} if first.kind == 'local' and arg is not None else set()
    shown = set(sel.nodes) | set(sel.inputs) | set(sel.outputs)
    highlight = {i: f'wrong grad: found {trace.grad[i]!r}, a correct backward gives {correct[i]!r}'
                 for i in wrong if i in shown}
    highlight[node] = first.reason
    notes = [summary_line(failures),
             f'{len(wrong)} nodes have a wrong grad ({len(params)} parameters); the worst parameter: '
             f'{trace.name(worst)}' if worst is not None else f'{len(wrong)} nodes have a wrong grad']
    notes += list(diagnosis.notes())[:3]
    g = draw(trace, folded, highlight=highlight, notes=notes, annotate=annotate, red_edges=red,
             list_missing=False)
    options = {'level': level, 'budget': budget, 'failure': node}
    return View(trace=trace, selection=sel, folded=folded, digraph=g, options=options)


def _doc(trace):
    doc = trace.meta.get('doc')
    return f" of '{doc}'" if doc is not None else ''

