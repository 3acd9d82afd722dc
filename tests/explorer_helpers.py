"""A live explorer server for tests: started on 127.0.0.1 (a free port) in a thread, stopped after."""

import contextlib
import http.client
import json
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


def get(server, path, headers=None, method='GET'):
    """(status, headers, body bytes) of one raw request (the path is sent as is)."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        hdrs = {'Host': f'{host}:{port}', **(headers or {})}
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
