"""The explorer's JSON API, independent of HTTP: query string in, (status, body) out.

    api = Api(Recordings(doc='emma'))
    api.view('view=token&token=3&level=vector')   # {'svg': ..., 'nodes': {...}, 'crumbs': [...], ...}

Endpoints: view, info, node, search, export, frames (the step-through of a view), heatrow (heatrows.py),
update (Adam on the parameters in view, after backward), progress, cancel and record (the
long work running now, a new document recorded in the background: jobs.py). A state with `cmp` draws
the before/after differences (graphviz_export.steps.diff) on the same layout pipeline.

The logic behind the endpoints is beside this file, as pure functions of a Trace:
search.py (search, suggestions, highlights), crumbs.py (breadcrumbs), clicks.py (what
a click on a node opens, and the side panel's details of a scalar), links.py (the URL
each tab, chip, control, crumb and click of the page leads to: the `links` of a view).

Every endpoint parses its query with state.py; bad input raises ApiError(400)
with a one-line message (/api/view adds the nearest view that draws: fallback.py); a view
over what lays out in time ApiError(422) with the counts and a suggestion (refused before
building when fold's node_floor already says so), which /api/view answers with the nearest
smaller view instead, and a note (fallback.py). Views are drawn by build_view/render_view
(the one folding implementation) and kept in an LRU keyed by (recording, view state) and
bounded in bytes (cache.py), so a view seen before costs a dictionary look-up.

Long work (recording a document, training for compare, drawing a view) is a job
(work.py): no other request waits for it, `progress` says where it is, `cancel`
stops it (its requests answer 409), and a view that does not need a running
comparison cancels it: the user went elsewhere.
"""

import re
import sys
import threading
import time
import traceback
from urllib.parse import parse_qs

import graphviz_export.render as _render
import graphviz_export.web.explorer.fallback as fallback
import graphviz_export.web.explorer.search as search
import graphviz_export.web.explorer.state as st
from microgpt.errors import InputError
from microgpt.recording import NUM_STEPS
from microgpt.recording.extremes import MAX_K
from microgpt.recording.sourcemap import SourceMap

from ...spec import LEVELS, MAX_BUDGET, MAX_EDGE_BUDGET
from ...steps.frames import frames, frames_of
from ...steps.live import view_fields
from ...steps.update import every_cell, largest_changes_of
from ...view import render_view
from .answers import Answer, ApiError, bad, json_answer
from .cache import CACHE_BYTES, ViewCache
from .clicks import compare_details, node_details, view_nodes
from .crumbs import crumbs
from .drawing import Selections, drawn
from .heatrows import HeatRows
from .jobs import WorkEndpoints, opening_refusal
from .links import node_links, nonfinite_links, script_info, view_links
from .live import compared, highlight, live_info, play_steps, played
from .plays import Plays
from .update_panel import paging, saved_moments, update_answer
from .verdicts import Verdicts, check_answer
from .why import node_why, owners, view_badges
from .work import Cancelled, Opening

EXPORTS = {'svg': 'image/svg+xml', 'png': 'image/png', 'dot': 'text/vnd.graphviz; charset=utf-8',
           'json': 'application/json'}
ENDPOINTS = ('view', 'info', 'node', 'search', 'suggest', 'frames', 'update', 'check', 'play', 'progress',
             'cancel', 'record', 'export', 'heatrow')  # Api.answer's names


class Api(WorkEndpoints, HeatRows):
    def __init__(self, recordings, *, renderer='auto', cache_bytes=CACHE_BYTES, timeout=20.0, check=None,
                 faults=None, script=None):
        self.recordings = recordings
        self.work = recordings.work          # the long work running now (work.py)
        # played runs (train=k; a script's recorded calls: recording.play.ScriptCalls) and labs (lab=MODE)
        self.plays = Plays(recordings, faults=faults, script=script)
        self.layouts = 0                     # Graphviz layouts made: one per view per run (a test counts)
        self.renderer = renderer
        self.timeout = timeout
        # (recording key, build key) -> entry dict, bounded in bytes (a trace the recordings keep not counted)
        self.views = ViewCache(cache_bytes, held=recordings.held)
        self._build, self.selections = threading.Lock(), Selections()   # one build at a time (2 cores); its Selection kept
        self.sources = SourceMap()
        self.png = 'native' in _render.available_renderers()
        self.verdicts = Verdicts(check)     # the node check of each recording, in the background

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
            raise bad(e) from None
        return state, {k: v[0] for k, v in own.items()}

    def _trace(self, state):
        """(key, Trace) of a state: the recording, or with train=k a played run's key and step k."""
        try:
            key = self.recordings.key(state)
            if state['train'] is not None:
                return played(self.plays, key, state)     # a played step: no node check of its own
            trace = self.recordings.get(key)
        except InputError as e:
            raise bad(e) from None
        except Cancelled as e:
            raise ApiError(409, str(e)) from None
        self.verdicts.start(key, trace)
        return key, trace

    def _compare(self, key, state):
        """The Comparison a state's cmp or lab names (recordings.compare, live.compared), or None."""
        try:
            if state['lab'] is not None or state['train'] is not None:
                recording = self.recordings.key(state)
                return compared(self.plays, recording, state)
            cmp = st.compare_of(state)
            if cmp is None:
                return None
            compared(self.plays, key, state)        # refuses a played run's kind of cmp
            return self.recordings.compare(key, cmp)
        except InputError as e:
            raise bad(e) from None
        except Cancelled as e:
            raise ApiError(409, str(e)) from None

    def _entry(self, state):
        """The cached drawing of a state: {'view', 'svg', 'nodes', 'ms'}; built on a miss."""
        key, trace = self._trace(state)
        try:
            kwargs = st.build_kwargs(state)
        except st.StateError as e:
            raise bad(e) from None
        # a played run's view: one layout per run (train is not in the build key), but a
        # comparison of its steps depends on the step
        step = (state['train'],) if state['train'] is not None and state['cmp'] else ()
        ck = (key + step, st.build_key(state))
        entry = self.views.get(ck)
        cached = entry is not None
        if not cached:
            try:
                entry = self.work.run(('view', ck), 'drawing the view',
                                      lambda job: self._draw(job, ck, key, trace, kwargs, state))
            except Cancelled as e:
                raise ApiError(409, str(e)) from None
        # a played step drawn on its run's layout: the step's own trace, the run's drawing
        return key, (trace if entry['comparison'] is None else entry['trace']), entry, cached

    def _draw(self, job, ck, key, trace, kwargs, state):
        """The entry of a view not drawn yet: fold, draw, lay out (a job: others go on meanwhile), cached."""
        entry = self.views.get(ck)         # drawn by a job that ended after this request looked
        if entry is None:
            entry = self._drawing(job, key, trace, kwargs, state)
            self.views.put(ck, entry, later=True)     # measured once the answer is sent (settle)
            self.recordings.drawn()     # a step recorded now is stored once its first view is drawn (in the background)
        return entry

    def _drawing(self, job, key, trace, kwargs, state):
        comparison = self._compare(key, state)
        if comparison is not None:
            trace = comparison.delta
            kwargs['notes'] = comparison.notes
            kwargs['highlight'] = highlight(comparison)
        job.at('waiting for the layout of another view')
        with self._build:
            view, svg, ms = drawn(trace, kwargs, state, job, self.selections, renderer=self.renderer, timeout=self.timeout)
            self.layouts += 1
            nodes = view_nodes(trace, view, state)
            # what a click on a node changes: turned into a URL per request (links.py), not sent as is
            clicks = {name: d.pop('to') for name, d in nodes.items() if 'to' in d}
            return {'view': view, 'svg': svg, 'trace': trace, 'comparison': comparison,
                    'nodes': nodes, 'clicks': clicks, 'frames': {}, 'update': None,
                    'badges': view_badges(trace, view), 'owner': None, 'ms': ms}

    def _fitted(self, state):
        """(the state drawn, a note or None, _entry's answer): `state` itself when it draws in time,
        else the nearest smaller view that does (fallback.smaller), with a note saying so."""
        try:
            return state, None, self._entry(state)
        except ApiError as e:
            if e.status != 422:
                raise
            refusal = e
        _, trace = self._trace(state)
        try:
            kwargs = st.build_kwargs(state)
        except st.StateError as e:
            raise bad(e) from None
        nodes = refusal.body.get('nodes') or 0
        for candidate, note in fallback.smaller(trace, state, kwargs, nodes, self.selections):
            try:
                return candidate, note, self._entry(candidate)
            except ApiError as e:
                if e.status != 422:
                    raise
        raise refusal

    # -- one request, by endpoint name: what every door calls ---------------------------------------
    def answer(self, endpoint, query):
        """The Answer of /api/<endpoint>?<query>: 200 with the endpoint's JSON (an export: its bytes), an ApiError's
        status with its one line of JSON, 404 for an unknown endpoint, 500 with one line for anything unexpected (the
        traceback goes to stderr). Work in the background yields meanwhile (Work.serving), whichever door asked."""
        with self.work.serving():
            try:
                if endpoint == 'export':
                    data, ctype, name = self.export(query)
                    return Answer(200, data, ctype, {'Content-Disposition': f'attachment; filename="{name}"'})
                if endpoint not in ENDPOINTS:
                    return json_answer(404, {'error': f"no API endpoint {('/api/' + endpoint)[:100]!r}; endpoints: "
                                                      f"{', '.join('/api/' + e for e in ENDPOINTS)}"})
                got = getattr(self, endpoint)(query)
                # a view says whether the LRU answered (the benchmark reads it to prove a cached sample)
                extra = {'X-View-Cache': 'hit' if got['cached'] else 'miss'} if endpoint == 'view' else None
                return json_answer(200, got, extra)
            except ApiError as e:
                return json_answer(e.status, e.body)
            except Opening as e:    # the first step still opening (Recordings.open): 503, how far (the page's bar)
                e = opening_refusal(e.job)
                return json_answer(e.status, e.body)
            except Exception as e:  # noqa: BLE001 -- keep serving; say what happened in one line
                traceback.print_exc(file=sys.stderr)
                return json_answer(500, {'error': ' '.join(f"internal error: {type(e).__name__}: {e}".split())})

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
        doc, ckpt, seed = ((trace.meta.get('doc'), None, None) if key in (('trace',), ('play', 'script')) else
                           (key[1], None, key[2]) if key[0] == 'play' else key)
        return {'doc': doc, 'ckpt': ckpt, 'seed': seed, 'fixed': rk.fixed is not None,
                'key': rk.key_text(key), 'tokens': tokens, 'layers': trace.layers(), 'heads': trace.heads(),
                'params': {n: list(trace.param_shapes[n]) for n in trace.param_names},
                'loss': trace.loss if 'loss_id' in trace.meta else None, 'n_nodes': len(trace),
                'levels': list(LEVELS), 'views': list(st.VIEWS), 'png': self.png,
                'defaults': {'budget': st.DEFAULTS['budget'], 'ebudget': st.DEFAULTS['ebudget'],
                             'max_budget': MAX_BUDGET, 'max_ebudget': MAX_EDGE_BUDGET},
                'truncated': bool(trace.meta.get('truncated')), 'script': script_info(trace),
                'nonfinite': nonfinite_links(trace, state),
                'labs': [] if rk.fixed is not None else self.plays.modes()}

    def view(self, query):
        """The view a query asks for; one too big opens smaller (fallback.smaller, its `fallback`
        note says how); one that cannot be shown as written is a 400 whose body also names the
        nearest view that can (`fallback`: its URL, `note`: fallback.nearest)."""
        try:
            return self._view(query)
        except ApiError as e:
            if e.status == 400:
                e.body.update(self.nearest(query, e.body['error']))
            raise

    def nearest(self, query, error):
        """{'fallback': URL, 'note': text} of the nearest view to `query` that draws (fallback.nearest);
        `error`: why the link as written was refused."""
        return fallback.nearest(self._fitted, (ApiError, InputError), query, error)

    def _view(self, query):
        state, _ = self._parse(query)
        t0 = time.perf_counter()
        self._cancel_others(state)
        state, note, (key, trace, entry, cached) = self._fitted(state)
        if key[0] != 'play' and key[-1] is None and state['seed'] is not None:
            state = dict(state, seed=None)      # a checkpoint's recording: the seed means nothing (Recordings.key)
        view = entry['view']
        self.recordings.contribs_for(key, trace, state['hl'])
        hl, hl_count = search.highlight(trace, state, view)
        trail = crumbs(trace, state)
        cmp = entry['comparison']
        compare = None if cmp is None else {
            'labels': list(cmp.labels), 'models': list(cmp.models), 'notes': cmp.notes, 'loss_before': cmp.before.loss,
            'loss_after': cmp.after.loss, 'loss_delta': cmp.after.loss - cmp.before.loss}
        nodes, live = entry['nodes'], None
        if state['train'] is not None:
            live = live_info(self.plays, state, key, trace, entry)
            if live['now'] is not None:     # the panel's and overlays' figures are step k's
                nodes = view_nodes(trace, view, state)
                for d in nodes.values():
                    d.pop('to', None)
        if cmp is not None and cmp.first is not None:
            compare['first'] = {'id': cmp.first, 'name': cmp.before.name(cmp.first),
                                'op': cmp.before.op_name(cmp.first), 'path': cmp.before.scope_path(cmp.first),
                                'notes': cmp.notes}
        return {'state': st.to_json(state), 'url': st.canonical(state), 'key': self.recordings.key_text(key),
                'compare': compare, 'live': live,
                'title': view.selection.title, 'kind': view.selection.kind, 'stats': view.stats,
                'notes': list(view.folded.notes), 'expanded': list(state['expand']),
                'svg': entry['svg'], 'nodes': nodes, 'highlight': hl, 'hl_count': hl_count,
                'badges': entry['badges'], 'heat': view.heatmaps,     # a heat-map's cells: the page paints them
                'crumbs': trail, 'cached': cached, 'fallback': note,
                'links': view_links(trace, state, view, trail, entry['clicks'], script_info(trace),
                                    first=None if cmp is None else cmp.first),
                'ms': dict(entry['ms'], total=round(1000 * (time.perf_counter() - t0), 1))}

    def _cancel_others(self, state):
        """A view that does not need a running comparison cancels it: the user went elsewhere."""
        cmp = st.compare_of(state)
        try:
            keep = {('compare', self.recordings.key(state), cmp)} if cmp is not None else set()
        except InputError:
            return
        self.work.cancel('compare', keep)

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
        if fmt == 'svg' and view.heatmaps is None:
            data = entry['svg'].encode('utf-8')
        else:       # a heat-map the page paints: striped in a file (View.striped)
            with self._build:
                try:
                    data = render_view(view.striped(), fmt, timeout=self.timeout, renderer=self.renderer)
                except _render.RenderError as e:
                    raise ApiError(400 if fmt == 'png' else 500, str(e)) from None
        doc = re.sub(r'[^A-Za-z0-9_-]', '_', str(trace.meta.get('doc', 'trace')))[:40] or 'trace'
        what = re.sub(r'[^A-Za-z0-9_.-]', '_', st.build_key(state) or 'view')[:80]
        return data, EXPORTS[fmt], f"{doc}-{what}.{fmt}"

    def frames(self, query):
        """The backprop (or forward) step-through of a view state: graphviz_export.steps.frames of its View."""
        state, _ = self._parse(query)
        mode = state['mode']
        if state['cmp'] or state['lab']:
            raise ApiError(400, "the step-through plays one recording; leave compare (cmp) and lab first")
        _key, trace, entry, _ = self._entry(state)
        own = trace is entry['trace']       # else a played step on the run's layout: its own numbers
        got = entry['frames'].get(mode) if own else None
        if got is None:
            with self._build:
                try:
                    view = entry['view']
                    got = (frames(view, mode, entry['svg']) if own else
                           frames_of(trace, view.folded, mode, entry['svg'], view_fields(view, trace)))
                except InputError as e:
                    raise bad(e) from None
                if own:
                    entry['frames'][mode] = got
            if own:
                self.views.grew((_key, st.build_key(state)), got)
        return got

    def update(self, query):
        """What Adam does to the parameters of a view, after its backward (graphviz_export.steps.update).

        The moments come from a real optimizer state when the server has one (compare
        after N training steps: the trained run's m and v, the update of step N + 1, on
        the grads of the *after* recording; a played run's at its step); otherwise from a
        fresh optimizer taking its first step (checkpoints store no optimizer state).

        Every row is one page away: `matrix` (one parameter matrix's rows), `sort` (id |
        delta: largest |change| first), `offset` and `limit` (<= 400) page through them;
        `matrices` sums up each matrix in view (update.matrix_summary); `html` is the table
        (web/update_table.py, the tour's too): update_panel.py."""
        state, own = self._parse(query, extra=('matrix', 'sort', 'offset', 'limit'))
        pages = paging(own)
        key, trace, cmp, opt, num_steps, finished = self._moments(state)
        _, _, entry, _ = self._entry(dict(state, cmp=None, lab=None))
        return update_answer(trace, entry['view'], (cmp, opt, num_steps, finished), state, pages)

    def _moments(self, state):
        """(key, the trace Adam steps on, the comparison, its optimizer state or None, num_steps, a
        checkpoint's finished state or None): a comparison's trained run's moments, a played run's
        at its step, else a checkpoint's saved ones if its run has steps left, else a fresh optimizer's."""
        key, trace = self._trace(state)
        cmp = self._compare(key, state)
        opt, num_steps, finished = None, NUM_STEPS, None
        if cmp is not None:
            trace, opt = cmp.after, cmp.optimizer
        elif state['train'] is not None:        # the played run's own moments: the update of step k + 1
            play, _ = self.plays.run(key)
            opt, num_steps = play.optimizer_state(), play.schedule
            if opt['step'] != state['train']:
                raise ApiError(409, f"the run moved on to step {opt['step']}; ask again for train={state['train']}")
        elif state.get('ckpt'):
            saved = saved_moments(state['ckpt'], self.recordings.moments)
            if saved is not None and saved['step'] < saved['num_steps']:
                opt, num_steps = saved, saved['num_steps']
            elif saved is not None:
                finished = saved
        self.recordings.adam_for(key, trace, opt, num_steps)    # a big step's every cell: stepped in the background
        return key, trace, cmp, opt, num_steps, finished

    def node(self, query):
        state, own = self._parse(query, extra=('id',))
        if 'id' not in own:
            raise ApiError(400, "node details need id, a node id such as 4711")
        try:
            i = st._int('id', own['id'], 0, 10**9)
        except st.StateError as e:
            raise bad(e) from None
        key, trace = self._trace(state)
        if i >= len(trace):
            raise ApiError(400, f"node {i} is not in this trace; node ids are 0..{len(trace) - 1}")
        cmp = self._compare(key, state)
        drawn = self._drawn(key, state)
        if cmp is None:
            d = node_links(state, node_details(trace, i, self.sources), drawn)
            entry = self._cached(key, state)
            self.recordings.routes_for(key, trace, i)   # a big step's routes may be walked in the background
            with self.recordings.engine_for(trace):     # made by may replay the forward pass (madeby.py)
                d['why'] = node_why(trace, i, self.sources, entry and entry['view'], entry and self._owner(entry))
            d['source'] = d['why']['made_by']
            d['check'] = self.verdicts.at(key, i)
            return d
        d = node_links(state, node_details(cmp.delta, i, self.sources), drawn)
        # the delta trace's one sum would add differences and set them against Δgrad: a
        # comparison across frames. Each frame's sum is in compare, against its own grad.
        del d['uses_sum'], d['sum_is_grad']
        d['compare'] = {'labels': list(cmp.labels),
                        **compare_details(cmp.before, cmp.after, cmp.delta, i, len(d['uses']))}
        return d

    def _drawn(self, key, state):
        """{node id: drawn name} of the scalars of the state's view when it is drawn (cached), else {}:
        the side panel selects those in place and opens the others' neighbourhoods."""
        entry = self._cached(key, state)
        if entry is None:
            return {}
        return {d['id']: name for name, d in entry['nodes'].items() if d['k'] == 's'}

    def _cached(self, key, state):
        """The cached drawing of a state, or None (never draws)."""
        return self.views.get((key, st.build_key(state)))

    @staticmethod
    def _owner(entry):
        """{node id: drawn name} of a cached drawing, made on first use (why.owners)."""
        if entry['owner'] is None:
            entry['owner'] = owners(entry['view'])
        return entry['owner']

    def check(self, query):
        """The node check of the state's recording (verdicts.check_answer): running, or its verdict."""
        state, _ = self._parse(query)
        key, trace = self._trace(state)
        entry = None if state['cmp'] else self._cached(key, state)
        with self.recordings.engine_for(trace):
            return check_answer(self.verdicts, key, trace, state, entry and entry['view'], self.sources)

    def play(self, query):
        """From train=k, `steps` optimizer steps of the played run: one payload of numbers per
        step for the run's layout (live.play_steps)."""
        state, own = self._parse(query, extra=('steps',))
        try:
            steps = st._int('steps', own.get('steps', '1'), 1, 10**6)
            return play_steps(self, state, steps)
        except InputError as e:
            raise bad(e) from None

    # -- search, and suggestions as the user types -------------------------------------------------
    def search(self, query):
        """The matches of q, grouped into rows (search.search)."""
        state, own = self._parse(query, extra=('q',))
        q = (own.get('q') or '').strip()
        key, trace = self._trace(state)
        self.recordings.contribs_for(key, trace, q)     # max:contrib: a big step's are ranked in the background
        changes = None
        if q == 'max:dw':       # Adam's step as the update panel takes it, on every parameter (kept: every_cell)
            _, moved, _, opt, num_steps, _ = self._moments(state)
            changes = largest_changes_of(moved, every_cell(moved, opt, num_steps), MAX_K)
        try:
            return search.search(trace, state, q, changes)
        except InputError as e:
            raise bad(e) from None

    def suggest(self, query):
        """Completions of the word being typed (search.suggest)."""
        state, own = self._parse(query, extra=('q',))
        _, trace = self._trace(state)
        try:
            return search.suggest(trace, own.get('q') or '')
        except InputError as e:
            raise bad(e) from None

    # -- breadcrumbs -------------------------------------------------------------------------------
