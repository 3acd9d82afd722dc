"""Why is this grad what it is? One node's answer, for every surface (page, terminal, Python).

    d = why(trace, node)          # plain data: made_by, rules, paths, identities, kv
    print(format_why(trace, d))   # what `microgpt-graph inspect --why NODE` prints

The parts are the recording package's own: madeby.py (the line of model.py that made
it, with its call chain), rules.py (the rule behind each local derivative), paths.py
(the routes from the loss down to it, whose products and remainder add up to its grad
bit for bit), identities.py (the identities of backprop it takes part in) and
Trace.uses (its grad as the sum of what its users passed down, in backward order).
"""

from ..errors import InputError
from ..files import json_safe
from .identities import by_node, identities, kv_positions
from .madeby import made_by
from .names import ARROW
from .paths import K, count_text, decompose
from .rules import rules


def find_node(trace, text):
    """The node id `text` names: 'loss', an id ('4711', '#4711'), a name as every surface shows it
    ("q[2]@pos3", "wte['m'][5]", 'layer0.attn_wq[3][5]'); InputError naming what is allowed."""
    text = str(text).strip()
    if text == 'loss' and 'loss_id' in trace.meta:
        return trace.meta['loss_id']
    digits = text.lstrip('#')
    if digits.isdigit():
        i = int(digits)
        if i < len(trace):
            return i
        raise InputError(f"node {i} is not in this trace; node ids are 0..{len(trace) - 1}")
    found = trace.names().find(text)
    if not found:
        try:
            found = trace.param_nodes(text) if '[' in text else []
        except InputError:
            found = []
    if len(found) == 1:
        return found[0]
    if found:
        raise InputError(f"{len(found)} nodes are named {text!r} (ops toward one value share its name); "
                         f"give one id: {', '.join(map(str, found[:8]))}")
    raise InputError(f"no node is named {text!r}; give 'loss', a node id, a name such as 'q[2]@pos3' "
                     f"or a parameter cell such as 'layer0.attn_wq[3][5]'")


def why(trace, node, k=K, sources=None):
    """{'node', 'name', 'op', 'data', 'grad', 'made_by', 'rules', 'paths', 'identities', 'kv'}:
    floats as floats (the caller formats them)."""
    trace._check_node(node)
    scope = trace.scope_of(node)
    badges = identities(trace)
    kv = None
    if scope.role in ('k', 'v') and scope.block == 'attn' and trace.names().is_value(node):
        rows, total = kv_positions(trace, node)
        kv = {'positions': [{'pos': p, 'sum': s} for p, s in rows], 'total': total, 'grad': trace.grad[node]}
    paths = decompose(trace, node, k) if 'loss_id' in trace.meta and len(trace.backward_order) else None
    if paths is not None:
        for p in paths['paths']:
            p['stops'] = stops(trace, p['nodes'])
    return {'node': node, 'name': trace.name(node), 'op': trace.op_name(node), 'data': trace.data[node],
            'grad': trace.grad[node], 'made_by': made_by(trace, node, sources),
            'rules': [dict(r, input=c, input_name=trace.name(c))
                      for r, c in zip(rules(trace, node), trace.children(node))],
            'paths': paths, 'identities': [badges[b] for b in by_node(trace).get(node, [])], 'kv': kv}


def stops(trace, nodes):
    """[(node, name)]: a route as a learner reads it, value by value. An op computing
    toward a value ('+ → loss', '* → q[2]@pos3') stands for that value, and a run of
    nodes standing for one value is shown once, at its first node; the node asked about ends
    it under its own name."""
    out = []
    for k, i in enumerate(nodes):
        name = trace.name(i)
        value = name.split(f' {ARROW} ', 1)[1] if f' {ARROW} ' in name and k < len(nodes) - 1 else name
        if not out or out[-1][1] != value:
            out.append((i, value))
    return out


def why_data(d):
    """`why`'s answer as plain JSON-able data (badges as dicts, NaN/inf as text: files.json_safe)."""
    out = dict(d, identities=[b.to_dict() for b in d['identities']])
    if d['paths'] is not None:
        out['paths'] = dict(d['paths'], count=count_text(d['paths']['count']),
                            others=count_text(d['paths']['others']))
    return json_safe(out)


def _g(x):
    return f'{x:.6g}'


def format_why(trace, d, limit=5):
    """The terminal's answer: made by, the rules of its inputs, the paths and the remainder,
    the identities it is part of."""
    lines = [f"{d['name']} (node {d['node']}): {d['op']}, data {_g(d['data'])}, grad {_g(d['grad'])}"]
    mb = d['made_by']
    if mb is not None:
        lines.append(f"made by {mb['file']}:{mb['line']} ({mb['chain_text']}): {mb['code']}")
        if mb.get('derivative_at'):
            lines.append(f"  its derivative is written at {mb['derivative_at']}")
    if d['rules']:
        lines.append('local derivatives (the rule, the values put in, the result):')
        for r in d['rules']:
            lines.append(f"  d/d {r['input_name']}: {r['text']}")
    p = d['paths']
    if p is not None:
        if p['paths']:
            lines.append(f"grad = its {len(p['paths'])} largest paths from the loss "
                         f"+ the other {count_text(p['others'])} "
                         f"(summed: {p['order']}):")
            for k, path in enumerate(p['paths'][:limit]):
                names = [name for _, name in path['stops']]
                via = ' ← '.join(names if len(names) <= 7 else names[:3] + ['…'] + names[-3:])
                lines.append(f"  path {k + 1}: product {_g(path['product'])} over {len(path['edges'])} edges"
                             + (f", {path['zeros']} of them 0" if path['zeros'] else '') + f": {via}")
            rest = ' + '.join(_g(r) for r in p['remainder']) or '0'
            lines.append(f"  remainder (the other paths): {rest};  = grad {_g(d['grad'])} "
                         + ('bit for bit' if p['exact'] else '(cannot: the grad is not finite)'))
        if p['why_zero'] is not None:
            lines.append(f"why 0: {p['why_zero']['text']}")
    if d['kv'] is not None:
        lines.append('read by the positions: ' + ', '.join(f"pos{r['pos']} {_g(r['sum'])}" for r in d['kv']['positions'])
                     + f" (Σ {_g(d['kv']['total'])}; grad {_g(d['kv']['grad'])})")
    for b in d['identities']:
        lines.append(f"{'✓' if b.holds else '✗'} {b.text}")
    return '\n'.join(lines)
