"""Export recorded computation graphs as Graphviz DOT and render them.

    from graphviz_export import build_view, render_view
    view = build_view(trace, token=3)        # select -> fold -> draw; view.digraph, .source, .stats
    svg = render_view(view, 'svg')           # bytes, through native dot or WebAssembly Graphviz

The steps are modules of their own: select (which nodes), fold (summary nodes,
to a budget), draw (the Digraph), render (DOT -> bytes). What a view may ask for
(its fields, defaults and limits) is spec.py, once: build_view(trace, **spec.kwargs()).

In a notebook: explorer_widget(trace) shows the explorer in the cell (web/notebook; the
`notebook` extra), and `%load_ext graphviz_export` shows a Trace that way.
"""

from .options import output_format
from .spec import DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET, LEVELS, ViewOptionError, ViewSpec, view_spec
from .steps.failure import failure_view
from .view import View, ViewLayoutTimeout, build_view, file_name, render_view

_NOTEBOOK = ('explorer_widget', 'static_explorer', 'load_ipython_extension')


def __getattr__(name):
    """The notebook names, imported on first use (PEP 562): `import graphviz_export` for a
    render must not load the explorer, the tour and the notebook stack behind them."""
    if name in _NOTEBOOK:
        from .web import notebook
        return getattr(notebook, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ['build_view', 'render_view', 'failure_view', 'file_name', 'output_format', 'View', 'ViewLayoutTimeout',
           'ViewSpec', 'view_spec', 'ViewOptionError', 'LEVELS', 'DEFAULT_BUDGET', 'DEFAULT_EDGE_BUDGET',
           'explorer_widget', 'static_explorer', 'load_ipython_extension']
