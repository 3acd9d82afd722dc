"""`microgpt-graph explore`: a local, offline web explorer over one recorded training step.

    from graphviz_export.web.explorer import serve
    serve(doc='emma')          # records the step, serves http://127.0.0.1:<free port>/, Ctrl-C stops

The server folds and lays out every view with the same pipeline as `render`
(build_view / render_view); the page (static/, shipped in the package, no
network) draws the SVG, pans and zooms, expands nodes in place, searches, and
keeps the whole view state in its URL (state.py). See api.py for the endpoints.
"""

from .api import Api, ApiError
from .recordings import Recordings
from .server import ExplorerServer, make_server, serve
from .state import StateError

__all__ = ['Api', 'ApiError', 'ExplorerServer', 'Recordings', 'StateError', 'make_server', 'serve']
