"""The explorer inside a notebook cell: `explorer_widget(trace)` or `explorer_widget(doc='emma')`.

    from graphviz_export import explorer_widget
    w = explorer_widget(doc='emma')     # the explorer, in the cell: views, search, side panel, step-through
    w.show(token=2, level='vector')     # Python drives it (render's view options)
    w.selected                          # the node clicked last, as an id: w.trace.grad[w.selected]

The page is the explorer's own (web/explorer/static), in a frame in the cell; its requests go
over the kernel's comm to the same handlers the HTTP server uses (widget.py says why no token
is needed there). The output also holds a static copy for a notebook read without a kernel
(snapshot.py: the view's SVG and an offline backprop stepper).

`%load_ext graphviz_export` makes a Trace shown as a cell's last line display as the explorer.

The live widget needs the `notebook` extra (anywidget): pip install 'microgpt-graph[notebook]'.
Without it, explorer_widget raises NotebookExtraMissing, whose message is that one line; the
static copy needs nothing more (static_explorer).
"""

from microgpt.errors import InputError
from microgpt.recording import DEFAULT_DOC, SEED

from ..explorer.api import Api
from ..explorer.recordings import Recordings
from .snapshot import snapshot
from .widget import HEIGHT, widget_class

INSTALL = "pip install 'microgpt-graph[notebook]'"


class NotebookExtraMissing(ImportError):
    """The widget needs anywidget; the message says what to install. In IPython it shows as that
    one line, not a traceback."""

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]


def explorer(trace=None, *, doc=None, checkpoint=None, seed=SEED, data=None, renderer='auto'):
    """The explorer's Api over a saved or recorded Trace, or over documents recorded on demand
    (doc, checkpoint, seed; data: the names file, for compare after N training steps)."""
    if trace is not None and (doc is not None or checkpoint is not None):
        raise InputError("give a trace, or doc/checkpoint to record one, not both")
    # recorded without the chains of "made by": the cell's first view does not wait for them (~45 ms of
    # 'emma''s ~140 ms recording); the side panel's first "made by" replays the forward pass once instead
    recordings = Recordings(doc=doc or DEFAULT_DOC, checkpoint=checkpoint, seed=seed, trace=trace, data=data,
                            lines=False)
    return Api(recordings, renderer=renderer)


def explorer_widget(trace=None, *, doc=None, checkpoint=None, seed=SEED, data=None, state='', height=HEIGHT,
                    renderer='auto', **view):
    """The explorer in this cell, as a widget (display it, or leave it as the cell's last line).

    trace: a Trace to explore (as `explore --trace`); or doc, checkpoint, seed to record one
    (as `explore`: the page can then switch documents and compare). data: the names file
    (compare after N training steps). The first view: `state` (the explorer's URL query) or
    render's view options (token=3, level='vector', ...; w.show's). height: px of the cell's
    explorer, at most 80% of the window (drag its corner to change it)."""
    try:
        widget = widget_class()
    except ImportError as e:
        raise NotebookExtraMissing(f"the explorer widget needs anywidget ({e.name or e}): {INSTALL}") from None
    return widget(explorer(trace, doc=doc, checkpoint=checkpoint, seed=seed, data=data, renderer=renderer),
                  state=state, height=height, view=view)


class StaticExplorer:
    """A view's static copy (snapshot.py) on its own: what a notebook without the widget shows."""

    def __init__(self, api, state=''):
        self.api, self.state = api, state

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {**snapshot(self.api, self.state), 'text/plain': f"<StaticExplorer {self.state!r}>"}


def static_explorer(trace=None, *, doc=None, checkpoint=None, seed=SEED, state=''):
    """The static copy of a view (its SVG and offline backprop stepper), needing no extra."""
    return StaticExplorer(explorer(trace, doc=doc, checkpoint=checkpoint, seed=seed), state)


def _display_trace(trace, include=None, exclude=None):
    """A Trace as a cell's last line: the explorer on it (the static copy, and the line saying
    what to install, without the extra)."""
    try:
        w = explorer_widget(trace)
    except NotebookExtraMissing as e:
        data = snapshot(explorer(trace))
        data['text/html'] = f'<p><code>{e}</code></p>' + data['text/html']
        return data
    return w._repr_mimebundle_()


def load_ipython_extension(ipython):
    """`%load_ext graphviz_export`: a Trace shown as a cell's last line displays as the explorer.
    (microgpt.recording does not know the exporter, so the exporter registers the display.)"""
    ipython.display_formatter.mimebundle_formatter.for_type_by_name(
        'microgpt.recording.trace', 'Trace', _display_trace)
