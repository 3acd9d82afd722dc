"""A live explorer server for tests: started on 127.0.0.1 (a free port) in a thread, stopped after;
and for tests that start a command as a process: its signals as a terminal gives them, and a
`finally` that leaves nothing of it running, and what it wrote to a terminal (a pty)."""

import contextlib
import http.client
import json
import os
import threading

from graphviz_export.web.explorer import make_server


@contextlib.contextmanager
def running_server(**kwargs):
    server = make_server(**kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get(server, path, headers=None, method='GET', token=True, timeout=30):
    """(status, headers, body bytes) of one raw request (the path is sent as is). The server's
    token goes in the X-Explorer-Token header, as the page sends it, unless token=False; `timeout`:
    seconds the socket waits for the answer."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        hdrs = {'Host': f'{host}:{port}', **({'X-Explorer-Token': server.token} if token else {}), **(headers or {})}
        for k, v in hdrs.items():
            if v is not None:
                conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def get_json(server, path, **kw):
    status, _headers, body = get(server, path, **kw)
    return status, json.loads(body)


def opened(url, timeout=600):
    """Seconds until the `explore` process serving `url` (the line it printed: ...#token=...) has
    opened its first step: it serves at once and records (or loads) that step in the background,
    views answering 503 meanwhile (Recordings.open); /api/progress lists that job (kind 'open')
    until its first view is drawn."""
    import time
    import urllib.request
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    req = urllib.request.Request(f'{parts.scheme}://{parts.netloc}/api/progress',
                                 headers={'X-Explorer-Token': parts.fragment[len('token='):]})
    t0 = time.monotonic()
    while True:
        with urllib.request.urlopen(req, timeout=60) as r:
            work = json.loads(r.read())['work']
        if not any(job['kind'] == 'open' for job in work):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"the explorer did not open its first step within {timeout} s: {work}")
        time.sleep(0.05)


def default_signals():
    """preexec_fn: SIGINT, SIGHUP, SIGTERM and SIGQUIT back to their default actions in the child,
    whatever pytest was started with: a shell running it in the background ignores SIGINT, `nohup`
    ignores SIGHUP, and a child inherits an ignored signal (so a test's Ctrl-C or hang-up would not
    reach it, and its server would outlive the test)."""
    import signal
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def read_to_the_end(master):
    """All that is left to read from a pty's master end, once the process on its other end
    has ended (or closed it): what a terminal would have shown."""
    seen = b''
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:     # EIO: the child's end is closed and everything was read
            return seen
        if not chunk:
            return seen
        seen += chunk


@contextlib.contextmanager
def stopped_in_the_end(proc, grace=20):
    """Yield proc; in the end Ctrl-C it (SIGINT) and wait `grace` s; whatever is still running of
    its process group then is SIGKILLed, so no server outlives its test."""
    import os
    import signal
    import subprocess
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.out, proc.err = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.out, proc.err = proc.communicate()
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)     # started with start_new_session: its group is its pid
            except (ProcessLookupError, PermissionError):
                pass


def held_at_quiet(monkeypatch, work, kind=None):
    """(held, gate): a background job (of `kind`; any when None) held at its first Work.quiet, `held` set
    once it is there, going on once the test sets `gate`."""
    held, gate, real_quiet = threading.Event(), threading.Event(), work.quiet

    def quiet():
        if kind is None or work.running(kind):
            held.set()
            assert gate.wait(60)
        real_quiet()
    monkeypatch.setattr(work, 'quiet', quiet)
    return held, gate
