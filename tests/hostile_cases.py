"""Issue 21's hostile cases against the explorer's HTTP server, in one place: the lists of cases and
the check of one case, used by the tests (tests/test_explorer_access.py, test_hardening_fuzz.py) and
by the harness that runs every class of them and prints its counts (benchmarks/bench_hostile.py).

A check raises Unclean (an AssertionError: a failed test in pytest) saying which way the case was
unclean: 'traceback' (a 500: the server printed a traceback), 'side effect' (the server recorded,
loaded, trained or drew something the request must not cause) or 'answer' (another status than
the one expected, not one line of JSON, a connection left open)."""

import contextlib
import json
import re
import socket
from urllib.parse import quote

from microgpt.checkpoint import save_checkpoint
from microgpt.train import fresh_model
from tests.explorer_helpers import get, running_server

ENDPOINTS = ('/api/view', '/api/info', '/api/node?id=1', '/api/search?q=pos:1', '/api/suggest?q=a', '/api/frames',
             '/api/update', '/api/export?fmt=svg', '/api/record?doc=olivia', '/api/nothing')

# the free texts a user or a link can type, as the command line's fuzz sends them (test_hardening_fuzz.py)
HOSTILE_TEXT = ['', ' ', 'nan', 'inf', '-inf', '-1', '0', '1e400', '1' + '0' * 400, '²', '٣', '\x1b[31m',
                'a\x00b', '\ufffe', '\uffff', 'x' * 300, '../..', '/', '-', '--', 'loss', 'wte', 'wte[0][0]',
                'wte[99][0]', "layer0.attn_wq[3][5]", 'pos1/*', '*', '[', 'emma', 'ab', 'é']


class Unclean(AssertionError):
    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def expect(ok, kind, message):
    if not ok:
        raise Unclean(kind, message)


def offered_files(root):
    """In folder `root`: (a checkpoint a server offers, a folder of checkpoints it offers, one it does
    not offer); a hidden checkpoint in the folder, and names.txt beside them."""
    folder = root / 'runs'
    folder.mkdir()
    params, config, tok = fresh_model(7)
    for path in (root / 'start.json', folder / 'later.json', root / 'secret.json', folder / '.hidden.json'):
        save_checkpoint(path, params, config, tok)
    (root / 'names.txt').write_text('emma\nolivia\nava\nisabella\nsophia\nmia\nabcdefghijklmnopqrstuvwxyz\n')
    return root / 'start.json', folder, root / 'secret.json'


@contextlib.contextmanager
def hostile_server(offered):
    """The explorer the cases attack: on 127.0.0.1, offering offered_files' start.json and runs/."""
    start, folder, _ = offered
    with running_server(doc='emma', checkpoints=[str(start), str(folder)], data=str(folder.parent / 'names.txt')) as s:
        yield s


def done(server):
    """What the server has recorded, loaded, trained and drawn so far: its caches' keys."""
    r = server.api.recordings
    return list(r._traces), list(r._models), list(r._compares), list(server.api.views)


def raw(server, data, *, chunks=None, timeout=10):
    """Send bytes on one connection and read until the server closes it: (answer bytes, closed)."""
    s = socket.create_connection(server.server_address[:2], timeout=timeout)
    try:
        for part in chunks or [data]:
            s.sendall(part)
        got = b''
        while True:
            try:
                part = s.recv(65536)
            except TimeoutError:
                return got, False
            except ConnectionResetError:
                return got, True
            if not part:
                return got, True
            got += part
    finally:
        s.close()


def statuses(answer):
    """The status of each answer in a stream of answers, read in turn by their Content-Length."""
    out = []
    while answer.startswith(b'HTTP/1.'):
        head, _, rest = answer.partition(b'\r\n\r\n')
        out.append(int(head[9:12]))
        length = re.search(rb'\r\ncontent-length: *(\d+)', head, re.I)
        answer = rest[int(length.group(1)) if length else 0:]     # (an answer to HEAD is the last one here)
    return out


def one_line_json(answer, head=True):
    """The error of an answer (its head and body, or its body alone): one line of JSON."""
    body = answer
    if head:
        head, _, body = answer.partition(b'\r\n\r\n')
        expect(b'application/json' in head, 'answer', f"not JSON: {head[:200]!r}")
    text = body.decode('utf-8')
    expect('\n' not in text.strip(), 'answer', f"more than one line: {text[:200]!r}")
    got = json.loads(text)
    expect(list(got) == ['error'] and got['error'], 'answer', f"not one error: {text[:200]!r}")
    return got['error']


def request(server, path, token=True):
    port = server.server_address[1]
    auth = f'X-Explorer-Token: {server.token}\r\n' if token else ''
    return f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n'.encode()


# -- a request hidden in a body -----------------------------------------------------------------------
def framings(port, inner):
    host = f'Host: 127.0.0.1:{port}\r\n'
    chunked = b'%x\r\n' % len(inner) + inner + b'\r\n0\r\n\r\n'
    return {
        'POST Content-Length': f'POST /api/view HTTP/1.1\r\n{host}Content-Length: {len(inner)}\r\n\r\n'.encode() + inner,
        'GET with a body': f'GET /api/view HTTP/1.1\r\n{host}Content-Length: {len(inner)}\r\n\r\n'.encode() + inner,
        'HEAD with a body': f'HEAD / HTTP/1.1\r\n{host}Content-Length: {len(inner)}\r\n\r\n'.encode() + inner,
        'POST chunked': f'POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n'.encode() + chunked,
        'GET chunked': f'GET / HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n'.encode() + chunked,
        'PUT': f'PUT /api/view HTTP/1.1\r\n{host}Content-Length: {len(inner)}\r\n\r\n'.encode() + inner,
        'OPTIONS': f'OPTIONS /api/view HTTP/1.1\r\n{host}Content-Length: {len(inner)}\r\n\r\n'.encode() + inner,
        'DELETE': f'DELETE /api/view HTTP/1.1\r\n{host}Content-Length: {len(inner)}\r\n\r\n'.encode() + inner,
        'form text/plain': (f'POST /api/view HTTP/1.1\r\n{host}Content-Type: text/plain\r\nOrigin: http://evil.test\r\n'
                            f'Content-Length: {len(inner)}\r\n\r\n').encode() + inner,
        'POST Content-Length 0 then bytes': f'POST / HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n'.encode() + inner,
        'POST without a length then bytes': f'POST / HTTP/1.1\r\n{host}\r\n'.encode() + inner,
        'CL.TE': (f'POST / HTTP/1.1\r\n{host}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
                  .encode() + inner),
        'TE.CL': (f'POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n'
                  .encode() + chunked),
        'two Content-Lengths': (f'POST / HTTP/1.1\r\n{host}Content-Length: 0\r\nContent-Length: {len(inner)}\r\n\r\n'
                                .encode() + inner),
        'Content-Length +N': f'GET / HTTP/1.1\r\n{host}Content-Length: +{len(inner)}\r\n\r\n'.encode() + inner,
        'Content-Length hex': f'GET / HTTP/1.1\r\n{host}Content-Length: 0x{len(inner):x}\r\n\r\n'.encode() + inner,
        'Transfer-Encoding gzip, chunked': (f'POST / HTTP/1.1\r\n{host}Transfer-Encoding: gzip, chunked\r\n\r\n'
                                            .encode() + chunked),
        'Expect 100-continue': (f'POST /api/view HTTP/1.1\r\n{host}Expect: 100-continue\r\n'
                                f'Content-Length: {len(inner)}\r\n\r\n').encode() + inner,
        'HTTP/1.0 POST keep-alive': (f'POST / HTTP/1.0\r\n{host}Connection: keep-alive\r\n'
                                     f'Content-Length: {len(inner)}\r\n\r\n').encode() + inner,
        'oversized body': f'POST / HTTP/1.1\r\n{host}Content-Length: {10 ** 9}\r\n\r\n'.encode() + inner,
    }


# what a hidden request would make the server do; DOC: a document of its own per case, so each
# would be new work (the control shows it is)
SMUGGLED = {'record a document': 'doc=DOC', 'open a checkpoint': 'doc=DOC&ckpt=later.json',
            'train': 'doc=DOC&cmp=steps:1', 'draw the whole document': 'doc=DOC&view=doc'}
FRAMINGS = list(framings(0, b''))


def unique_doc(*keys):
    n = 1 + FRAMINGS.index(keys[0]) * len(SMUGGLED) + list(SMUGGLED).index(keys[1])
    letters = ''
    while n:
        n, r = divmod(n, 26)
        letters += chr(ord('a') + r)
    return 'q' + letters


# every framing hides a request that records; the other effects ride on the framings a browser can send
SMUGGLING = [(f, 'record a document') for f in FRAMINGS] + [
    (f, e) for e in list(SMUGGLED)[1:] for f in ('POST Content-Length', 'form text/plain', 'POST chunked', 'CL.TE')]


def smuggle(server, framing, effect):
    """One request hidden in a body (it carries the real token: were it parsed, it would be served):
    one refusal, the connection closed, nothing done; then the same request sent on its own does it
    (the control: the case would have shown a side effect). Needs a server offering later.json."""
    inner = request(server, '/api/view?' + SMUGGLED[effect].replace('DOC', unique_doc(framing, effect)))
    before = done(server)
    answer, closed = raw(server, framings(server.server_address[1], inner)[framing])
    got = statuses(answer)
    expect(500 not in got, 'traceback', f"{framing}: {answer[:200]!r}")
    expect(done(server) == before, 'side effect', f"{framing} hiding {effect!r}: the server did it")
    expect(closed, 'answer', f"the connection was left open after {answer[:200]!r}")
    expect(len([s for s in got if s != 100]) == 1 and got[-1] in (400, 405, 413), 'answer', answer[:300])
    if not framing.startswith('HEAD'):         # an answer to HEAD has no body
        one_line_json(answer[answer.rfind(b'HTTP/1.'):])
    answer, _ = raw(server, inner.replace(b'\r\n\r\n', b'\r\nConnection: close\r\n\r\n'))
    expect(statuses(answer) == [200] and done(server) != before, 'answer',
           f"the control did not do {effect!r}: {answer[:200]!r}")


# -- only the explorer's own page ---------------------------------------------------------------------
FOREIGN = [
    ('no token', {}, 'has no explorer token'),
    ('no token, same-origin', {'Sec-Fetch-Site': 'same-origin'}, 'has no explorer token'),
    ('a wrong token', {'X-Explorer-Token': 'guessed'}, "is not this server's"),
    ('a wrong api_token', {'?': 'api_token=guessed'}, "is not this server's"),
    ('same-site (another port of 127.0.0.1)', {'Sec-Fetch-Site': 'same-site', 'token': 1}, 'Sec-Fetch-Site: same-site'),
    ('cross-site', {'Sec-Fetch-Site': 'cross-site', 'token': 1}, 'Sec-Fetch-Site: cross-site'),
    ('typed into the address bar', {'Sec-Fetch-Site': 'none', 'token': 1}, 'Sec-Fetch-Site: none'),
    ('Origin: another port', {'Origin': 'http://127.0.0.1:1', 'token': 1}, "Origin 'http://127.0.0.1:1'"),
    ('Origin: null', {'Origin': 'null', 'token': 1}, "Origin 'null'"),
    ('Origin: another site', {'Origin': 'http://evil.test', 'token': 1}, "Origin 'http://evil.test'"),
]


def foreign(server, endpoint, case, headers, words):
    """A request from anything but the explorer's own page: 403 with one line naming why, nothing done."""
    headers = dict(headers)
    with_token = headers.pop('token', None)
    query = headers.pop('?', None)
    path = endpoint + ('&' if '?' in endpoint else '?') + query if query else endpoint
    before = done(server)
    status, _, body = get(server, path, headers=headers, token=bool(with_token))
    expect(status != 500, 'traceback', f"{case} {endpoint}: {body[:200]!r}")
    expect(done(server) == before, 'side effect', f"{case} {endpoint}: the server did it")
    expect(status == 403 and words in one_line_json(body, head=False), 'answer', f"{case} {endpoint}: {status} {body[:200]!r}")


# -- checkpoints: only those offered, and no existence oracle ---------------------------------------------
HOSTILE_PATHS = ['/etc/shadow', '/etc/passwd', '/nonexistent/file.json', '/proc/self/environ', '/dev/zero',
                 '../start.json', 'runs/../secret.json', '.hidden.json', 'later.json/..', 'a\0b', '~/.ssh/id_rsa',
                 '', '/']
CHECKPOINT_FIELDS = ('ckpt=', 'cmp=ckpt:')
CHECKPOINT_ENDPOINTS = ('/api/view', '/api/info', '/api/update', '/api/node?id=1', '/api/record?doc=olivia')


def unoffered_paths(folder, secret):
    """HOSTILE_PATHS and paths next to those a server offers (start.json and the folder runs/)."""
    return [p for p in HOSTILE_PATHS if p] + [str(secret), str(folder / '.hidden.json'), str(folder / 'missing.json'),
                                              str(folder.parent / 'runs' / '..' / 'secret.json')]


def unoffered(server, endpoint, field, path):
    """A checkpoint path the server does not offer: 400, and the answer with the path taken out (the
    caller checks every path got the same one: no existence oracle); nothing loaded from it."""
    before = done(server)
    sep = '&' if '?' in endpoint else '?'
    status, _, body = get(server, f"{endpoint}{sep}{field}{quote(path, safe='/:')}")
    expect(status != 500, 'traceback', f"{endpoint} {field}{path!r}: {body[:200]!r}")
    after = done(server)
    new = [k for cache, was in zip(after, before) for k in cache if k not in was]
    # at most the server's own recording, drawn as the nearest view a refused link falls back to
    expect(after[1:3] == before[1:3] and not any(len(path) > 2 and path in repr(k) for k in new)
           and all(k[1] is None for k in after[0] if k not in before[0]), 'side effect',
           f"{endpoint} {field}{path!r} loaded {new}")
    expect(status == 400 and b'\n' not in body.strip(), 'answer', f"{endpoint} {field}{path!r}: {status} {body[:200]!r}")
    error = json.loads(body)['error']       # (a view's refusal also names the nearest view: fallback.py)
    expect('is not a checkpoint this server offers' in error, 'answer', error)
    return error.replace(repr(path[:100]), 'PATH')


# -- malformed HTTP ------------------------------------------------------------------------------------
MALFORMED = [
    ('garbage', b'GARBAGE\r\n\r\n', 400),
    ('HTTP/9.9', b'GET / HTTP/9.9\r\nHost: x\r\n\r\n', 505),
    ('HTTP/0.9', b'GET /api/view\r\n\r\n', 403),
    ('no Host', b'GET /api/info HTTP/1.1\r\n\r\n', 403),
    ('a foreign Host', b'GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n', 403),
    ('101 headers', b'GET / HTTP/1.1\r\n' + b'X: y\r\n' * 101 + b'\r\n', 431),
    ('a header line over 64 KiB', b'GET / HTTP/1.1\r\nX: ' + b'y' * 70000 + b'\r\n\r\n', 431),
    ('a request line over 64 KiB', b'GET /' + b'a' * 70000 + b' HTTP/1.1\r\n\r\n', 414),
    ('a method of its own', b'BREW / HTTP/1.1\r\nHost: x\r\n\r\n', 405),
    ('bad chunk size', b'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400),
    ('a length of 5000 digits', b'GET / HTTP/1.1\r\nContent-Length: ' + b'9' * 5000 + b'\r\n\r\n', 413),
    ('a body that never ends', b'POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc', None),
]


def malformed(server, name, data, status):
    """A malformed request (body deadline 1 s): its status with one line of JSON (or 408 or nothing
    for a body that never ends), the connection closed, and the server still answers."""
    server.body_timeout = 1.0
    before = done(server)
    try:
        answer, closed = raw(server, data)
    finally:
        del server.body_timeout
    expect(500 not in statuses(answer), 'traceback', f"{name}: {answer[:200]!r}")
    expect(done(server) == before, 'side effect', name)
    expect(closed, 'answer', f"{name}: the connection was left open")
    if status is None:
        expect(statuses(answer) in ([], [408]), 'answer', f"{name}: {answer[:200]!r}")
    else:
        expect(statuses(answer) == [status], 'answer', f"{name}: {answer[:200]!r}")
        one_line_json(answer)
    expect(get(server, '/api/info')[0] == 200, 'answer', f"{name}: the server stopped answering")


# -- every endpoint x every field x hostile values ------------------------------------------------------
API_ENDPOINTS = ('view', 'info', 'node', 'search', 'suggest', 'frames', 'update', 'check', 'export')   # and below
QUERY_FIELDS = ('doc', 'seed', 'view', 'token', 'layer', 'head', 'param', 'node', 'depth', 'dir', 'function', 'line',
                'level', 'budget', 'ebudget', 'expand', 'grads', 'aspect', 'ov', 'side', 'frame', 'mode', 'present',
                'train', 'tdoc', 'lr', 'lab', 'id', 'q', 'fmt', 'page', 'n', 'op', 'cell')
# a value each field takes at its worst: the free texts, and numbers out of every range
HOSTILE_VALUES = HOSTILE_TEXT + ['2147483648', '-2147483649', '1e308', '0x10', '1_000', '9' * 30, '%00', 'a' * 5000,
                                 'null', 'true', '[]', '{}']


def hostile_value(server, endpoint, field, value):
    """/api/<endpoint>?<field>=<value>: the page's answer (200) or a refusal (4xx with one line of
    JSON naming what is wrong), never a 500; a value that makes no recording of a document it names
    never leaves one behind."""
    status, headers, body = get(server, f"/api/{endpoint}?{field}={quote(value, safe='')}")
    expect(status != 500, 'traceback', f"/api/{endpoint}?{field}={value[:60]!r}: {body[:300]!r}")
    expect(status == 200 or 400 <= status < 500, 'answer', f"{endpoint} {field}={value[:60]!r}: {status}")
    if status != 200:      # one line of JSON saying what is wrong (a view's also names the nearest view)
        expect(b'\n' not in body.strip() and json.loads(body).get('error'), 'answer', f"{endpoint} {field}: {body[:200]!r}")
    elif endpoint != 'export':
        expect(headers.get('Content-Type', '').startswith('application/json'), 'answer', f"{endpoint}: {headers}")
        json.loads(body)


def hostile_values():
    """Every (endpoint, field, value) of the class, in a fixed order."""
    return [(e, f, v) for e in API_ENDPOINTS for f in QUERY_FIELDS for v in HOSTILE_VALUES]
