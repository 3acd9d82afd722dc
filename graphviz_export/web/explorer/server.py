"""The explorer's HTTP server: the standard library's ThreadingHTTPServer, bound to 127.0.0.1.

Why the standard library: the server answers one local user with a handful of
GET endpoints, and the expensive part (fold + Graphviz layout) is ours either
way; http.server does that with no new dependency to install, pin or audit.

Hardening:
- binds 127.0.0.1 unless a host is given (serve() warns then);
- refuses a request whose Host header is not the address served (DNS rebinding),
  and API requests a browser marks as cross-site, with 403;
- static files come from a fixed list read from the package's asset folder at
  start, so a path can never reach outside it (no path joining of user input);
- every API parameter is validated (state.py); a bad one gets HTTP 400 with a
  one-line JSON {"error": ...}; an unexpected exception gets 500 with one line
  (the traceback goes to stderr) and the server keeps serving;
- Ctrl-C closes the socket and returns, no traceback.
"""

import json
import sys
import threading
import traceback
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from urllib.parse import urlsplit

from microgpt.recording import DEFAULT_DOC, SEED

from .api import Api, ApiError
from .recordings import Recordings

TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
         '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png',
         '.txt': 'text/plain; charset=utf-8'}
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")


# the step-through player, escape and number format are shared with the tours (graphviz_export/web/static):
# served from there, not copied
SHARED = {'graphviz_export.web': ('format.js', 'stepper.js', 'stepper.css')}


def _assets():
    """{'/static/explorer.js': (bytes, type)}: every file of the asset folder and the SHARED
    files of other packages, read once (a fixed list: no request path is ever joined)."""
    folder = files(__package__) / 'static'
    out = {}
    for item in folder.iterdir():
        name = item.name
        ext = name[name.rfind('.'):] if '.' in name else ''
        if item.is_file() and ext in TYPES:
            out['/static/' + name] = (item.read_bytes(), TYPES[ext])
    for package, names in SHARED.items():
        for name in names:
            out['/static/' + name] = ((files(package) / 'static' / name).read_bytes(), TYPES[name[name.rfind('.'):]])
    out['/'] = out['/static/index.html']
    return out


class Handler(BaseHTTPRequestHandler):
    server_version = 'microgpt-graph-explorer'
    sys_version = ''
    protocol_version = 'HTTP/1.1'

    # -- plumbing ---------------------------------------------------------------------
    def log_message(self, fmt, *args):          # quiet unless asked
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status, body, ctype, extra=None):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('X-Content-Type-Options', 'nosniff')
        self.send_header('Cache-Control', 'no-store')
        self.send_header('Content-Security-Policy', CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def _json(self, status, obj, extra=None):
        self._send(status, json.dumps(obj, ensure_ascii=False, allow_nan=False).encode('utf-8'),
                   'application/json; charset=utf-8', extra)

    def _error(self, status, message, **extra):
        self._json(status, {'error': ' '.join(str(message).split()), **extra})

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, unsupported method) as one-line JSON too."""
        try:
            self.close_connection = True
            self._error(code, message or HTTPStatus(code).phrase)
        except OSError:
            pass

    def _host_ok(self):
        host = (self.headers.get('Host') or '').strip().lower()
        return host in self.server.allowed_hosts

    # -- methods --------------------------------------------------------------------------
    def do_GET(self):
        try:
            self._route()
        except ApiError as e:
            self._json(e.status, e.body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # noqa: BLE001 -- keep serving; say what happened in one line
            traceback.print_exc(file=sys.stderr)
            self._error(500, f"internal error: {type(e).__name__}: {e}")

    do_HEAD = do_GET

    def _not_allowed(self):
        self._send(405, json.dumps({'error': f"method {self.command} is not allowed; use GET"}).encode(),
                   'application/json; charset=utf-8', {'Allow': 'GET, HEAD'})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _route(self):
        if not self._host_ok():
            self._error(403, f"Host header {self.headers.get('Host')!r} is not the address this server "
                             f"serves ({self.server.allowed_hosts[0]})")
            return
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        if path.startswith('/api/'):
            if self.headers.get('Sec-Fetch-Site') == 'cross-site':
                self._error(403, "cross-site requests to the API are refused")
                return
            self._api(path, query)
            return
        asset = self.server.assets.get(path)
        if asset is None:
            self._error(404, f"no such page {path[:100]!r}")
            return
        self._send(200, asset[0], asset[1])

    def _api(self, path, query):
        api = self.server.api
        if len(query) > 4000:
            raise ApiError(400, "query string longer than 4000 characters")
        if path == '/api/view':
            v = api.view(query)
            # whether the server's LRU answered (the benchmark reads it to prove a cached sample)
            self._json(200, v, {'X-View-Cache': 'hit' if v['cached'] else 'miss'})
        elif path == '/api/info':
            self._json(200, api.info(query))
        elif path == '/api/node':
            self._json(200, api.node(query))
        elif path == '/api/frames':
            self._json(200, api.frames(query))
        elif path == '/api/update':
            self._json(200, api.update(query))
        elif path == '/api/suggest':
            self._json(200, api.suggest(query))
        elif path == '/api/search':
            self._json(200, api.search(query))
        elif path == '/api/export':
            data, ctype, name = api.export(query)
            self._send(200, data, ctype, {'Content-Disposition': f'attachment; filename="{name}"'})
        else:
            self._error(404, f"no API endpoint {path[:100]!r}; endpoints: /api/view, /api/info, /api/node, "
                             f"/api/search, /api/suggest, /api/frames, /api/update, /api/export")


class ExplorerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, api, verbose=False):
        super().__init__(address, Handler)
        self.api = api
        self.verbose = verbose
        self.assets = _assets()
        host, port = self.server_address[:2]
        names = {host, 'localhost', '127.0.0.1'} if host in ('127.0.0.1', 'localhost') else {host}
        if host in ('0.0.0.0', '::'):
            import socket
            names |= {'127.0.0.1', 'localhost', socket.gethostname().lower()}
        # the served address first: it is the one named in the 403 message
        first = f'{host}:{port}'
        self.allowed_hosts = [first] + sorted({f'{h.lower()}:{port}' for h in names} - {first})

    @property
    def url(self):
        host, port = self.server_address[:2]
        shown = '127.0.0.1' if host in ('0.0.0.0', '::') else host
        return f'http://{shown}:{port}/'

    def handle_error(self, request, client_address):
        # a client that went away mid-answer is not worth a traceback
        exc = sys.exc_info()[1]
        if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def make_server(*, doc=DEFAULT_DOC, checkpoint=None, seed=SEED, trace=None, data=None, host='127.0.0.1', port=0,
                renderer='auto', verbose=False):
    """An ExplorerServer ready to serve_forever() (port 0: a free port; see .url).

    The first recording and its first view are made here, so a bad doc or checkpoint
    fails before the server starts (StateError, a one-line message). `data`: the names
    file, for comparing with the model after N training steps."""
    recordings = Recordings(doc=doc, checkpoint=checkpoint, seed=seed, trace=trace, data=data)
    recordings.get(recordings.key({}))
    api = Api(recordings, renderer=renderer)
    # draw the first view now: it lands in the cache, and the WebAssembly Graphviz (when
    # used) is compiled here, once per process, instead of during the first page load
    api.view('')
    return ExplorerServer((host, port), api, verbose=verbose)


def serve(*, doc=DEFAULT_DOC, checkpoint=None, seed=SEED, trace=None, data=None, host='127.0.0.1', port=0,
          renderer='auto', open_browser=True, verbose=False, echo=print):
    """Record the step, serve the explorer until Ctrl-C, then return (no traceback)."""
    if host not in ('127.0.0.1', 'localhost'):
        print(f"warning: serving on {host}: anyone who can reach this address can use the explorer "
              f"and read files the server can read as checkpoints", file=sys.stderr)
    server = make_server(doc=doc, checkpoint=checkpoint, seed=seed, trace=trace, data=data, host=host, port=port,
                         renderer=renderer, verbose=verbose)
    try:
        echo(f"microgpt-graph explorer: {server.url}  (Ctrl-C stops it)")
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        server.server_close()
