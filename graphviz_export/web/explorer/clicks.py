"""What a click on a node does: each visible node's kind, figures and the view a click opens
(`view_nodes`), and, for a scalar, the side panel's details (`node_details`: its op, data,
grad, inputs with their local derivatives, uses with their contributions summed in the
engine's order, and the line of code that made it); in compare mode, its figures in the
three frames, before, after and Δ (`compare_details`).
"""

import math
from array import array
from operator import mul

from microgpt.files import json_safe
from microgpt.recording import FIELDS, scope_path
from microgpt.recording.figures import largest_magnitude
from microgpt.recording.runs import gather
from microgpt.recording.shares import stored_magnitudes

from ...draw.style import full
from ...fold import expanded_ids
from ...fold.summary import group_magnitudes, interior_of, node_op_counts, param_shares

MAX_LISTED = 200        # uses / inputs listed in the side panel (the sum covers all)


def view_nodes(trace, view, state):
    folded = view.folded
    level = folded.level
    pattern_of = {}
    for pat in state['expand']:
        for i in expanded_ids(trace, view.selection, [pat]):
            pattern_of.setdefault(i, pat)
    out = {}
    interior = interior_of(trace, view.selection)   # the drawing's; its id set made only if a share needs it
    for n in folded.nodes:
        d = {'k': n.kind[0], 'side': n.side}
        if n.kind != 'ref':
            d['mag'] = [json_safe(x) for x in magnitudes(trace, n, interior)]
        if n.kind == 'scalar':
            i = n.ids[0]
            d.update(id=i, path=trace.scope_path(i), label=trace.name(i))
            if i in pattern_of:
                d['exp'] = pattern_of[i]
        elif n.kind == 'ref':
            d['refers'] = list(n.refers)
        elif n.kind == 'matrix':
            name = view.selection.matrix
            d.update(param=name, shape=list(trace.param_shapes[name]), ops=len(n.ids))
        else:
            path = scope_path(n.scope)
            d.update(path=path, ops=len(n.ids), first=n.ids[0], opcounts=node_op_counts(trace, n),
                     positions=list(n.positions))
            to = click_target(trace, n, level, state, path, view.selection.kind)
            if to is not None:
                d['to'] = to
        out[n.name] = d
    return out


def magnitudes(trace, n, interior):
    """(largest |grad|, largest |grad x data|) over what the node's label states, so the overlay's
    colour and the label say the same number: a scalar's own; a group's values (summary.group_figures:
    the label's 'grad a … b' range, constants and partial sums left out); a boundary parameter
    group, this view's share of each cell's grad (its 'grad here'), as its drawn colour: for an
    interior of whole scopes, from the matrix's stored share record (as the label reads it),
    else summed from the reverse edges (param_shares)."""
    if n.kind == 'group' and n.side != 'interior' and n.scope.block == 'params':
        scopes = getattr(interior, 'scopes', None)
        if scopes is not None and n.scope.role in trace.param_shapes:
            stored = stored_magnitudes(trace, n.scope.role, n.ids, scopes)
            if stored is not None:
                return stored
        shares = param_shares(trace, n, interior)
        ids = sorted(shares)
        grads = array('d', map(shares.__getitem__, ids))
        datas = array('d', map(trace.data.__getitem__, ids))
    elif n.kind == 'group' and n.values:   # its values' columns read once per view (summary.node_column)
        return group_magnitudes(trace, n)
    else:   # the columns sliced per run of ids, in C
        runs = n.runs
        grads, datas = (gather(trace.grad, runs), gather(trace.data, runs)) if runs else ((), ())
    return largest_magnitude(grads), largest_magnitude(map(mul, grads, datas))


def click_target(trace, n, level, state, path, kind):
    pos, _layer, block, _head, role = n.scope
    if block == 'params' and role in trace.param_shapes:
        return {'view': 'param', 'param': role, 'level': 'auto', 'expand': [], 'sel': None, 'hl': None, 'focus': None}
    if kind == 'document':
        p = pos if isinstance(pos, int) else (n.positions[-1] if n.positions else None)
        if p is None:
            return None
        return {'view': 'token', 'token': p, 'level': 'block', 'expand': [], 'sel': None, 'hl': None, 'focus': None}
    if n.side != 'interior':
        p = pos if isinstance(pos, int) else (n.positions[-1] if n.positions else None)
        if p is None:
            return None
        return {'view': 'token', 'token': p, 'level': 'block', 'expand': [], 'sel': None, 'hl': None, 'focus': None}
    if level == 'block':      # the block opens at vector level; focus: its crumb and the camera
        return {'level': 'vector', 'focus': path}
    if role is not None and pos is not None:
        return {'expand': list(dict.fromkeys([*state['expand'], path]))}
    return None


def node_details(trace, i, sources):
    kids = trace.children(i)
    inputs = [{'id': c, 'label': trace.name(c), 'data': full(trace.data[c]), 'local': full(lg), 'contrib': full(cg)}
              for c, lg, cg in zip(kids, trace.local_grads(i), trace.contributions(i))]
    uses = trace.uses(i)
    total = _engine_sum(uses)   # in backward's order, from 0: the engine's own sum
    listed = [{'id': p, 'label': trace.name(p), 'path': trace.scope_path(p), 'local': full(lg),
               'contrib': full(c)} for p, lg, c in uses[:MAX_LISTED]]
    scope = trace.scope_of(i)
    d = {'id': i, 'label': trace.name(i), 'op': trace.op_name(i), 'data': full(trace.data[i]),
         'grad': full(trace.grad[i]), 'path': trace.scope_path(i), 'scope': dict(zip(FIELDS, scope)),
         'backward_rank': trace.backward_rank[i], 'inputs': inputs[:MAX_LISTED], 'n_inputs': len(inputs),
         'uses': listed, 'n_uses': len(uses), 'uses_sum': full(total),
         'sum_is_grad': _same(total, trace.grad[i]),
         'source': source_of(trace, i, scope, sources), 'ops_folded': 1}
    if i in trace.pow_exponent:
        d['exponent'] = trace.pow_exponent[i]
    if i == trace.meta.get('loss_id'):
        d['is_loss'] = True     # its grad 1.0 is the seed of backward, not a sum of uses
    cell = trace.param_cell(i)
    if cell is not None:
        d['param'] = f'{cell[0]}[{cell[1]}][{cell[2]}]'
    return d


def _engine_sum(uses):
    """The contributions summed as backward added them: in order, from 0."""
    total = 0.0
    for _, _, c in uses:
        total += c
    return total


def _same(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


def compare_details(before, after, delta, i, listed):
    """The three frames of a before/after panel for node i: {'data', 'grad', 'uses', 'sums',
    'sum_is_grad'}, each figure a [before, after, Δ] triple ('sum_is_grad': [before, after]).

    A sum is compared with a grad only within one frame: each recording's uses, summed in
    its own backward order, equal its grad bit for bit. The Δ column holds each use's
    Δcontribution (the number the picture's edge shows); those differences are rounded one
    by one, so their sum is not Δgrad to the last bit and is never compared with it: the
    sums' row gives Σ after − Σ before, the difference of the two sums. `listed`: how many
    uses the panel lists (node_details's rows, in the delta's order, which is after's)."""
    b_uses, a_uses, d_uses = before.uses(i), after.uses(i), delta.uses(i)
    b_of = {}
    for p, _, c in b_uses:          # a parent using i twice (p*p) has two edges: paired in order
        b_of.setdefault(p, []).append(c)
    taken = {}
    rows = []
    for (p, _, ca), (_, _, cd) in zip(a_uses[:listed], d_uses[:listed]):
        k = taken[p] = taken.get(p, -1) + 1
        rows.append([full(b_of[p][k]), full(ca), full(cd)])
    sb, sa = _engine_sum(b_uses), _engine_sum(a_uses)
    gb, ga = before.grad[i], after.grad[i]
    return {'data': [full(before.data[i]), full(after.data[i]), full(delta.data[i])],
            'grad': [full(gb), full(ga), full(delta.grad[i])], 'uses': rows,
            'sums': [full(sb), full(sa), full(sa - sb)], 'sum_is_grad': [_same(sb, gb), _same(sa, ga)]}


def source_of(trace, i, scope, sources):
    """The line of code that made node i: the user's script line (a script's trace), else the model's."""
    src = trace.source_of(i)
    if src is None:
        return sources.line_of(scope) if trace.source is None else None
    d = {'file': src.file, 'line': src.line, 'function': src.funcs[-1] if src.funcs else '<module>',
         'code': src.text, 'script': True, 'functions': list(src.funcs)}
    if src.grad_line and (src.op_file, src.grad_line) != (src.file, src.line):
        d['grad_at'] = f'{src.op_file}:{src.grad_line}'
    return d
