"""What each node and edge says: record labels, tooltips, edge labels (DOT text, escaped).

Scalar nodes keep micrograd's record, `{ op | data 0.1234 | grad -0.0012 }`.
Summary nodes are records read top to bottom: what the group computes, how
many values and ops it holds, then its data range and grad range and norm
(summary.figures over its values). Labels show 4 significant digits;
tooltips give every digit (repr), the scope path and the node ids.

The data and grad fields (value_fields) are also what the frame player looks for
and rewrites (draw records them per node: steps/frame_texts.py). A before/after picture (its trace
carries meta['diff'], steps/diff.delta_trace) calls its numbers 'Δdata' and 'Δgrad'.
"""

from itertools import chain, compress, starmap

import graphviz_export.draw.escape as escape
from microgpt.recording.names import ARROW, ROLE_NAME, char_name, op_text
from microgpt.recording.ops import OP_CODE
from microgpt.recording.runs import gather, runs_of, scopes_in
from microgpt.recording.scopes import scope_path

from ..fold.summary import node_column, node_op_counts, node_scopes, once
from .style import fmt, full

ROLE_TEXT = {
    'embed': 'x = wte[token] + wpe[pos]',
    'rmsnorm': 'rmsnorm: x / rms(x)',
    'q': 'q = Wq\u00b7x',
    'k': 'k = Wk\u00b7x',
    'v': 'v = Wv\u00b7x',
    'attn_logits': 'logits = q\u00b7k / \u221ad',
    'attn_weights': 'weights = softmax(logits)',
    'head_out': 'head = \u03a3 weights\u00b7v',
    'attn_out': 'Wo\u00b7heads',
    'residual': 'x + residual',
    'fc1': 'h = fc1\u00b7x',
    'relu': 'relu(h)',
    'fc2': 'fc2\u00b7h',
    'logits': 'logits = lm_head\u00b7x',
    'probs': 'probs = softmax(logits)',
    'loss': '\u2212log probs[target]',
}


# the products a role's dot products add up (model.py), for a group holding them and not the role's values
PRODUCTS = {
    'q': 'Wq[i][j]\u00b7x[j]', 'k': 'Wk[i][j]\u00b7x[j]', 'v': 'Wv[i][j]\u00b7x[j]',
    'attn_logits': 'q[j]\u00b7k[t][j]', 'head_out': 'weights[t]\u00b7v[t][j]',
    'attn_out': 'Wo[i][j]\u00b7heads[j]', 'fc1': 'fc1[i][j]\u00b7x[j]', 'fc2': 'fc2[i][j]\u00b7h[j]',
    'logits': 'lm_head[i][j]\u00b7x[j]',
}


def ranges(xs, limit=None, runs=None):
    """'0..10' / '3' / '0..2, 5': sorted ints compactly (after `limit` runs: ', ...'); `runs`:
    their runs when known (runs_of(xs))."""
    parts = []
    for a, b in runs_of(xs) if runs is None else runs:
        if limit is not None and len(parts) == limit:
            parts.append('...')
            break
        parts.append(f'{a}' if b == a + 1 else f'{a}..{b - 1}')
    return ', '.join(parts)


def where(node):
    """Where a summary node sits, for those drawn outside the clusters: 'pos 0..10 layer0 attn head2'."""
    pos, layer, block, head, _ = node.scope
    parts = []
    if node.positions:
        parts.append(f'pos {ranges(node.positions)}')
    if layer is not None:
        parts.append(f'layer{layer}')
    if block is not None and block != 'params':
        parts.append(block)
    if head is not None:
        parts.append(f'head{head}')
    return ' '.join(parts)


def is_mean_loss(node):
    """The scope of `loss = (1/n) * sum(losses)`: no position, block and role 'loss'."""
    pos, _, block, _, role = node.scope
    return block == 'loss' and role == 'loss' and pos is None and not node.positions


def group_title(node, level, trace=None):
    """What a summary node computes. The mean-loss scope holds the running sum of the
    position losses and the final (1/n)*sum: only a group holding that final node is
    'the loss'; one holding only partial sums (a token view's output) says so."""
    pos, layer, block, head, role = node.scope
    if block == 'params':
        return role
    if is_mean_loss(node):
        if trace is None or trace.meta.get('loss_id') in node.ids:
            return 'loss = mean of the position losses'
        return '\u03a3 loss_t (running sum; loss = \u03a3 / n)'
    inner = None if trace is None else inner_title(trace, node)
    if inner is not None:
        return inner
    if role == 'embed' and trace is not None and len(node.positions) == 1 and node.side == 'interior':
        return embed_title(trace, node.positions[0])
    if role in ('k', 'v') and node.side == 'input':
        return f'{role} (cached)'
    if role is not None and (level != 'block' or node.side != 'interior' or role in ('residual', 'attn_out')):
        text = ROLE_TEXT.get(role, role)
        return f'head {head}: {text}' if head is not None and node.side == 'interior' else text
    if head is not None and role is None:
        return f'head {head}: softmax(q\u00b7k/\u221ad)\u00b7v'
    if block == 'attn' and role is None:
        return 'q, k, v = W\u00b7rmsnorm(x)' if level != 'block' or 'attn_logits' not in _roles(trace, node) \
            else 'attn: q, k, v and the heads'
    return block if block is not None else 'ops'


def node_runs(node):
    """The runs of a node's ids (fold.VNode keeps them), found once a view."""
    return node.runs if hasattr(node, 'runs') else runs_of(node.ids)


def inner_title(trace, node):
    """_inner_title, found once per node and trace: a view asks it for each group's title,
    tooltip and each reference naming the group (a token view: 300 calls for 80 groups, each
    reading the group's values from three columns)."""
    return once(node, trace, 'inner_title', lambda: _inner_title(trace, node))


def _inner_title(trace, node):
    """The title of a group whose figures are not (only) its role's values, else None.

    A role's title ('logits = lm_head\u00b7x') names its outputs; a group whose values are
    the ops computing toward them (a parameter's uses are the 432 products lm_head[i][j]\u00b7x[j],
    not the 27 logits; a boundary holds the partial sums that read a view's values) says what
    they are: 'products lm_head[i][j]\u00b7x[j] \u2192 logits', 'partial sums \u2192 q'; a group holding
    both says both: 'q and 240 partial sums' (short: it titles a box). Groups spanning several
    roles (a block) keep their block's title."""
    values = getattr(node, 'values', ())
    if not values:
        return None
    # what a per-value reading (names.has_role, vector_name, is_value) finds, read per run of
    # the values: their scopes from the trace's scope runs, their ops and value flags sliced
    # from the columns (a token view's groups hold hundreds of thousands of values)
    runs = node.value_runs if hasattr(node, 'value_runs') else runs_of(values)
    sids = sorted(node_scopes(trace, node))
    scopes = trace.scopes
    ops = bytes(node_column(trace.op, node))
    if not all(scopes[s].role in ROLE_NAME for s in sids) or _CONST in ops or _PARAM in ops:
        return None
    names = trace.names()
    vectors = {names.scope_vector(s) for s in sids}
    roles = {scopes[s].role for s in sids}
    if len(roles) != 1:
        return None
    not_value = bytes(node_column(trace.index('value'), node)).translate(_ZERO_ONE)
    n_inner = not_value.count(1)
    if not n_inner:
        return None
    role = roles.pop()
    vector = vectors.pop() if len(vectors) == 1 else ROLE_NAME[role]
    ops = {trace.op_names[k] for k in set(compress(ops, not_value))}
    one = n_inner == 1
    formula = ''
    if ops == {'mul'}:
        kind = 'product' if one else 'products'
        formula = f' {PRODUCTS[role]}' if role in PRODUCTS else ''
    elif ops == {'add'}:
        kind = 'partial sum' if one else 'partial sums'
    else:
        inner = compress(chain.from_iterable(starmap(range, runs)), not_value)
        kind = ', '.join(sorted({op_text(trace, i) for i in inner}))
    if n_inner == len(values):
        return f'{kind}{formula} {ARROW} {vector}'
    return f'{vector} and {n_inner} {kind}'


_CONST, _PARAM = OP_CODE['const'], OP_CODE['param']
_ZERO_ONE = bytes([1] + [0] * 255)      # bytes.translate: 1 where a value flag is 0


def embed_title(trace, pos):
    """"x@pos2 = wte['m'] + wpe[2]": the embedding of one position, with its token."""
    tokens, chars = trace.meta.get('tokens'), trace.meta.get('chars')
    if tokens is None or pos >= len(tokens):
        return f'x@pos{pos} = wte[token] + wpe[{pos}]'
    return f'x@pos{pos} = wte[{char_name(chars, tokens[pos])}] + wpe[{pos}]'


def _roles(trace, node):
    if trace is None:
        return set()
    return {trace.scopes[sid].role for sid in node_scopes(trace, node, values=False)}


def _record(fields, vertical, rankdir='LR'):
    """A record label whose fields stack (`vertical`) or run across. Graphviz turns records
    with the layout: in rankdir LR a top-level `a|b` stacks and `{a|b}` runs across; in TB
    the other way round. rankdir 'box': centred lines for a plain box (dot cannot order
    records with flat edges; a matrix view's uses are ordered that way). A field given as a
    tuple is one field of several centred lines."""
    if rankdir == 'box':
        return '\\n'.join(_lines(f, escape.plain) for f in fields)
    body = '|'.join(_lines(f, escape.record_field) for f in fields)
    return body if vertical == (rankdir == 'LR') else '{' + body + '}'


def _lines(field, esc):
    return '\\n'.join(map(esc, field)) if isinstance(field, tuple) else esc(field)


def scalar_head(trace, i):
    """The first field of a scalar record: its name (Trace.name), with ' = op' after a
    value's name ('q[2]@pos3 = +'); the other names already say what they are
    ('* \u2192 q[2]@pos3', "wte['m'][5]", 'const 1e-05', 'mul #4711')."""
    names = trace.names()
    if names.has_role(i) and names.is_value(i):
        return f'{names.name(i)} = {op_text(trace, i)}'
    return names.name(i)


def words(trace):
    """What a picture calls a node's numbers and the loss: 'data', 'grad', 'loss'; in a
    before/after picture, whose numbers are differences, 'Δdata', 'Δgrad', 'Δ loss'."""
    if trace.meta.get('diff') is not None:
        return '\u0394data', '\u0394grad', '\u0394 loss'
    return 'data', 'grad', 'loss'


def value_fields(trace, node, fig=None, share=None):
    """(data field, grad field) of a scalar or summary node's record, as drawn:
    ('data 0.1234', 'grad -0.0012'), ('data -1 … 2', 'grad here 0 … 0.5')."""
    data, grad, _ = words(trace)
    if node.kind == 'scalar':
        i = node.ids[0]
        return f'{data} {fmt(trace.data[i])}', f'{grad} {fmt(trace.grad[i])}'
    g = share or fig
    word = f'{grad} here' if share is not None else grad
    if fig.over:    # an outlined group: the range over all it holds, said so
        data, word = f'{data} {fig.over}', f'{word} {fig.over}'
    return (f'{data} {fmt(fig.data_min)} \u2026 {fmt(fig.data_max)}',
            f'{word} {fmt(g.grad_min)} \u2026 {fmt(g.grad_max)}')


def norm_text(word, shown):
    """A summary's norm field: '‖grad‖ 0.1944' (`shown` the number as a label writes it, or '?')."""
    return f'\u2016{word}\u2016 {shown}'


def drawn_fields(trace, node, fig=None, share=None):
    """{['loss',] 'data', 'grad'[, 'norm']}: the texts of a node's record that carry its numbers,
    as drawn; what the frame player rewrites (steps/frame_texts.py) and what changes when the same
    graph is recorded on other weights (the live view rewrites them: steps/live.py). 'loss': a
    summary of the position losses also states their mean, the loss."""
    data, grad = value_fields(trace, node, fig, share)
    out = {'data': data, 'grad': grad}
    if node.kind != 'scalar':
        g = share or fig
        word = f'{words(trace)[1]} here' if share is not None else words(trace)[1]
        out['norm'] = norm_text(word, f'{fig.over} {fmt(g.grad_norm)}' if fig.over else fmt(g.grad_norm))
        loss_id = trace.meta.get('loss_id')
        if is_mean_loss(node) and loss_id is not None and loss_id not in node.ids:
            out['loss'] = f'loss = \u03a3 / {len(trace.positions())} = {fmt(trace.data[loss_id])}'
    return out


NUMBER_FIELDS = ('loss', 'data', 'grad', 'norm')    # their order in a record


def number_fields(trace, node, fig=None, share=None):
    """drawn_fields as a list, in the record's order."""
    shown = drawn_fields(trace, node, fig, share)
    return [shown[k] for k in NUMBER_FIELDS if k in shown]


def scalar_label(trace, node, note=None, rankdir='LR'):
    """micrograd's record: across in an LR layout, stacked (narrow) in a TB one, where an
    op's name breaks after its arrow ('* \u2192' over 'attn_logits[h1][t0]@pos3'): the rows of
    an expanded head's dot products then fit a 1920 px projection at 10 px text."""
    return scalar_record(scalar_fields(trace, node, note), rankdir)


def scalar_fields(trace, node, note=None):
    """The fields of a scalar's record, the same in every direction (scalar_record lays them out)."""
    i = node.ids[0]
    fields = [scalar_head(trace, i), *value_fields(trace, node)]
    if node.focus and trace.param_cell(i) is not None:
        # a before/after: Δgrad is the difference of two sums, not the sum of the edges' differences
        what = '\u0394 of the \u03a3' if trace.meta.get('diff') is not None else '\u03a3'
        fields.append(f'= {what} of {len(trace.parents(i))} contributions')
    if note:
        fields.append(note)
    return fields


def scalar_record(fields, rankdir='LR'):
    """scalar_fields as the record of a layout direction (see scalar_label)."""
    head = fields[0]
    if rankdir == 'TB' and f' {ARROW} ' in head:
        op, toward = head.split(f' {ARROW} ', 1)
        fields = [(f'{op} {ARROW}', toward), *fields[1:]]
    return _record(fields, vertical=rankdir == 'TB', rankdir=rankdir)


def scalar_tooltip(trace, node, reasons=()):
    i = node.ids[0]
    kids = trace.children(i)
    lines = [f'{trace.name(i)}   (node {i})', f'scope {trace.scope_path(i)}',
             f'op {trace.op_name(i)}' + (f', exponent {trace.pow_exponent[i]!r}' if i in trace.pow_exponent else ''),
             f'data {full(trace.data[i])}', f'grad {full(trace.grad[i])}']
    if kids:
        lines.append('children ' + ', '.join(f'#{c}' for c in kids))
        lines.append('local grads ' + ', '.join(full(x) for x in trace.local_grads(i)))
    lines.append(f'backward rank {trace.backward_rank[i]}')
    if node.fan_out:
        lines.append(f'used by {node.fan_out} nodes: drawn once, they show a reference to it')
    return escape.tooltip([f'HIGHLIGHT: {r}' for r in reasons] + lines)


def group_label(trace, node, level, fig, matrix_shape=None, share=None, rankdir='LR'):
    """The record of a summary node; `fig` is summary.figures of its values; `share`, for a
    boundary parameter, the figures of this view's share of its grad (shown instead)."""
    return group_record(group_fields(trace, node, level, fig, matrix_shape, share), rankdir)


def group_record(fields, rankdir='LR'):
    """group_fields as the record of a layout direction."""
    return _record(fields, vertical=True, rankdir=rankdir)


def group_fields(trace, node, level, fig, matrix_shape=None, share=None, title=None):
    """The fields of a summary node's record, the same in every direction (group_label);
    `title`: its group_title when already made."""
    title = group_title(node, level, trace) if title is None else title
    if node.scope.block == 'params':
        rows, cols = matrix_shape
        used = param_rows(trace, node.ids, node_runs(node))
        count = f'{rows}x{cols}: {len(node.ids)} cells (rows {ranges(used)})'
    elif node.side == 'interior':
        count = f'{_values(len(node.values))} \u00b7 {len(node.ids)} ops'
    else:
        count = f'{_values(len(node.ids))} \u00b7 ' + where(node)
        if node.side == 'output':
            title = 'used by: ' + title
    fields = [title, count, *number_fields(trace, node, fig, share)]
    if node.fan_out:
        fields.append(f'\u2197 used by {node.fan_out} (referenced)')
    return fields


def param_rows(trace, ids, runs=None):
    """The rows of a matrix whose cells `ids` hold (sorted): per run of ids when they are
    cells of one matrix (a matrix's cells are consecutive ids, row after row), else per cell.
    `runs`: runs_of(ids), when known (a folded node's)."""
    runs = runs_of(ids) if runs is None else runs
    sids = scopes_in(trace, runs)
    if len(sids) == 1 and bytes(gather(trace.op, runs)).count(_PARAM) == sum(b - a for a, b in runs):
        name = trace.scopes[next(iter(sids))].role
        base, cols = trace.param_base[name], trace.param_shapes[name][1]
        rows = set()
        for a, b in runs:
            rows.update(range((a - base) // cols, (b - 1 - base) // cols + 1))
        return sorted(rows)
    return sorted({trace.param_cell(i)[1] for i in ids})


def _values(n):
    return f'{n} value' if n == 1 else f'{n} values'


def group_tooltip(trace, node, level, fig, reasons=(), share=None, title=None):
    """The hover text of a summary node; `title`: its group_title when already made."""
    title = group_title(node, level, trace) if title is None else title
    paths = sorted({scope_path(trace.scopes[sid]) for sid in node_scopes(trace, node, values=False)})
    shown = paths[:6] + ([f'... {len(paths) - 6} more scopes'] if len(paths) > 6 else [])
    ops = ', '.join(f'{n} {op}' for op, n in node_op_counts(trace, node).items())
    lines = [title + ('' if node.side == 'interior' else f'   ({node.side} of the view)'),
             *('scope ' + p for p in shown),
             f'{len(node.ids)} ops: {ops}', f'node ids {ranges(node.ids, limit=8, runs=node_runs(node))}',
             (f'all {fig.n} of its ops but constants summarised (it is outlined: what differs may be inside):'
              if fig.over else f'{_values(fig.n)} summarised (used outside this node, or by nothing):'),
             f'data {full(fig.data_min)} .. {full(fig.data_max)}',
             f'grad {full(fig.grad_min)} .. {full(fig.grad_max)}',
             f'grad L2 norm {full(fig.grad_norm)}, largest |grad| at node {fig.grad_peak}']
    if share is not None:
        lines[-2:] = [f'total grad (all uses) {full(fig.grad_min)} .. {full(fig.grad_max)}, '
                      f'L2 norm {full(fig.grad_norm)}',
                      f"this view's share (contributions along the edges drawn, {share.n} cells): "
                      f'{full(share.grad_min)} .. {full(share.grad_max)}, L2 norm {full(share.grad_norm)}']
    if node.fan_out:
        lines.append(f'used by {node.fan_out} nodes: drawn once, they show a reference to it')
    return escape.tooltip([f'HIGHLIGHT: {r}' for r in reasons] + lines)


def short_name(trace, node, level):
    """What a reference node calls the node it stands for."""
    if node.kind == 'scalar':
        return trace.name(node.ids[0])
    w = where(node)
    return f'{_values_name(trace, node) or group_title(node, level).split(" =")[0]} {w}'.strip()


def ref_name(trace, node, level):
    """A reference node's short name for what it stands for: 'k[1]@pos0' (a scalar),
    'k (cached) pos 0..1' (a summary: its title and positions)."""
    if node.kind == 'scalar':
        return trace.name(node.ids[0])
    pos = f' pos {ranges(node.positions)}' if node.positions else ''
    return _ref_title(trace, node, level) + pos


def _ref_title(trace, node, level):
    """A summary's title in a reference: a later position reads an earlier one's keys and
    values from the cache, so 'k (cached)', as the boundary's cached k is called."""
    if node.kind == 'group' and node.scope.role in ('k', 'v') and node.scope.head is None:
        return f'{node.scope.role} (cached)'
    return _values_name(trace, node) or group_title(node, level, trace).split(' =')[0]


def _values_name(trace, node):
    """The short name of a group whose figures are not its role's values (its title, which
    says what they are; the running sum of the position losses: 'Σ loss_t'), else None."""
    if node.kind == 'group' and is_mean_loss(node) and trace.meta.get('loss_id') not in node.ids:
        return '\u03a3 loss_t'
    return inner_title(trace, node) if node.kind == 'group' else None


def ref_names(trace, nodes, level):
    """ref_name of each node, summaries of one title merged: 'k (cached) pos 0..2' for the
    keys of positions 0, 1 and 2 (in the order of their first node)."""
    out, merged = [], {}
    for n in nodes:
        if n.kind == 'scalar' or not n.positions:
            out.append((ref_name(trace, n, level), None))
            continue
        title = _ref_title(trace, n, level)
        if title not in merged:
            merged[title] = []
            out.append((title, merged[title]))
        merged[title].extend(n.positions)
    return [text if at is None else f'{text} pos {ranges(at)}' for text, at in out]


def ref_label(names):
    """'↗ name' lines, one per node referred to (three at most, then '+N more')."""
    lines = ['\u2197 ' + n for n in names[:3]]
    if len(names) > 3:
        lines[-1] += f' +{len(names) - 3} more'
    return '\\n'.join(escape.plain(line) for line in lines)


def ref_tooltip(names, edge):
    lines = ['drawn once elsewhere (many consumers); this node reads:']
    for name, (_, count, contrib, norm) in zip(names, edge.sources):
        lines.append(f'{name}: {count} edge(s), contributions sum {full(contrib)}, norm {full(norm)}')
    return escape.tooltip(lines)


def edge_tooltip(src, dst, edge):
    if edge.local is not None:
        lines = [f'{src} -> {dst}', f'local derivative d {dst} / d {src} = {full(edge.local)}',
                 f'contribution to grad of {src} = {full(edge.contrib)}']
    else:
        lines = [f'{src} -> {dst}: {edge.count} edge(s)', f'contributions sum {full(edge.contrib)}',
                 f'contributions norm (per node of {src}) {full(edge.contrib_norm)}']
    return escape.tooltip(lines)


def edge_label(edge):
    """The optional edge label (edge_grads=True)."""
    if edge.local is not None:
        return escape.plain(f'local {fmt(edge.local)}') + '\\n' + escape.plain(f'contrib {fmt(edge.contrib)}')
    edges = f"{edge.count} edge{'' if edge.count == 1 else 's'}"
    return escape.plain(edges) + '\\n' + escape.plain(f'\u2016contrib\u2016 {fmt(edge.contrib_norm)}')
