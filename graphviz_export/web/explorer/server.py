"""The explorer's HTTP server: the standard library's ThreadingHTTPServer, bound to 127.0.0.1.

Why the standard library: the server answers one local user with a handful of
GET endpoints, and the expensive part (fold + Graphviz layout) is ours either
way; http.server does that with no new dependency to install, pin or audit.

Hardening (every check runs before a method is dispatched; a refused request is
answered with one line of JSON and its connection closed):
- binds 127.0.0.1 unless a host is given (serve() warns then; an empty host, which
  would bind every interface without saying so, is refused);
- refuses a request whose Host header is not the address served (DNS rebinding);
- the API answers only the explorer's own page and opens only the checkpoints the
  user offered (access.py: a per-server token, Sec-Fetch-Site/Origin same-origin);
- only GET and HEAD are served. A request with a body (Content-Length or chunked)
  has its body read and discarded (at most MAX_BODY bytes; a larger one is not
  read) and its connection closed after the answer, so a body is never parsed as
  a second request (request smuggling from a cross-site form or no-cors fetch);
- per-connection deadlines, however slowly the bytes trickle in: a request's line
  and headers within HEAD_TIMEOUT of the connection waiting for them (an idle
  keep-alive connection closes then too), a body within BODY_TIMEOUT, an answer
  sent within WRITE_TIMEOUT; so a slow or half-open client holds its thread for
  seconds, not forever (benchmarks/bench_explorer_slow_clients.py has the figures);
- static files come from a fixed list read from the package's asset folder at
  start, so a path can never reach outside it (no path joining of user input);
- every API parameter is validated (state.py); a bad one gets HTTP 400 with a
  one-line JSON {"error": ...}; an unexpected exception gets 500 with one line
  (the traceback goes to stderr) and the server keeps serving;
- Ctrl-C closes the socket and returns, no traceback.
"""

import io
import socket
import sys
import threading
import time
import traceback
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from microgpt.errors import InputError
from microgpt.recording import DEFAULT_DOC, SEED
from microgpt.recording.budget import DEFAULT_MAX_NODES
from microgpt.recording.madeby import made_by
from microgpt.recording.play import ScriptCalls

from ...render import RenderError, renderer_for
from ...render.wasm import interrupt as stop_layouts
from .access import Checkpoints, api_refusal, new_token
from .api import Api, ApiError, json_answer
from .assets import assets
from .cache import give_back
from .recordings import STORE, Recordings

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
HEAD_TIMEOUT = 5.0      # s: a request's line and headers, from when the connection waits for them
BODY_TIMEOUT = 5.0      # s: reading (and discarding) a request's body
WRITE_TIMEOUT = 30.0    # s: sending one answer
MAX_BODY = 1 << 20      # bytes of a body read to discard it; a larger one is not read (413)
MAX_QUERY = 4000        # characters of an API query string
OPEN_TOLD = 5.0         # s: a failed opening of a saved trace waits this long for a page to be told (serve)
OPEN_LINGER = 1.0       # s: and serves this much longer once told
FIRST_VIEW = 'drawing the first view'   # the last phase of opening a saved trace (make_server)
BIG_ANSWER = 1 << 20    # bytes of an API answer after which the C heap's free pages go back (cache.give_back)
LINGER = 0.5            # s: reading what a client still sends after the server stopped writing


class _Reads(io.RawIOBase):
    """A connection's reads against a deadline: each recv waits at most what is left of it,
    so a client sending a byte a second cannot stretch a request past the deadline (a
    per-recv socket timeout alone would restart at every byte)."""

    def __init__(self, sock, write_timeout):
        self.sock = sock
        self.write_timeout = write_timeout
        self.deadline = None    # time.monotonic() by which the read must end; None: no read expected
        self.got = 0            # bytes received since the deadline was set
        self.what = ''          # what is being read, and its limit: "head ... within 5 s"

    def readable(self):
        return True

    def expect(self, what, seconds):
        self.deadline = time.monotonic() + seconds
        self.got = 0
        self.what = f"the request's {what} did not arrive within {seconds:g} s"

    def readinto(self, buf):
        left = 0.0 if self.deadline is None else self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('the request did not arrive in time')
        self.sock.settimeout(left)
        try:
            n = self.sock.recv_into(buf)
        finally:
            self.sock.settimeout(self.write_timeout)    # an answer's writes have their own limit
        self.got += n
        return n


class Handler(BaseHTTPRequestHandler):
    server_version = 'microgpt-graph-explorer'
    sys_version = ''
    protocol_version = 'HTTP/1.1'

    # -- plumbing ---------------------------------------------------------------------
    def setup(self):
        super().setup()
        self.connection.settimeout(self.server.write_timeout)
        self.rfile.close()      # the socket file StreamRequestHandler made: replaced by reads with a deadline
        self._reads = _Reads(self.connection, self.server.write_timeout)
        self.rfile = io.BufferedReader(self._reads)

    def log_message(self, fmt, *args):          # quiet unless asked
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status, body, ctype, extra=None):
        if self.request_version == 'HTTP/0.9':     # (also a request line too bad to tell): a status line all the same
            self.request_version = 'HTTP/1.1'
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('X-Content-Type-Options', 'nosniff')
        self.send_header('Cache-Control', 'no-store')
        self.send_header('Content-Security-Policy', CSP)
        if self.close_connection:
            self.send_header('Connection', 'close')
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def _json(self, status, obj, extra=None):
        _, body, ctype, _ = json_answer(status, obj)
        self._send(status, body, ctype, extra)

    def _error(self, status, message, extra=None):
        self._json(status, {'error': ' '.join(str(message).split())}, extra)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, too many headers) as one-line JSON too."""
        try:
            self.close_connection = True
            self._error(code, message or HTTPStatus(code).phrase)
        except OSError:
            pass

    # -- one request: read it within the deadline, check it, then answer ------------------------
    def handle_one_request(self):
        """BaseHTTPRequestHandler's, with deadlines, and every check before the method is dispatched."""
        self.command, self.request_version, self.requestline = '', 'HTTP/1.1', ''
        reads = self._reads
        reads.expect('head', self.server.head_timeout)
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            refused = self._refusal()
            if refused is not None:
                self.close_connection = True
                self._error(*refused)
                return
            reads.deadline = None
            self._answer()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
            if reads.deadline is not None and reads.got:    # a request began and stalled; an idle one just closes
                self.connection.settimeout(1.0)
                self.send_error(408, reads.what)
        except ConnectionError:                             # the client went away mid-request
            self.close_connection = True

    def _refusal(self):
        """(status, message, headers) of a request refused before dispatch, else None."""
        refused = self._discard_body()
        if refused is not None:
            return refused
        if self.command not in ('GET', 'HEAD'):
            return 405, f"method {self.command[:20]} is not allowed; use GET", {'Allow': 'GET, HEAD'}
        host = (self.headers.get('Host') or '').strip().lower()
        if host not in self.server.allowed_hosts:
            return 403, (f"Host header {self.headers.get('Host')!r} is not the address this server "
                         f"serves ({self.server.allowed_hosts[0]})"), None
        parts = urlsplit(self.path)
        if parts.path.startswith('/api/'):
            if len(parts.query) > MAX_QUERY:
                return 400, f"query string longer than {MAX_QUERY} characters", None
            refused = api_refusal(self.headers, parts.query, token=self.server.token, origins=self.server.origins)
            if refused is not None:
                return (*refused, None)
        return None

    def _discard_body(self):
        """Read and drop a request's body (the explorer takes none). Any body closes the
        connection after the answer, so nothing after it is ever read as a request.
        Returns (status, message, headers) when the body itself refuses the request."""
        lengths = self.headers.get_all('Content-Length') or []
        codings = self.headers.get_all('Transfer-Encoding') or []
        if not codings and all(v.strip() == '0' for v in lengths):
            if lengths and self.command not in ('GET', 'HEAD'):
                self.close_connection = True
            return None
        self.close_connection = True
        if lengths and codings:
            return 400, "a request with both Content-Length and Transfer-Encoding is refused", None
        self._reads.expect('body', self.server.body_timeout)
        if codings:
            if [c.strip().lower() for c in codings] != ['chunked']:
                return 400, f"Transfer-Encoding {', '.join(codings)[:60]!r} is not chunked", None
            refused = self._drop_chunked()
            if refused is not None:
                return refused
        else:
            value = lengths[0].strip()
            if len({v.strip() for v in lengths}) != 1 or not (value.isascii() and value.isdigit()):
                return 400, f"Content-Length {', '.join(lengths)[:60]!r} is not one whole number", None
            if len(value) > 18 or int(value) > MAX_BODY:     # (int() of 5000 digits raises)
                return 413, f"a body of {value[:20]} bytes is over {MAX_BODY} bytes (the explorer takes none)", None
            self._drop(int(value))
        if self.command in ('GET', 'HEAD'):
            return 400, f"a {self.command} request has no body", None
        return None

    def _drop(self, n):
        while n > 0:
            got = self.rfile.read(min(n, 65536))
            if not got:
                raise ConnectionResetError('the body ended early')
            n -= len(got)

    def _drop_chunked(self):
        total = 0
        while True:
            line = self.rfile.readline(1026)
            size = line.split(b';', 1)[0].strip()
            try:
                n = int(size, 16)
            except ValueError:
                return 400, f"chunk size {size[:20]!r} is not hexadecimal", None
            total += n
            if total > MAX_BODY:
                return 413, f"a chunked body over {MAX_BODY} bytes (the explorer takes none)", None
            if n == 0:
                break
            self._drop(n + 2)       # the chunk and its CRLF
        for _ in range(100):        # trailer fields, up to the empty line
            if self.rfile.readline(8194) in (b'\r\n', b'\n', b''):
                return None
        return 400, "more than 100 trailer fields", None

    def _answer(self):
        try:
            self._route()
        except ApiError as e:
            self._json(e.status, e.body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 -- keep serving; say what happened in one line
            traceback.print_exc(file=sys.stderr)
            self._error(500, f"internal error: {type(e).__name__}: {e}")

    def _route(self):
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        if path.startswith('/api/'):
            try:
                rewritten = self.server.checkpoints.rewrite(query)
            except ApiError as e:     # a link naming a checkpoint not offered: still the nearest view that draws
                if path == '/api/view':
                    e.body.update(self.server.api.nearest(self.server.checkpoints.rewrite(query, drop=True),
                                                          e.body['error']))
                raise
            self._api(path, rewritten)
            return
        asset = self.server.assets.get(path)
        if asset is None:
            self._error(404, f"no such page {path[:100]!r}")
            return
        self._send(200, asset[0], asset[1])

    def _api(self, path, query):
        """Api.answer (the notebook widget asks it too), sent as HTTP."""
        status, body, ctype, headers = self.server.api.answer(path[len('/api/'):], query)
        self._send(status, body, ctype, headers)
        self.server.api.views.settle()      # a view drawn for it measured now, its answer sent
        if len(body) > BIG_ANSWER:  # a view's SVG in JSON, its export: what making it freed goes back (cache.py)
            del body
            give_back()


class ExplorerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128    # the listen backlog (socketserver's 5 drops connections under a burst)
    # per connection (see the module docstring); a test or benchmark may set them on an instance
    head_timeout, body_timeout, write_timeout = HEAD_TIMEOUT, BODY_TIMEOUT, WRITE_TIMEOUT

    def __init__(self, address, api, verbose=False, checkpoints=None):
        super().__init__(address, Handler)
        self.api = api
        self.verbose = verbose
        self.assets = assets()
        self.token = new_token()
        self.checkpoints = checkpoints if checkpoints is not None else Checkpoints()
        host, port = self.server_address[:2]
        names = {host, 'localhost', '127.0.0.1'} if host in ('127.0.0.1', 'localhost') else {host}
        if host in ('0.0.0.0', '::'):
            names |= {'127.0.0.1', 'localhost', socket.gethostname().lower()}
        # the served address first: it is the one named in the 403 message
        first = f'{host}:{port}'
        self.allowed_hosts = [first] + sorted({f'{h.lower()}:{port}' for h in names} - {first})
        self.origins = [f'http://{h}' for h in self.allowed_hosts]

    @property
    def origin(self):
        host, port = self.server_address[:2]
        shown = '127.0.0.1' if host in ('0.0.0.0', '::') else host
        return f'http://{shown}:{port}'

    def link(self, query=''):
        """The page's URL for a view state (a query string), with this server's token in its fragment."""
        return f"{self.origin}/{'?' + query if query else ''}#token={self.token}"

    @property
    def url(self):
        """The URL to open: the page, its token in the fragment (see access.py)."""
        return self.link()

    def shutdown_request(self, request):
        """Close as a lingering close does: stop writing, then read (for LINGER s at most) what
        the client still sends, so unread bytes (a refused body, a smuggled request) do not make
        the kernel answer with a reset that can destroy the answer just sent."""
        try:
            request.shutdown(socket.SHUT_WR)
            end = time.monotonic() + LINGER
            for _ in range(64):
                left = end - time.monotonic()
                if left <= 0:
                    break
                request.settimeout(left)
                if not request.recv(65536):
                    break
        except OSError:
            pass
        self.close_request(request)

    def handle_error(self, request, client_address):
        # a client that went away mid-answer is not worth a traceback
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def make_server(*, doc=DEFAULT_DOC, checkpoint=None, seed=SEED, trace=None, data=None, host='127.0.0.1', port=0,
                renderer='auto', verbose=False, checkpoints=(), max_nodes=DEFAULT_MAX_NODES, check=None,
                faults=None, calls=(), cache=True, tell=None, note=None, opening=None, wait=True):
    """An ExplorerServer ready to serve_forever() (port 0: a free port; see .url).

    The first recording and its first view are made here, so a bad doc or checkpoint
    fails before the server starts (StateError, a one-line message); with wait=False only
    those checks are (Recordings.check): the recording and its first view are a job in the
    background (Recordings.open: a big model's step takes a minute; its progress is the
    job's, shown in the page, and told to `tell`), the server returned at once, `.opening`
    the job. `opening`: (what, load(progress) -> Trace), a saved trace, opened so too. `data`: the names
    file, for comparing with the model after N training steps. `checkpoints`: more
    checkpoint files, or folders of them, the page may open or compare with (besides
    `checkpoint`); the page can open no other path. `max_nodes`: a step estimated above
    this many nodes is refused (the first one here, the page's with a 400), as `render
    --max-nodes` refuses it. `check`: trace -> the node check as data
    (microgpt.checks.diagnose.node_check_data), run on each recording in the background
    and shown in the page (verdicts.py); None: no check. `faults`: the fault registry the
    backprop lab offers (lab=FAULT; microgpt.checks.faults, which the CLI passes: plays.py).
    `calls`: more recorded backward() calls of the script whose first call is `trace`,
    played with train=k. `cache`: steps read from and stored in the user cache (stepcache;
    False: --no-cache); `tell(phase, done, total)`: every recording's progress (the terminal's
    Phases); `note(text)`: what to say of a recording (a step reused from the cache)."""
    if not host.strip():
        raise InputError(f"host {host!r} would bind every network interface; give 127.0.0.1 (the default), "
                         f"or 0.0.0.0 to be reachable from other machines")
    renderer_for('svg', renderer)      # a renderer that is not installed: refused before any work
    recordings = Recordings(doc=doc, checkpoint=checkpoint, seed=seed, trace=trace, data=data, max_nodes=max_nodes,
                            cache=cache, tell=tell, note=note)
    script = ScriptCalls([trace, *calls]) if calls else None
    api = Api(recordings, renderer=renderer, check=check, faults=faults, script=script)
    if opening is not None:
        what, load = opening
        recordings.open(what, lambda progress: _first_view(api, progress), load)
    elif trace is None and not wait:
        key = recordings.key({})
        recordings.check(key)
        recordings.open(f"recording {key[0][:40]!r}", lambda progress: _first_view(api, progress))
    else:
        recordings.get(recordings.key({}))
        if trace is not None:       # "made by" replays a loaded step's forward pass: now, before any thread
            made_by(trace, trace.meta.get('loss_id', 0))
        _first_view(api)
    server = ExplorerServer((host, port), api, verbose=verbose, checkpoints=Checkpoints([checkpoint, *checkpoints]))
    server.opening = recordings.opening
    return server


def _first_view(api, progress=None):
    """Draw the first view now: it lands in the cache, and the WebAssembly Graphviz (when used)
    is compiled here, once per process, instead of during the first page load. It failing is
    the command's error, in one line: bad input (4xx) or a failed drawing."""
    if progress is not None:
        progress(FIRST_VIEW, 0, 1)
    try:
        api.view('')
    except ApiError as e:
        raise (InputError if e.status < 500 else RenderError)(
            f"the explorer's first view could not be drawn: {e.body['error']}") from None
    if progress is not None:
        progress(FIRST_VIEW, 1, 1)


def serve(*, doc=DEFAULT_DOC, checkpoint=None, seed=SEED, trace=None, data=None, host='127.0.0.1', port=0,
          renderer='auto', open_browser=True, verbose=False, echo=print, checkpoints=(), max_nodes=DEFAULT_MAX_NODES,
          check=None, faults=None, calls=(), cache=True, tell=None, note=None, opening=None):
    """Serve the explorer at once, the step recorded (or the saved trace opened: `opening`) in
    the background (make_server, wait=False), until Ctrl-C, then return (no traceback).

    A step that fails to open raises its error (the command's one line, exit status
    non-zero, as when the load ran before serving): nothing can be shown without it, and a
    script running `explore` must see it fail. A page already watching the load is told first
    (its answers say what failed: the page shows that line), within OPEN_TOLD seconds."""
    if host.strip() and host not in ('127.0.0.1', 'localhost'):
        print(f"warning: serving on {host}: anyone who can reach this address and has the URL below "
              f"(its token) can use the explorer", file=sys.stderr)
    server = make_server(doc=doc, checkpoint=checkpoint, seed=seed, trace=trace, data=data, host=host, port=port,
                         renderer=renderer, verbose=verbose, checkpoints=checkpoints, max_nodes=max_nodes,
                         check=check, faults=faults, calls=calls, cache=cache, tell=tell, note=note, opening=opening,
                         wait=False)
    if server.opening is not None:
        threading.Thread(target=_stop_if_not_opened, args=(server, open_browser), daemon=True).start()
    try:
        echo(f"microgpt-graph explorer: {server.url}  (Ctrl-C stops it)")
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        echo("stopped")
        if server.api.work.running(STORE):      # Recordings.drawn: the file is written atomically, or not at all
            print("the step being stored in the user cache was not kept (stopped before the store ended); "
                  "the next start records it again", file=sys.stderr)
    finally:
        server.server_close()
        server.api.recordings.close()   # a step's store in a process of its own (recording.apart): not kept
        stop_layouts()      # a WebAssembly layout still running for a request: nobody will read it
    if server.opening is not None and server.opening.error is not None:
        raise server.opening.error


def _stop_if_not_opened(server, page):
    """Once the saved trace's opening ends in an error: stop serving (serve raises it), once a
    page that asked during the load has been answered with it (`page`: a browser was opened
    on it, which may be asking soon), OPEN_TOLD seconds at most."""
    job, recordings = server.opening, server.api.recordings
    job.done.wait()
    if job.error is None:
        return
    if (page or recordings.met.is_set()) and recordings.told.wait(OPEN_TOLD):
        time.sleep(OPEN_LINGER)     # the page's own files still on their way are served before the socket closes
    server.shutdown()
