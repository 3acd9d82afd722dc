"""The explorer as a notebook widget (anywidget): the explorer's page in the cell, its requests
answered by the kernel through the widget's comm.

anywidget is the `notebook` extra, not a dependency: `widget_class()` imports it when the first
widget is made (ImportError without it: explorer_widget turns that into the one line saying what
to install), so `import graphviz_export` never loads it, nor ipywidgets and IPython behind it.
The widget is `Explorer` (everything it does, plain Python) on anywidget's AnyWidget.

No port, no proxy, no token: the page's requests (static/transport.js, hosted) reach the kernel
as anywidget command messages on the widget's comm, and `_request` answers them with Api.answer,
the handlers the HTTP server calls. The server's access checks (access.py: its token,
same-origin, offered checkpoints only) guard a TCP port that any local process or web page can
reach; the comm is not such a port: only the notebook's own front end, which can already run
any code in this kernel, can send on it. So the widget's page may open any checkpoint the
kernel's user can read, as a code cell could.

The first view costs the cell no round trip: displaying the widget computes the answers the page
asks before it draws (its view, its recording's info: `_first`), and they travel with the widget;
the kernel, which in a notebook answers the page's requests only once the cell is done, is not asked.
Its recordings are made without the chains of "made by" (~45-100 ms of 'emma''s recording); once the
cell is done (after_cell), while the front end draws, the kernel replays them for the side panel.
"""

import functools
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs

import graphviz_export.web.explorer.state as st
from microgpt.errors import InputError
from microgpt.recording.madeby import made_by

from ...select import select
from ...spec import FIELDS, view_spec
from ..explorer.api import ApiError
from ..explorer.assets import inline_page
from ..explorer.links import another_view, neighbourhood
from ..explorer.state import KIND
from .snapshot import snapshot

HERE = Path(__file__).parent / 'static'
HEIGHT = 700        # px of the explorer in its cell (the user can drag its corner)


@functools.cache
def widget_class():
    """ExplorerWidget: Explorer on anywidget.AnyWidget, with its synced traits and its command
    (made once; ImportError without the `notebook` extra)."""
    import anywidget
    import traitlets
    from anywidget.experimental import command
    return type('ExplorerWidget', (Explorer, anywidget.AnyWidget), {
        '__module__': __name__, '__doc__': Explorer.__doc__,
        '_esm': HERE / 'widget.js', '_css': HERE / 'widget.css',
        '_page': traitlets.Unicode('').tag(sync=True),      # the page, inline (the srcdoc of its frame)
        '_first': traitlets.Dict().tag(sync=True),          # the shown view's answers, given at display
        'state': traitlets.Unicode('').tag(sync=True),
        'height': traitlets.Int(HEIGHT).tag(sync=True),
        '_request': command(Explorer._request),
    })


class Explorer:
    """The explorer in a cell. `state` is the view's state as the explorer's URL query (the page
    writes it as you click; w.show and w.select write it from Python); `selected` the node id
    clicked last (the side panel's), or None."""

    def __init__(self, api, *, state='', height=HEIGHT, view=None):
        """`view`: show()'s options for the first view (explorer_widget's), applied to `state` before
        anything is drawn: the cell's first view is the only one laid out, not the default first."""
        self._api = api
        if view:
            state = self._shown(st.parse(state), dict(view))
        super().__init__(_page=inline_page(), state=self._checked(state), height=height)

    # -- the page's requests (an anywidget command: widget_class) --------------------------------------
    def _request(self, msg, buffers):
        """One request of the page: {'endpoint', 'query'} -> ({'status', 'type', 'headers'}, [body])."""
        endpoint, query = (msg.get(k) if isinstance(msg, dict) else None for k in ('endpoint', 'query'))
        if not isinstance(endpoint, str) or not isinstance(query, str):
            status, body, ctype, headers = 400, b'{"error": "a request names an endpoint and a query string"}', \
                'application/json', {}
        else:
            status, body, ctype, headers = self._api.answer(endpoint, query)
            self._api.views.settle()        # a view drawn for it measured (the comm sends the answer on return)
        return {'status': status, 'type': ctype, 'headers': headers}, [body]

    # -- Python drives it ---------------------------------------------------------------------------
    @property
    def trace(self):
        """The Trace on screen: the recording the state names, or with train=k (w.show(train=5):
        five optimizer steps of the reference run, played on the view's one layout) the document
        recorded on the weights after step k."""
        return self._api._trace(st.parse(self.state))[1]

    @property
    def selected(self):
        """The id of the node selected in the page (its side panel), or None."""
        sel = parse_qs(self.state).get('sel')
        return int(sel[0]) if sel else None

    def show(self, **fields):
        """Show another view, by render's options (token=3, layer=0, head=1, param='wte',
        node='loss', depth=2, level='scalar', expand=[...], edge_grads=True; or the page's names
        for them: view='head', dir, ebudget, grads), as a tab of the page would: the recording,
        budgets and the page's own fields stay. The page's own fields may be set too (frame=0
        opens the step-through, mode='forward', ov='grad', side='hide', hl='pos:3', doc='anna')."""
        self.state = self._checked(self._shown(st.parse(self.state), fields))
        return self

    def _shown(self, state, fields):
        """The canonical query of `state` with show()'s `fields` applied (not drawn yet)."""
        unknown = [k for k in fields if k not in VIEW_NAMES and k not in st.DEFAULTS]
        if unknown:
            raise InputError(f"show() has no option {unknown[0]!r}; view options: {', '.join(FIELDS)}; the page's: "
                             f"{', '.join(k for k in st.DEFAULTS if k not in VIEW_NAMES)}")
        view = {VIEW_NAMES[k]: fields.pop(k) for k in list(fields) if k in VIEW_NAMES}
        if view or 'view' in fields:
            spec = view_spec(view)          # render's checks and one-line messages
            kind = fields.pop('view', None) or self._kind(state, spec)
            given = {st.URL_NAME.get(f, f): getattr(spec, f) for f in view}
            state = st.parse(another_view(state, view=kind, **given))
        return st.canonical({**state, **fields})

    def _kind(self, state, spec):
        """The page's name of the view some options name, by select's precedence (as render picks it)."""
        trace = self._api.recordings.get(self._api.recordings.key(state))
        kind = select(trace, **{k: v for k, v in spec.kwargs().items() if k in SELECT_ARGS}).kind
        return PAGE_VIEW.get(kind, kind)

    def select(self, node):
        """Select a node (an id, 'loss', or its name: 'q[2]@pos3'): shown in the side panel, in
        the view on screen when it draws it, else in its neighbourhood."""
        trace = self.trace
        i = _node_id(trace, node)
        state = st.parse(self.state)
        drawn = self._api.view(st.canonical(state))['nodes']
        if any(d.get('k') == 's' and d.get('id') == i for d in drawn.values()):
            self.state = self._checked(st.canonical(dict(state, sel=i)))
        else:
            self.state = self._checked(neighbourhood(state, i))
        return self

    def _checked(self, query):
        """The state's canonical query, its view drawn (so the page's first request is a cache hit);
        a state the explorer refuses, or would draw only smaller (fallback.py: the page opens the
        nearest view that draws, with a note), raises InputError with the explorer's one line."""
        if not isinstance(query, str):
            raise InputError(f"state must be a query string such as 'view=token&token=3', got {query!r}")
        try:
            got = self._api.view(query)
        except ApiError as e:
            raise InputError(e.body['error']) from None
        if got.get('fallback'):     # the page would open a smaller view instead; asked from Python, say so
            raise InputError(got['fallback'])
        return got['url']

    # -- display: the live widget, and what a notebook without a kernel shows ------------------------
    def _repr_mimebundle_(self, **kwargs):
        self._first = self._first_answers(self.state)
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data.update(snapshot(self._api, self.state))
        after_cell(self._made_by_ready)
        return data, metadata

    def _made_by_ready(self):
        """Replay the shown recording's forward pass for its "made by" chains, if it has none
        (recordings made for the widget have none: notebook.explorer), so the side panel's first
        "made by" does not wait for it. Run once the cell is done (after_cell): the front end draws
        the first view meanwhile, with no request to the kernel (_first_answers)."""
        try:
            trace = self.trace
        except (InputError, ApiError):
            return          # a state that cannot be shown now: its page says why; nothing to prepare
        with self._api.recordings.engine_for(trace):
            made_by(trace, trace.meta.get('loss_id', 0))

    def _first_answers(self, query):
        """{endpoint: {'query', 'status', 'type', 'headers', 'body'}}: Api.answer's answers to the two
        requests the page makes before it draws `query` (its view, then its recording's info), sent
        with the widget when it is displayed. The page's transport answers those two requests from
        here, once and only for this very query (static/transport.js), so the first view is drawn with
        no round trip to the kernel, which in a notebook answers the page only once the cell is done."""
        view = self._api.answer('view', query)
        asked = [('view', query, view)]
        if view.status == 200:      # the page asks for the info of the view it was answered (its url)
            url = json.loads(view.body)['url']
            asked.append(('info', url, self._api.answer('info', url)))
        return {name: {'query': q, 'status': a.status, 'type': a.type, 'headers': a.headers,
                       'body': a.body.decode('utf-8')} for name, q, a in asked}

    def __repr__(self):
        return f"<{type(self).__name__} {self.state or '(the first view)'!r}>"


# show()'s view options: render's names, and the page's names for the same (state.SPEC_NAME)
VIEW_NAMES = {**{f: f for f in FIELDS}, **{k: v for k, v in st.SPEC_NAME.items() if k != 'view'}}
PAGE_VIEW = {**{v: k for k, v in KIND.items()}, 'matrix': 'param'}   # a selection's kind -> the page's tab
SELECT_ARGS = ('token', 'layer', 'head', 'param', 'node', 'depth', 'direction', 'function', 'line')


def after_cell(fn):
    """Call fn() once the IPython cell now running is done (its post_run_cell event: its output is
    with the front end by then), then forget it; True if so. Outside IPython nothing is called (the
    work is then done when first asked)."""
    ipython = sys.modules.get('IPython')
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False

    def once(*_result):
        shell.events.unregister('post_run_cell', once)
        fn()
    shell.events.register('post_run_cell', once)
    return True


def _node_id(trace, node):
    """A node id from an id, 'loss' or a name (Trace.name's); InputError naming what was given."""
    if isinstance(node, bool):
        raise InputError(f"node {node!r} is not a node id, 'loss' or a node's name")
    if isinstance(node, int):
        if not 0 <= node < len(trace):
            raise InputError(f"node {node} is not in this trace; node ids are 0..{len(trace) - 1}")
        return node
    if node == 'loss' and 'loss_id' in trace.meta:
        return trace.meta['loss_id']
    if isinstance(node, str):
        ids = trace.names().find(node)
        if len(ids) == 1:
            return ids[0]
        if ids:
            raise InputError(f"{len(ids)} nodes are named {node!r}; give one id: {', '.join(map(str, ids[:8]))}")
    raise InputError(f"node {node!r} is not a node id, 'loss' or a node's name in this trace")
