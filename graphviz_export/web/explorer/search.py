"""Search: what a query matches in a trace, grouped into rows, each with the view that shows it.

    resolve(trace, 'layer0.attn_wq[3][5]')   # (matching ids, the view state that shows them)
    search(trace, state, 'pos:3 role:q')      # the rows the page lists (a scope, a line, a cell, ...)
    suggest(trace, 'pos:')                    # completions of the word being typed

Queries: a node id (4711), 'loss', a node's name as every surface shows it ('q[2]@pos3',
"wte['m'][5]", '* -> q[2]@pos3': Trace.name, read back by the same namer), a parameter cell
or matrix, tags ('pos:3 layer:0 head:2 role:q'; for a script's trace 'fn:forward line:42').
Pure functions of a Trace; a query that cannot be read raises SearchError (HTTP 400 at the API).
"""

import re
from collections import OrderedDict

import graphviz_export.web.explorer.state as st
from microgpt.errors import InputError
from microgpt.recording import FIELDS, TraceQueryError, parse_param, scope_path

from .extremes import EXTREMES, extreme_rows
from .state import BLOCKS, MAX_TEXT, StateError

TAG_KEYS = {'pos': 'pos', 'token': 'pos', 'layer': 'layer', 'head': 'head', 'block': 'block', 'role': 'role',
            'fn': 'function', 'line': 'line'}
TAG_NAME = {'pos': 'pos', 'layer': 'layer', 'head': 'head', 'block': 'block', 'role': 'role'}   # field -> tag
TAG_HINT = {'pos': 'a position of the document', 'layer': 'a layer', 'head': 'an attention head',
            'block': 'embed, attn, mlp, lm_head, loss or params', 'role': 'what a vector is (q, k, attn_weights, ...)',
            'function': 'a function of your script', 'line': 'a line of your script'}
MAX_ROWS = 60           # search rows listed (the count covers all)
MAX_CELL_ROWS = 1024    # a matrix's rows: one per cell, the largest matrix (mlp_fc1, 64x16) in full
MAX_GROUPED = 200000    # matches grouped into rows
MAX_SUGGEST = 12        # suggestions per keystroke


class SearchError(StateError):
    """A query that cannot be read or matches nothing; the message says what is allowed."""


def check_q(q):
    if len(q) > MAX_TEXT:
        raise SearchError(f"q is longer than {MAX_TEXT} characters")
    if any(ord(c) < 32 for c in q):
        raise SearchError("q has a control character")



def search(trace, state, q, changes=None):
    """The matches of q, grouped into rows (a scope, a source line, one node or one matrix), each
    with the view that shows it and a search (hl) that outlines only that row's nodes; for
    max:grad, max:contrib, max:dw (extremes.py) the largest first, `changes` the update's rows."""
    if not q:
        raise SearchError("search needs q: a node id, a name like 'q[2]@pos3', a parameter cell like "
                          "'layer0.attn_wq[3][5]', "
                          "or tags like 'pos:3 layer:0 head:2 role:q'")
    check_q(q)
    keep = {k: state[k] for k in st.KEEP}

    def target(to, hl):
        t = dict(st.DEFAULTS, **keep)
        t.update(to, hl=hl)
        return t

    if q.startswith('max:'):
        ids, found = extreme_rows(trace, q, changes)
        if not found:
            raise SearchError(f"{q}: nothing to rank in this recording")
        matches = [{'path': r['path'], 'count': 1, 'label': r['label'], 'hl': r['hl'], 'value': r['value'],
                    'url': st.canonical(target(r['to'], r['hl']))} for r in found]
        whole = target(found[0]['to'], found[0]['hl'])
        return {'q': q, 'count': len(ids), 'scopes': len(found), 'unit': 'extreme', 'matches': matches,
                'first': ids[0], 'to': st.to_json(whole), 'url': st.canonical(whole)}
    ids, to = resolve(trace, q)
    found, unit = rows(trace, q, ids, to)
    cap = MAX_CELL_ROWS if unit == 'cell' else MAX_ROWS
    matches = [{'path': r['path'], 'count': r['count'], 'label': r['label'], 'hl': r['hl'],
                'url': st.canonical(target(r['to'], r['hl']))} for r in found[:cap]]
    whole = target(to, q)
    return {'q': q, 'count': len(ids), 'scopes': len(found), 'unit': unit, 'matches': matches,
            'first': ids[0] if ids else None, 'to': st.to_json(whole), 'url': st.canonical(whole)}


def suggest(trace, q):
    """Completions of the word being typed (the last one of q): tag keys, their values in this
    trace, parameter names, node ids. Each is the whole query with that word completed."""
    check_q(q)
    head, sep, word = q.rpartition(' ')
    before = head + sep
    key, colon, part = word.partition(':')
    script = trace.source is not None
    out = []

    def add(text, hint, done=True, count=None):
        if len(out) < MAX_SUGGEST:
            out.append({'text': text, 'hint': hint, 'done': done, 'count': count})

    def matches(text):            # how many nodes the whole query matches (None: it cannot be read)
        try:
            return len(resolve(trace, text)[0])
        except InputError:
            return None

    low = word.lower()
    if not head and len(low) >= 2 and ('max:'.startswith(low) or low.startswith('max:')):
        for text, hint in EXTREMES.items():
            if text.startswith(low):
                add(text, hint)
    named = [] if q == 'loss' or re.fullmatch(r'#?n?\d+', q) else trace.names().find(q)
    if named:                     # a node's name, typed whole ('loss' has its own hint below)
        i = named[0]
        add(q, f'#{i} · {trace.scope_path(i)}' if len(named) == 1 else
            f'{len(named)} ops share this name · {trace.scope_path(i)}', count=len(named))
    if colon:
        if key in TAG_KEYS:
            for value, hint in tag_values(trace, TAG_KEYS[key], script):
                if str(value).lower().startswith(part.lower()) and len(out) < MAX_SUGGEST:
                    add(f'{before}{key}:{value}', hint, count=matches(f'{before}{key}:{value}'))
    else:
        for k, f in TAG_KEYS.items():
            if k == 'token' or (f in ('function', 'line')) != script:
                continue
            if k.startswith(word.lower()):
                add(f'{before}{k}:', TAG_HINT[f], done=False)
        if not head and word:
            if re.fullmatch(r'#?n?\d{1,9}', word):
                i = int(word.lstrip('#n'))
                if i < len(trace):
                    add(str(i), f'{trace.name(i)} · {trace.scope_path(i)}', count=1)
            if 'loss_id' in trace.meta and 'loss'.startswith(word.lower()):
                add('loss', 'the loss node: backward starts here', count=1)
            for name in trace.param_names:
                if name.lower().startswith(word.lower()) or (word.lower() in name.lower() and len(word) > 2):
                    r, c = trace.param_shapes[name]
                    add(name, f'{r}×{c} matrix; add [row][col] for one cell', count=r * c)
            m = re.fullmatch(r'([\w.]+)\[(\d*)\]?(?:\[(\d*))?', word)
            if m and m.group(1) in trace.param_shapes:
                r, c = trace.param_shapes[m.group(1)]
                row = m.group(2) or '0'
                if int(row) < r:
                    add(f'{m.group(1)}[{row}][{m.group(3) or 0}]', f'rows 0..{r - 1}, columns 0..{c - 1}', count=1)
    return {'q': q, 'suggestions': out}


def resolve(trace, q):
    """(matching ids, partial state of the view that shows them)."""
    m = re.fullmatch(r'#?n?(\d+)', q)
    if m:
        i = int(m.group(1))
        if i >= len(trace):
            raise SearchError(f"node {i} is not in this trace; node ids are 0..{len(trace) - 1}")
        return [i], {'view': 'node', 'node': i, 'depth': 2, 'level': 'auto', 'sel': i}
    if q.startswith('max:'):
        ids, found = extreme_rows(trace, q)
        if not ids:
            raise SearchError(f"{q}: nothing to rank in this recording")
        return ids, found[0]['to']
    if q == 'loss':
        if 'loss_id' not in trace.meta:
            raise SearchError("this trace has no loss node; search a node id or a tag")
        i = trace.meta['loss_id']
        return [i], {'view': 'node', 'node': 'loss', 'depth': 2, 'level': 'auto', 'sel': i}
    named = trace.names().find(q)
    if len(named) == 1:
        i = named[0]
        cell = trace.param_cell(i)
        if cell is not None:
            return named, {'view': 'param', 'param': f'{cell[0]}[{cell[1]}][{cell[2]}]', 'level': 'auto', 'sel': i}
        return named, {'view': 'node', 'node': i, 'depth': 2, 'level': 'auto', 'sel': i}
    if named:                   # ops toward one value share its name: the view of their scope
        return named, scope_target(trace, {f: v for f, v in zip(FIELDS, trace.scope_of(named[0])) if v is not None})
    if ':' in q:
        return tags(trace, q)
    try:
        name, r, c = parse_param(q)
        ids = trace.param_nodes((name, r, c))
    except TraceQueryError as e:
        raise SearchError(f"{e}; or search a node id, a name like 'q[2]@pos3', "
                          f"or tags like 'pos:3 layer:0 head:2 role:q'") from None
    if r is None:
        return ids, {'view': 'param', 'param': name, 'level': 'auto'}
    return ids, {'view': 'param', 'param': f'{name}[{r}][{c}]', 'level': 'auto', 'sel': ids[0]}


def _is_tags(q):
    try:
        tag_fields(q)
    except SearchError:
        return False
    return True


def tag_fields(q):
    """{field: value} of a tag query 'pos:3 layer:0 head:2 role:q' or 'fn:forward line:12'."""
    fields = {}
    for part in q.split():
        k, sep, v = part.partition(':')
        if not sep or k not in TAG_KEYS or not v:
            raise SearchError(f"cannot read {part[:60]!r}: tags are key:value with keys "
                                f"{', '.join(TAG_KEYS)}, e.g. 'pos:3 layer:0 head:2 role:q' or 'fn:forward'")
        f = TAG_KEYS[k]
        if f in fields:
            raise SearchError(f"tag {k!r} is given twice in {q[:80]!r}; give it once")
        if f in ('pos', 'layer', 'head', 'line'):
            if not v.isdigit() or len(v) > 9:
                raise SearchError(f"{k} must be a whole number, got {v[:40]!r}")
            v = int(v)
        fields[f] = v
    return fields


def tags(trace, q):
    fields = tag_fields(q)
    scope = {f: v for f, v in fields.items() if f in FIELDS}
    try:
        if 'function' in fields or 'line' in fields:
            ids = None
            if 'function' in fields:
                ids = set(trace.nodes_in_function(fields['function']))
            if 'line' in fields:
                at = set(trace.nodes_at_line(fields['line']))
                ids = at if ids is None else ids & at
            if scope:
                ids &= set(trace.nodes(**scope))
            ids = sorted(ids)
        else:
            ids = trace.nodes(**scope)
    except TraceQueryError as e:
        raise SearchError(str(e)) from None
    if not ids:
        if 'function' in fields and 'line' in fields:
            raise SearchError(f"line {fields['line']} made no node inside {fields['function']}()")
        raise SearchError(f"no node has all of {q!r} (only attn_logits, attn_weights and head_out have a head)")
    if 'function' in fields:
        return ids, {'view': 'function', 'function': fields['function'], 'level': 'auto'}
    if 'line' in fields:
        return ids, {'view': 'line', 'line': fields['line'], 'level': 'auto'}
    return ids, scope_target(trace, scope)


def scope_target(trace, fields):
    """The view that shows the nodes of these scope fields: a head, a layer or a position."""
    pos = fields.get('pos')
    if pos is None and 'layer' not in fields and trace.positions():
        pos = trace.positions()[-1]
    fine = 'role' in fields or 'head' in fields or 'block' in fields
    if 'head' in fields:
        layer = fields.get('layer', trace.layers()[0] if trace.layers() else 0)
        return {'view': 'head', 'layer': layer, 'head': fields['head'], 'token': pos, 'level': 'auto'}
    if 'layer' in fields:
        return {'view': 'layer', 'layer': fields['layer'], 'token': pos, 'level': 'vector' if fine else 'block'}
    if pos is None:
        return {'view': 'node', 'node': 'loss', 'depth': 2, 'level': 'auto'}
    return {'view': 'token', 'token': pos, 'level': 'vector' if fine else 'block'}


def rows(trace, q, ids, to):
    """([{path, label, count, hl, to}], unit): one row per scope (tags, unit 'scope'), per source
    line (fn:/line:, 'line'); a matrix: itself, then each cell ('cell'); a node id or a cell: each
    view that shows it ('view'); ops sharing a name: their scope ('scope'). Tags and lines in
    the order of their first match."""
    if to['view'] == 'node':
        return node_rows(trace, q, ids[0], to), 'view'
    if to['view'] not in ('param', 'function', 'line') and not _is_tags(q):     # ops sharing a name
        return [{'path': trace.scope_path(ids[0]), 'label': trace.name(ids[0]), 'count': len(ids), 'hl': q,
                 'to': to}], 'scope'
    if to['view'] == 'param':
        name = to['param'].split('[')[0]
        if len(ids) == 1:                 # one cell: it, and the matrix around it
            nr, nc = trace.param_shapes[name]
            return [{'path': to['param'], 'label': f'{values(trace, ids[0])} · every use', 'count': 1,
                     'hl': q, 'to': to},
                    {'path': name, 'label': f'its matrix, {nr}×{nc} cells', 'count': nr * nc, 'hl': q,
                     'to': {'view': 'param', 'param': name, 'level': 'auto'}}], 'view'
        rows = [{'path': name, 'label': f'the whole matrix: {len(ids)} cells', 'count': len(ids), 'hl': q,
                 'to': to}]
        for i in ids:
            _, r, c = trace.param_cell(i)
            cell = f'{name}[{r}][{c}]'
            rows.append({'path': cell, 'label': values(trace, i), 'count': 1, 'hl': cell,
                         'to': {'view': 'param', 'param': cell, 'level': 'auto', 'sel': i}})
        return rows, 'cell'
    fields = tag_fields(q)
    groups = OrderedDict()
    if 'function' in fields or 'line' in fields:
        script = trace.meta.get('recorded_from', {}).get('script')
        for i in ids[:MAX_GROUPED]:
            src = trace.source_of(i)
            key = (src.file, src.line, src.funcs[-1] if src.funcs else '<module>')
            if key not in groups:
                groups[key] = [i, 0]
            groups[key][1] += 1
        rows = []
        for (file, line, func), (i, n) in groups.items():
            if 'function' in fields:
                hl = f"fn:{fields['function']} line:{line}" if file == script else q
                row_to = dict(to)
            else:
                hl = f'line:{line}' if file == script else q
                row_to = {'view': 'line', 'line': line, 'level': 'auto'} if file == script else dict(to)
            rows.append({'path': f'{file}:{line}', 'label': f'{func}(): {trace.source_of(i).text}'[:120],
                         'count': n, 'hl': hl, 'to': row_to})
        return rows, 'line'
    for i in ids[:MAX_GROUPED]:
        sc = trace.scope_of(i)
        if sc not in groups:
            groups[sc] = [i, 0]
        groups[sc][1] += 1
    rows = []
    for sc, (i, n) in groups.items():
        own = {f: v for f, v in zip(FIELDS, sc) if v is not None}
        hl = ' '.join(f'{TAG_NAME[f]}:{v}' for f, v in own.items())
        if own.get('block') == 'params' and own.get('role') in trace.param_shapes:
            row_to = {'view': 'param', 'param': own['role'], 'level': 'auto'}
        else:
            row_to = scope_target(trace, own)
        rows.append({'path': scope_path(sc), 'label': trace.name(i), 'count': n, 'hl': hl, 'to': row_to})
    return rows, 'scope'


def node_rows(trace, q, i, to):
    """The views that show node i, from the closest: its neighbourhood (the row says its name);
    a parameter's cell and its matrix, or else the scope that holds it and its position (each
    with its node count)."""
    rows = [{'path': trace.scope_path(i), 'label': trace.name(i), 'count': 1,
             'hl': q, 'to': to}]
    cell = trace.param_cell(i)
    if cell is not None:
        name, r, c = cell
        nr, nc = trace.param_shapes[name]
        rows.append({'path': f'{name}[{r}][{c}]', 'label': 'its cell: every use', 'count': 1, 'hl': q,
                     'to': {'view': 'param', 'param': f'{name}[{r}][{c}]', 'level': 'auto'}})
        rows.append({'path': name, 'label': f'its matrix, {nr}×{nc} cells', 'count': nr * nc, 'hl': q,
                     'to': {'view': 'param', 'param': name, 'level': 'auto'}})
        return rows
    own = {f: v for f, v in zip(FIELDS, trace.scope_of(i)) if v is not None}
    seen = set()
    for fields in (own, {'pos': own['pos']} if 'pos' in own else None):
        if not fields or scope_path(tuple(fields.get(f) for f in FIELDS)) in seen:
            continue
        path = scope_path(tuple(fields.get(f) for f in FIELDS))
        seen.add(path)
        n = len(trace.nodes(**fields))
        row_to = scope_target(trace, fields)
        rows.append({'path': path, 'label': 'the scope that holds it' if fields is own else 'its position',
                     'count': n, 'hl': q, 'to': row_to})
    return rows


def values(trace, i):
    return f'data {trace.data[i]:.6g} · grad {trace.grad[i]:.6g}'


def tag_values(trace, field, script):
    """(value, hint) of one tag field in this trace."""
    if field == 'pos':
        strs = trace.meta.get('token_strs') or []
        return [(p, f"reads '{strs[p]}'" if p < len(strs) else 'position') for p in trace.positions()]
    if field == 'layer':
        return [(x, 'layer') for x in trace.layers()]
    if field == 'head':
        return [(x, 'attention head') for x in trace.heads()]
    if field == 'block':
        return [(b, 'block') for b in BLOCKS + ('params',)]
    if field == 'role':
        return [(r, 'role') for r in trace.roles()]
    if not script:
        return []
    if field == 'function':
        return [(f, 'function of your script') for f in trace.functions()]
    rf = trace.meta.get('recorded_from', {}).get('script')
    return [(ln, next((s.text for s in trace.sources if s.file == f and s.line == ln), '')[:80])
            for f, ln in trace.source_lines() if f == rf]


def highlight(trace, state, view):
    """Names of the visible nodes holding a match of the state's search (hl), and the match count."""
    if not state['hl']:
        return [], 0
    try:
        ids, _ = resolve(trace, state['hl'])
    except InputError:
        return [], 0
    want = set(ids)
    names = [n.name for n in view.folded.nodes if n.kind != 'ref' and not want.isdisjoint(n.ids)]
    return names, len(ids)
