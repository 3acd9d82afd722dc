"""The explorer's JSON API, independent of HTTP: query string in, (status, body) out.

    api = Api(Recordings(doc='emma'))
    api.view('view=token&token=3&level=vector')   # {'svg': ..., 'nodes': {...}, 'crumbs': [...], ...}

Endpoints: view, info, node, search, export, frames (the step-through of a view),
update (Adam on the parameters in view, after backward). A state with `cmp` draws
the before/after differences (graphviz_export.steps.diff) on the same layout pipeline.

Every endpoint parses its query with state.py; bad input raises ApiError(400)
with a one-line message, a view over its budget ApiError(422) with the counts
and a suggestion (refused before building when fold's node_floor already says
so). Views are drawn by build_view/render_view (the one folding
implementation) and kept in an LRU keyed by (recording, view state), so a view
seen before costs a dictionary look-up.
"""

import math
import re
import threading
import time
from collections import OrderedDict
from urllib.parse import parse_qs

import graphviz_export.render as _render
import graphviz_export.web.explorer.state as st
from microgpt.checkpoint import read_checkpoint
from microgpt.errors import InputError
from microgpt.recording import FIELDS, TraceQueryError, parse_param, scope_path
from microgpt.recording.sourcemap import SourceMap

from ...fold import expanded_ids, node_floor
from ...fold.summary import op_counts
from ...select import select
from ...steps.diff import relabel_svg
from ...steps.frames import frames
from ...steps.svg_ids import tag_svg
from ...steps.update import DEFAULT_NUM_STEPS, SORTS, adam_update, matrix_summary, page_rows, params_in_view
from ...view import build_view, render_view

EXPORTS = {'svg': 'image/svg+xml', 'png': 'image/png', 'dot': 'text/vnd.graphviz; charset=utf-8',
           'json': 'application/json'}
BLOCKS = ('embed', 'attn', 'mlp', 'lm_head', 'loss')
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
MAX_LISTED = 200        # uses / inputs listed in the side panel (the sum covers all)
MAX_UPDATE_ROWS = 400   # parameter rows of one update page (limit=; the count covers all)


class ApiError(Exception):
    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status = status
        self.body = {'error': ' '.join(str(message).split()), **extra}


def _bad(e):
    return ApiError(400, str(e))


def _r(x):
    """A float at full precision: repr (JSON has no NaN/inf, and repr round-trips)."""
    return repr(float(x))


def _check_q(q):
    if len(q) > st.MAX_TEXT:
        raise ApiError(400, f"q is longer than {st.MAX_TEXT} characters")
    if any(ord(c) < 32 for c in q):
        raise ApiError(400, "q has a control character")


def _finite(x):
    return x if math.isfinite(x) else repr(x)


class Api:
    def __init__(self, recordings, *, renderer='auto', cache_size=64, timeout=20.0):
        self.recordings = recordings
        self.renderer = renderer
        self.timeout = timeout
        self.cache_size = cache_size
        self._views = OrderedDict()          # (recording key, build key) -> entry dict
        self._lock = threading.Lock()        # guards the cache
        self._build = threading.Lock()       # one build at a time: 2 cores, shared trace caches
        self.sources = SourceMap()
        self.png = 'native' in _render.available_renderers()

    # -- helpers ----------------------------------------------------------------------------
    def _parse(self, query, extra=()):
        allowed = tuple(st.DEFAULTS) + tuple(extra)
        try:
            raw = parse_qs(query, keep_blank_values=True, max_num_fields=64)
        except ValueError:
            raise ApiError(400, "more than 64 query parameters") from None
        own = {k: raw.pop(k) for k in extra if k in raw}
        for k, v in own.items():
            if len(v) != 1:
                raise ApiError(400, f"parameter {k!r} is given {len(v)} times; give it once")
        try:
            state = st.parse(raw, allowed=allowed)
        except st.StateError as e:
            raise _bad(e) from None
        return state, {k: v[0] for k, v in own.items()}

    def _trace(self, state):
        try:
            key = self.recordings.key(state)
            return key, self.recordings.get(key)
        except InputError as e:
            raise _bad(e) from None

    def _compare(self, key, state):
        """The Comparison a state's cmp names (recordings.compare), or None."""
        cmp = st.compare_of(state)
        if cmp is None:
            return None
        try:
            return self.recordings.compare(key, cmp)
        except InputError as e:
            raise _bad(e) from None

    def _refuse_early(self, trace, kwargs, state):
        """422 before folding when fold's cheap lower bound (node_floor) is already over the budget."""
        level = kwargs['level']
        if level in ('auto', 'block'):
            return          # auto picks a level that fits; block is the coarsest there is
        sk = {k: kwargs[k] for k in ('token', 'layer', 'head', 'param', 'node', 'depth', 'direction',
                                     'function', 'line', 'document') if k in kwargs}
        sel = select(trace, **sk)
        floor = node_floor(trace, sel, level, expanded_ids(trace, sel, list(kwargs['expand'])))
        if floor > kwargs['budget']:
            raise ApiError(422, f"this view has at least {floor} nodes, over the budget of {kwargs['budget']} "
                                f"nodes (refused before drawing it); {self._suggest(state)}",
                           nodes=floor, edges=None, budget=kwargs['budget'], ebudget=kwargs['edge_budget'])

    def _entry(self, state):
        """The cached drawing of a state: {'view', 'svg', 'nodes', 'ms'}; built on a miss."""
        key, trace = self._trace(state)
        try:
            kwargs = st.build_kwargs(state)
        except st.StateError as e:
            raise _bad(e) from None
        ck = (key, st.build_key(state))
        with self._lock:
            entry = self._views.get(ck)
            if entry is not None:
                self._views.move_to_end(ck)
                return key, entry['trace'], entry, True
        comparison = self._compare(key, state)
        if comparison is not None:
            trace = comparison.delta
            kwargs['notes'] = comparison.notes
        with self._build:
            t0 = time.perf_counter()
            try:
                self._refuse_early(trace, kwargs, state)
                view = build_view(trace, **kwargs)
            except InputError as e:
                raise _bad(e) from None
            s = view.stats
            if not s['fits']:
                raise ApiError(422, f"this view has {s['nodes']} nodes and {s['edges']} edges, over the budget "
                               f"of {s['budget']} nodes and {s['edge_budget']} edges; {self._suggest(state)}",
                               nodes=s['nodes'], edges=s['edges'], budget=s['budget'], ebudget=s['edge_budget'])
            t1 = time.perf_counter()
            try:
                svg = render_view(view, 'svg', timeout=self.timeout, renderer=self.renderer)
            except _render.LayoutTimeout as e:
                raise ApiError(422, f"layout did not finish: {e}") from None
            except _render.RenderError as e:
                raise ApiError(500, f"render failed: {e}") from None
            t2 = time.perf_counter()
            # stable ids (node-<name>, edge-<src>-<dst>): what a step-through frame lights
            svg = tag_svg(svg.decode('utf-8'), view.folded)
            if comparison is not None:
                svg = relabel_svg(svg)
            entry = {'view': view, 'svg': svg, 'trace': trace, 'comparison': comparison,
                     'nodes': self._nodes(trace, view, state), 'frames': {}, 'update': None,
                     'ms': {'build': round(1000 * (t1 - t0), 1), 'render': round(1000 * (t2 - t1), 1)}}
        with self._lock:
            self._views[ck] = entry
            while len(self._views) > self.cache_size:
                self._views.popitem(last=False)
        return key, trace, entry, False

    @staticmethod
    def _suggest(state):
        if state['expand']:
            return ("expand one head or one role at a time (e.g. open the head first), "
                    "or raise the node budget in Settings")
        if state['level'] == 'scalar':
            return "choose level vector or block, or raise the node budget in Settings"
        return "choose level block, a single position, or raise the node budget in Settings"

    # -- what each visible node does when clicked ----------------------------------------------
    def _nodes(self, trace, view, state):
        folded = view.folded
        level = folded.level
        pattern_of = {}
        for pat in state['expand']:
            for i in expanded_ids(trace, view.selection, [pat]):
                pattern_of.setdefault(i, pat)
        out = {}
        grad, data = trace.grad, trace.data
        for n in folded.nodes:
            d = {'k': n.kind[0], 'side': n.side}
            if n.kind != 'ref':
                # overlays: the largest |grad| and |grad x data| of what the node holds
                g = c = 0.0
                for i in n.ids:
                    a = abs(grad[i])
                    b = abs(grad[i] * data[i])
                    if a > g:
                        g = a
                    if b > c:
                        c = b
                d['mag'] = [_finite(g), _finite(c)]
            if n.kind == 'scalar':
                i = n.ids[0]
                d.update(id=i, path=trace.scope_path(i), label=trace.label(i))
                if i in pattern_of:
                    d['exp'] = pattern_of[i]
            elif n.kind == 'ref':
                d['refers'] = list(n.refers)
            elif n.kind == 'matrix':
                name = view.selection.matrix
                d.update(param=name, shape=list(trace.param_shapes[name]), ops=len(n.ids))
            else:
                path = scope_path(n.scope)
                d.update(path=path, ops=len(n.ids), first=n.ids[0], opcounts=op_counts(trace, n.ids),
                         positions=list(n.positions))
                to = self._click_target(trace, n, level, state, path, view.selection.kind)
                if to is not None:
                    d['to'] = to
            out[n.name] = d
        return out

    @staticmethod
    def _click_target(trace, n, level, state, path, kind):
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

    # -- endpoints -------------------------------------------------------------------------------
    def info(self, query):
        state, _ = self._parse(query)
        key, trace = self._trace(state)
        strs = trace.meta.get('token_strs') or []
        losses = trace.position_losses()
        tokens = []
        for p in trace.positions():
            d = {'pos': p, 'char': strs[p] if p < len(strs) else '?',
                 'target': strs[p + 1] if p + 1 < len(strs) else '?'}
            if p < len(losses):
                d['loss'] = losses[p]
            tokens.append(d)
        rk = self.recordings
        doc, ckpt, seed = (trace.meta.get('doc'), None, None) if key == ('trace',) else key
        return {'doc': doc, 'ckpt': ckpt, 'seed': seed, 'fixed': rk.fixed is not None,
                'key': rk.key_text(key), 'tokens': tokens, 'layers': trace.layers(), 'heads': trace.heads(),
                'params': {n: list(trace.param_shapes[n]) for n in trace.param_names},
                'loss': trace.loss if 'loss_id' in trace.meta else None, 'n_nodes': len(trace),
                'levels': list(st.LEVELS), 'views': list(st.VIEWS), 'png': self.png,
                'defaults': {'budget': st.DEFAULTS['budget'], 'ebudget': st.DEFAULTS['ebudget'],
                             'max_budget': st.MAX_BUDGET, 'max_ebudget': st.MAX_EDGE_BUDGET},
                'truncated': bool(trace.meta.get('truncated')), 'script': self._script_info(trace)}

    @staticmethod
    def _script_info(trace):
        """A script's trace: its file, functions and lines (views by function and line), else None."""
        if trace.source is None:
            return None
        rf = trace.meta.get('recorded_from', {})
        lines = [{'file': f, 'line': ln, 'code': next((s.text for s in trace.sources
                                                         if s.file == f and s.line == ln), '')}
                 for f, ln in trace.source_lines() if f == rf.get('script')]
        return {'file': rf.get('script'), 'class': rf.get('class'), 'convention': rf.get('convention'),
                'step': rf.get('step'), 'functions': trace.functions(), 'lines': lines}

    def view(self, query):
        state, _ = self._parse(query)
        t0 = time.perf_counter()
        key, trace, entry, cached = self._entry(state)
        view = entry['view']
        hl, hl_count = self._highlight(trace, state, view)
        cmp = entry['comparison']
        compare = None if cmp is None else {
            'labels': list(cmp.labels), 'notes': cmp.notes, 'loss_before': cmp.before.loss,
            'loss_after': cmp.after.loss, 'loss_delta': cmp.after.loss - cmp.before.loss}
        return {'state': st.to_json(state), 'url': st.canonical(state), 'key': self.recordings.key_text(key),
                'compare': compare,
                'title': view.selection.title, 'kind': view.selection.kind, 'stats': view.stats,
                'notes': list(view.folded.notes), 'expanded': list(state['expand']),
                'svg': entry['svg'], 'nodes': entry['nodes'], 'highlight': hl, 'hl_count': hl_count,
                'crumbs': self._crumbs(trace, state), 'cached': cached,
                'ms': dict(entry['ms'], total=round(1000 * (time.perf_counter() - t0), 1))}

    def export(self, query):
        state, own = self._parse(query, extra=('fmt',))
        fmt = own.get('fmt', 'svg')
        if fmt not in EXPORTS:
            raise ApiError(400, f"fmt {fmt!r} is not one of: {', '.join(EXPORTS)}")
        if fmt == 'png' and not self.png:
            raise ApiError(400, "png export needs the Graphviz `dot` program, which is not installed; "
                                "export svg instead")
        _key, trace, entry, _ = self._entry(state)
        view = entry['view']
        if fmt == 'svg':
            data = entry['svg'].encode('utf-8')
        else:
            with self._build:
                try:
                    data = render_view(view, fmt, timeout=self.timeout, renderer=self.renderer)
                except _render.RenderError as e:
                    raise ApiError(400 if fmt == 'png' else 500, str(e)) from None
        doc = re.sub(r'[^A-Za-z0-9_-]', '_', str(trace.meta.get('doc', 'trace')))[:40] or 'trace'
        what = re.sub(r'[^A-Za-z0-9_.-]', '_', st.build_key(state) or 'view')[:80]
        return data, EXPORTS[fmt], f"{doc}-{what}.{fmt}"

    def frames(self, query):
        """The backprop (or forward) step-through of a view state: graphviz_export.steps.frames of its View."""
        state, _ = self._parse(query)
        mode = state['mode']
        if state['cmp']:
            raise ApiError(400, "the step-through plays one recording; leave compare (cmp) first")
        _, _, entry, _ = self._entry(state)
        got = entry['frames'].get(mode)
        if got is None:
            with self._build:
                try:
                    got = frames(entry['view'], mode)
                except InputError as e:
                    raise _bad(e) from None
                for name, d in got['nodes'].items():     # groups: their scope path, as the page names them
                    if 'label' not in d and entry['nodes'].get(name, {}).get('path'):
                        d['label'] = entry['nodes'][name]['path']
                entry['frames'][mode] = got
        return got

    def update(self, query):
        """What Adam does to the parameters of a view, after its backward (graphviz_export.steps.update).

        The moments come from a real optimizer state when the server has one (compare
        after N training steps: the trained run's m and v, the update of step N + 1, on
        the grads of the *after* recording); otherwise from a fresh optimizer taking its
        first step (checkpoints store no optimizer state).

        Every row is one page away: `matrix` (one parameter matrix's rows), `sort` (id |
        delta: largest |change| first), `offset` and `limit` (<= 400) page through them;
        `matrices` sums up each matrix in view (update.matrix_summary)."""
        state, own = self._parse(query, extra=('matrix', 'sort', 'offset', 'limit'))
        paging = self._paging(own)
        key, trace = self._trace(state)
        cmp = self._compare(key, state)
        plain = dict(state, cmp=None)
        _, _, entry, _ = self._entry(plain)
        opt, num_steps, finished = None, DEFAULT_NUM_STEPS, None
        if cmp is not None:
            trace = cmp.after
            opt = cmp.optimizer
        elif state.get('ckpt'):
            saved = self._optimizer_state(state['ckpt'])
            if saved is not None and saved['step'] < saved['num_steps']:
                opt, num_steps = saved, saved['num_steps']
            elif saved is not None:
                finished = saved
        ids = params_in_view(entry['view'])
        try:
            upd = adam_update(trace, ids, state=opt, num_steps=num_steps)
        except InputError as e:
            raise _bad(e) from None
        rows = upd['rows']
        if paging['matrix'] is not None and paging['matrix'] not in trace.param_shapes:
            raise ApiError(400, f"matrix {paging['matrix']!r} is not a parameter matrix of this model; "
                                f"matrices: {', '.join(trace.param_names)}")
        largest = max(rows, key=lambda r: abs(r['delta']), default=None)
        matrices = matrix_summary(trace, rows)
        for m in matrices:
            for k in ('norm_delta', 'max_delta', 'largest_delta', 'norm_grad'):
                m[k] = _r(m[k])
        page, matched = page_rows(rows, **paging)
        page = [dict(r) for r in page]
        for r in page:
            for k in ('grad', 'm_prev', 'v_prev', 'm', 'v', 'm_hat', 'v_hat', 'data', 'new', 'delta', 'step_size'):
                r[k] = _r(r[k])
        names = {n.name: [i for i in n.ids if trace.param_cell(i) is not None]
                 for n in entry['view'].folded.nodes if n.kind != 'ref'}
        upd.update(rows=page, count=len(rows), matched=matched, matrices=matrices, lr_t=_r(upd['lr_t']),
                   **{k: paging[k] for k in ('matrix', 'sort', 'offset', 'limit')},
                   largest=None if largest is None else largest['name'],
                   nodes={k: len(v) for k, v in names.items() if v},
                   recording='after' if cmp is not None else 'this recording')
        if cmp is None and opt is not None:
            upd['source'] = (f"the checkpoint's optimizer state after {opt['step']} of {opt['num_steps']} steps "
                             f"(the update of step {opt['step'] + 1})")
        elif finished is not None:
            upd['source'] = (f"fresh optimizer (m = v = 0), step 1: the checkpoint's run finished its "
                             f"{finished['num_steps']}-step schedule, so it has no next update")
        elif cmp is not None and opt is not None:
            upd['source'] = f"the trained run's optimizer after {opt['step']} steps (step {opt['step'] + 1})"
        elif cmp is not None:
            upd['source'] = 'fresh optimizer (m = v = 0), step 1: a checkpoint stores no optimizer state'
        elif state.get('ckpt'):
            upd['source'] += ' (this checkpoint stores no optimizer state)'
        return upd

    @staticmethod
    def _paging(own):
        """The update page asked for: matrix (None: every matrix), sort, offset, limit; bad -> 400."""
        sort = own.get('sort', 'id')
        if sort not in SORTS:
            raise ApiError(400, f"sort {sort!r} is not one of: {', '.join(SORTS)}")
        out = {'matrix': own.get('matrix') or None, 'sort': sort}
        for k, lo, hi, default in (('offset', 0, 10 ** 7, 0), ('limit', 1, MAX_UPDATE_ROWS, MAX_UPDATE_ROWS)):
            raw = own.get(k)
            if raw is None:
                out[k] = default
            elif raw.isascii() and raw.isdigit() and lo <= int(raw) <= hi:
                out[k] = int(raw)
            else:
                raise ApiError(400, f"{k} {raw!r} is not an integer in {lo}..{hi}")
        return out

    def _optimizer_state(self, path):
        """The checkpoint's Adam state (microgpt.checkpoint.read_checkpoint), or None."""
        try:
            return read_checkpoint(path).optimizer
        except InputError as e:
            raise _bad(e) from None

    def node(self, query):
        state, own = self._parse(query, extra=('id',))
        if 'id' not in own:
            raise ApiError(400, "node details need id, a node id such as 4711")
        try:
            i = st._int('id', own['id'], 0, 10**9)
        except st.StateError as e:
            raise _bad(e) from None
        key, trace = self._trace(state)
        if i >= len(trace):
            raise ApiError(400, f"node {i} is not in this trace; node ids are 0..{len(trace) - 1}")
        cmp = self._compare(key, state)
        if cmp is None:
            return self._node_details(trace, i)
        d = self._node_details(cmp.delta, i)
        d['compare'] = {'labels': list(cmp.labels),
                        'data': [_r(cmp.before.data[i]), _r(cmp.after.data[i]), _r(cmp.delta.data[i])],
                        'grad': [_r(cmp.before.grad[i]), _r(cmp.after.grad[i]), _r(cmp.delta.grad[i])]}
        return d

    def _node_details(self, trace, i):
        kids = trace.children(i)
        inputs = [{'id': c, 'label': trace.label(c), 'data': _r(trace.data[c]), 'local': _r(lg), 'contrib': _r(cg)}
                  for c, lg, cg in zip(kids, trace.local_grads(i), trace.contributions(i))]
        uses = trace.uses(i)
        total = 0.0
        for _, _, c in uses:
            total += c              # in backward's order, from 0: the engine's own sum
        listed = [{'id': p, 'label': trace.label(p), 'path': trace.scope_path(p), 'local': _r(lg),
                   'contrib': _r(c)} for p, lg, c in uses[:MAX_LISTED]]
        scope = trace.scope_of(i)
        d = {'id': i, 'label': trace.label(i), 'op': trace.op_name(i), 'data': _r(trace.data[i]),
             'grad': _r(trace.grad[i]), 'path': trace.scope_path(i), 'scope': dict(zip(FIELDS, scope)),
             'backward_rank': trace.backward_rank[i], 'inputs': inputs[:MAX_LISTED], 'n_inputs': len(inputs),
             'uses': listed, 'n_uses': len(uses), 'uses_sum': _r(total),
             'sum_is_grad': (total == trace.grad[i]) or (math.isnan(total) and math.isnan(trace.grad[i])),
             'source': self._source(trace, i, scope), 'ops_folded': 1}
        if i in trace.pow_exponent:
            d['exponent'] = trace.pow_exponent[i]
        if i == trace.meta.get('loss_id'):
            d['is_loss'] = True     # its grad 1.0 is the seed of backward, not a sum of uses
        cell = trace.param_cell(i)
        if cell is not None:
            d['param'] = f'{cell[0]}[{cell[1]}][{cell[2]}]'
        return d

    def _source(self, trace, i, scope):
        """The line of code that made node i: the user's script line (a script's trace), else the model's."""
        src = trace.source_of(i)
        if src is None:
            return self.sources.line_of(scope) if trace.source is None else None
        d = {'file': src.file, 'line': src.line, 'function': src.funcs[-1] if src.funcs else '<module>',
             'code': src.text, 'script': True, 'functions': list(src.funcs)}
        if src.grad_line and (src.op_file, src.grad_line) != (src.file, src.line):
            d['grad_at'] = f'{src.op_file}:{src.grad_line}'
        return d

    # -- search ----------------------------------------------------------------------------------
    def search(self, query):
        """The matches of q, grouped into rows (a scope, a source line, one node or one matrix), each
        with the view that shows it and a search (hl) that outlines only that row's nodes."""
        state, own = self._parse(query, extra=('q',))
        q = (own.get('q') or '').strip()
        if not q:
            raise ApiError(400, "search needs q: a node id, a parameter cell like 'layer0.attn_wq[3][5]', "
                                "or tags like 'pos:3 layer:0 head:2 role:q'")
        _check_q(q)
        _, trace = self._trace(state)
        ids, to = self._resolve(trace, q)
        keep = {k: state[k] for k in st.TRACE_FIELDS + ('budget', 'ebudget', 'grads', 'side')}

        def target(to, hl):
            t = dict(st.DEFAULTS, **keep)
            t.update(to, hl=hl)
            return t

        rows, unit = self._rows(trace, q, ids, to)
        cap = MAX_CELL_ROWS if unit == 'cell' else MAX_ROWS
        matches = [{'path': r['path'], 'count': r['count'], 'label': r['label'], 'hl': r['hl'],
                    'url': st.canonical(target(r['to'], r['hl']))} for r in rows[:cap]]
        whole = target(to, q)
        return {'q': q, 'count': len(ids), 'scopes': len(rows), 'unit': unit, 'matches': matches,
                'first': ids[0] if ids else None, 'to': st.to_json(whole), 'url': st.canonical(whole)}

    def _node_rows(self, trace, q, i, to):
        """The views that show node i, from the closest: its neighbourhood; a parameter's cell and its
        matrix, or else the scope that holds it and its position (each with its node count)."""
        rows = [{'path': trace.scope_path(i), 'label': f'{trace.label(i)}: its neighbourhood', 'count': 1,
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
            row_to = self._scope_target(trace, fields)
            rows.append({'path': path, 'label': 'the scope that holds it' if fields is own else 'its position',
                         'count': n, 'hl': q, 'to': row_to})
        return rows

    def _rows(self, trace, q, ids, to):
        """([{path, label, count, hl, to}], unit): one row per scope (tags, unit 'scope'), per source
        line (fn:/line:, 'line'); a matrix: itself, then each cell ('cell'); a node id or a cell: each
        view that shows it ('view'). Tags and lines in the order of their first match."""
        if ':' not in q:
            if to['view'] == 'node':
                return self._node_rows(trace, q, ids[0], to), 'view'
            name = to['param'].split('[')[0]
            if len(ids) == 1:                 # one cell: it, and the matrix around it
                nr, nc = trace.param_shapes[name]
                return [{'path': to['param'], 'label': f'{self._values(trace, ids[0])} · every use', 'count': 1,
                         'hl': q, 'to': to},
                        {'path': name, 'label': f'its matrix, {nr}×{nc} cells', 'count': nr * nc, 'hl': q,
                         'to': {'view': 'param', 'param': name, 'level': 'auto'}}], 'view'
            rows = [{'path': name, 'label': f'the whole matrix: {len(ids)} cells', 'count': len(ids), 'hl': q,
                     'to': to}]
            for i in ids:
                _, r, c = trace.param_cell(i)
                cell = f'{name}[{r}][{c}]'
                rows.append({'path': cell, 'label': self._values(trace, i), 'count': 1, 'hl': cell,
                             'to': {'view': 'param', 'param': cell, 'level': 'auto', 'sel': i}})
            return rows, 'cell'
        fields = self._tag_fields(q)
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
                row_to = self._scope_target(trace, own)
            rows.append({'path': scope_path(sc), 'label': trace.label(i), 'count': n, 'hl': hl, 'to': row_to})
        return rows, 'scope'

    @staticmethod
    def _values(trace, i):
        return f'data {trace.data[i]:.6g} · grad {trace.grad[i]:.6g}'

    def _resolve(self, trace, q):
        """(matching ids, partial state of the view that shows them)."""
        m = re.fullmatch(r'#?n?(\d+)', q)
        if m:
            i = int(m.group(1))
            if i >= len(trace):
                raise ApiError(400, f"node {i} is not in this trace; node ids are 0..{len(trace) - 1}")
            return [i], {'view': 'node', 'node': i, 'depth': 2, 'level': 'auto', 'sel': i}
        if q == 'loss':
            if 'loss_id' not in trace.meta:
                raise ApiError(400, "this trace has no loss node; search a node id or a tag")
            i = trace.meta['loss_id']
            return [i], {'view': 'node', 'node': 'loss', 'depth': 2, 'level': 'auto', 'sel': i}
        if ':' in q:
            return self._tags(trace, q)
        try:
            name, r, c = parse_param(q)
            ids = trace.param_nodes((name, r, c))
        except TraceQueryError as e:
            raise ApiError(400, f"{e}; or search a node id, or tags like 'pos:3 layer:0 head:2 role:q'") from None
        if r is None:
            return ids, {'view': 'param', 'param': name, 'level': 'auto'}
        return ids, {'view': 'param', 'param': f'{name}[{r}][{c}]', 'level': 'auto', 'sel': ids[0]}

    @staticmethod
    def _tag_fields(q):
        """{field: value} of a tag query 'pos:3 layer:0 head:2 role:q' or 'fn:forward line:12'."""
        fields = {}
        for part in q.split():
            k, sep, v = part.partition(':')
            if not sep or k not in TAG_KEYS or not v:
                raise ApiError(400, f"cannot read {part[:60]!r}: tags are key:value with keys "
                                    f"{', '.join(TAG_KEYS)}, e.g. 'pos:3 layer:0 head:2 role:q' or 'fn:forward'")
            f = TAG_KEYS[k]
            if f in fields:
                raise ApiError(400, f"tag {k!r} is given twice in {q[:80]!r}; give it once")
            if f in ('pos', 'layer', 'head', 'line'):
                if not v.isdigit() or len(v) > 9:
                    raise ApiError(400, f"{k} must be a whole number, got {v[:40]!r}")
                v = int(v)
            fields[f] = v
        return fields

    def _tags(self, trace, q):
        fields = self._tag_fields(q)
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
            raise _bad(e) from None
        if not ids:
            if 'function' in fields and 'line' in fields:
                raise ApiError(400, f"line {fields['line']} made no node inside {fields['function']}()")
            raise ApiError(400, f"no node has all of {q!r} (only attn_logits, attn_weights and head_out have a head)")
        if 'function' in fields:
            return ids, {'view': 'function', 'function': fields['function'], 'level': 'auto'}
        if 'line' in fields:
            return ids, {'view': 'line', 'line': fields['line'], 'level': 'auto'}
        return ids, self._scope_target(trace, scope)

    @staticmethod
    def _scope_target(trace, fields):
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

    # -- suggestions as the user types ---------------------------------------------------------------
    def suggest(self, query):
        """Completions of the word being typed (the last one of q): tag keys, their values in this
        trace, parameter names, node ids. Each is the whole query with that word completed."""
        state, own = self._parse(query, extra=('q',))
        q = own.get('q') or ''
        _check_q(q)
        _, trace = self._trace(state)
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
                return len(self._resolve(trace, text)[0])
            except ApiError:
                return None

        if colon:
            if key in TAG_KEYS:
                for value, hint in self._tag_values(trace, TAG_KEYS[key], script):
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
                        add(str(i), f'node {trace.label(i)} · {trace.scope_path(i)}', count=1)
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

    @staticmethod
    def _tag_values(trace, field, script):
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

    def _highlight(self, trace, state, view):
        """Names of the visible nodes holding a match of the state's search (hl), and the match count."""
        if not state['hl']:
            return [], 0
        try:
            ids, _ = self._resolve(trace, state['hl'])
        except ApiError:
            return [], 0
        want = set(ids)
        names = [n.name for n in view.folded.nodes if n.kind != 'ref' and not want.isdisjoint(n.ids)]
        return names, len(ids)

    # -- breadcrumbs -------------------------------------------------------------------------------
    def _crumbs(self, trace, state):
        """document › position › layer › block › head › role › scalar, each with the state it opens."""
        where = dict.fromkeys(FIELDS)
        view = state['view']
        if view in ('token', 'layer', 'head'):
            where['pos'] = state['token']
            if view == 'token' and state['token'] is None and trace.positions():
                where['pos'] = trace.positions()[-1]
            if view in ('layer', 'head'):
                where['layer'] = state['layer'] if state['layer'] is not None else 0
            if view == 'head':
                where['head'] = state['head']
                where['block'] = 'attn'
        # where the user went in: the last expansion, or the block a click opened (focus)
        opened = state['expand'][-1] if state['expand'] else state['focus']
        if opened:
            for part in opened.split('/'):
                m = re.fullmatch(r'(pos|layer|head)(\d+)', part)
                if m:
                    where[m.group(1)] = int(m.group(2))
                elif part in BLOCKS:
                    where['block'] = part
                elif '*' not in part and '?' not in part:
                    where['role'] = part
        # the node view's centre is a crumb of its own; a selection (sel) goes after it
        centre = None
        drawn_as_node = trace.source is not None and view in ('doc', 'token', 'layer', 'head')  # a script: the loss
        if view == 'node' or drawn_as_node:
            centre = trace.meta.get('loss_id') if drawn_as_node or state['node'] == 'loss' else state['node']
            if centre is not None and not 0 <= centre < len(trace):
                centre = None
        scalar = state['sel'] if state['sel'] is not None and state['sel'] < len(trace) else None
        anchor = scalar if scalar is not None else centre
        if anchor is not None:
            s = trace.scope_of(anchor)
            if s[2] != 'params':
                where.update({f: v for f, v in zip(FIELDS, s) if v is not None})
        keep = {k: state[k] for k in st.TRACE_FIELDS + ('budget', 'ebudget', 'grads', 'side')}

        def at(**kw):
            return st.to_json(dict(st.DEFAULTS, **keep, **kw))

        def ends(crumbs):
            for level, i in (('node', centre), ('scalar', scalar)):
                if i is not None and (level == 'node' or i != centre):
                    crumbs.append({'level': level, 'label': trace.label(i),
                                   'to': at(view='node', node=i, depth=2, level='auto', sel=i)})
            return crumbs

        if trace.source is not None:
            return ends(self._script_crumbs(trace, state, anchor, at))
        doc = trace.meta.get('doc', 'trace')
        crumbs = [{'level': 'document', 'label': f"'{doc}'", 'to': at(view='doc', level='block')}]
        p, layer, block, head, role = (where[f] for f in FIELDS)
        if p is None:
            return ends(crumbs)
        strs = trace.meta.get('token_strs') or []
        text = f" '{strs[p]}'\u2192'{strs[p + 1]}'" if p + 1 < len(strs) else ''
        crumbs.append({'level': 'position', 'label': f'pos {p}{text}', 'to': at(view='token', token=p)})
        if layer is not None:
            crumbs.append({'level': 'layer', 'label': f'layer {layer}',
                           'to': at(view='layer', layer=layer, token=p, level='block')})
        if block is not None:
            focus = scope_path((p, layer, block, None, None))
            to = (at(view='layer', layer=layer, token=p, level='vector', focus=focus) if layer is not None
                  else at(view='token', token=p, level='vector', focus=focus))
            crumbs.append({'level': 'block', 'label': block, 'to': to})
        if head is not None:
            crumbs.append({'level': 'head', 'label': f'head {head}',
                           'to': at(view='head', layer=layer, head=head, token=p, level='auto')})
        if role is not None:
            path = scope_path((p, layer, block, head, role))
            if head is not None:
                to = at(view='head', layer=layer, head=head, token=p, level='vector', expand=(path,))
            elif layer is not None:
                to = at(view='layer', layer=layer, token=p, level='vector', expand=(path,))
            else:
                to = at(view='token', token=p, level='vector', expand=(path,))
            crumbs.append({'level': 'role', 'label': role, 'to': to})
        return ends(crumbs)

    @staticmethod
    def _script_crumbs(trace, state, scalar, at):
        """script › function › line for a trace recorded from a script (the caller adds the node)."""
        rf = trace.meta.get('recorded_from', {})
        crumbs = [{'level': 'script', 'label': str(rf.get('script', 'script')),
                   'to': at(view='node', node='loss', depth=2, level='auto')}]
        func, line = state['function'], state['line']
        if scalar is not None and trace.source_of(scalar) is not None:
            src = trace.source_of(scalar)
            func = src.funcs[-1] if src.funcs else func
            line = src.line
        if state['view'] == 'function' and func is None:
            func = state['function']
        if func:
            crumbs.append({'level': 'function', 'label': f'{func}()', 'to': at(view='function', function=func,
                                                                            level='auto')})
        if line is not None and (state['view'] == 'line' or scalar is not None):
            crumbs.append({'level': 'line', 'label': f'line {line}', 'to': at(view='line', line=line, level='auto')})
        return crumbs
