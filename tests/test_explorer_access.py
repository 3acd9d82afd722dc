"""Hostile HTTP against the explorer over real sockets on 127.0.0.1: smuggled requests, no token,
other origins, checkpoint paths the user did not offer, malformed requests, slow and half-open
clients. Each refusal is checked for what the server did (its recordings, models, comparisons and
views are unchanged; no API call ran), not only for the status it answered."""

import json
import re
import select
import socket
import threading
import time

import pytest

from microgpt.checkpoint import save_checkpoint
from microgpt.train import fresh_model
from tests.explorer_helpers import get, get_json, running_server

ENDPOINTS = ('/api/view', '/api/info', '/api/node?id=1', '/api/search?q=pos:1', '/api/suggest?q=a', '/api/frames',
             '/api/update', '/api/export?fmt=svg', '/api/nothing')


@pytest.fixture(scope='module')
def offered(tmp_path_factory):
    """(a checkpoint the server offers, a folder of checkpoints it offers, one it does not offer)."""
    root = tmp_path_factory.mktemp('access')
    folder = root / 'runs'
    folder.mkdir()
    params, config, tok = fresh_model(7)
    for path in (root / 'start.json', folder / 'later.json', root / 'secret.json', folder / '.hidden.json'):
        save_checkpoint(path, params, config, tok)
    return root / 'start.json', folder, root / 'secret.json'


@pytest.fixture(scope='module')
def server(offered):
    start, folder, _ = offered
    names = folder.parent / 'names.txt'
    names.write_text('emma\nolivia\nava\nisabella\nsophia\nmia\nabcdefghijklmnopqrstuvwxyz\n')
    with running_server(doc='emma', checkpoints=[str(start), str(folder)], data=str(names)) as s:
        yield s


def done(server):
    """What the server has recorded, loaded, trained and drawn so far: its caches' keys."""
    r = server.api.recordings
    return list(r._traces), list(r._models), list(r._compares), list(server.api._views)


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
        assert b'application/json' in head, head
    text = body.decode('utf-8')
    assert '\n' not in text.strip(), text
    got = json.loads(text)
    assert list(got) == ['error'] and got['error'], got
    return got['error']


def request(server, path, token=True):
    port = server.server_address[1]
    auth = f'X-Explorer-Token: {server.token}\r\n' if token else ''
    return f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n'.encode()


# -- a request hidden in a body is never served --------------------------------------------------------
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
# would be new work (the control below shows it is)
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
CASES = [(f, 'record a document') for f in FRAMINGS] + [
    (f, e) for e in list(SMUGGLED)[1:] for f in ('POST Content-Length', 'form text/plain', 'POST chunked', 'CL.TE')]


@pytest.mark.parametrize('framing, effect', CASES)
def test_a_request_hidden_in_a_body_is_not_served(server, framing, effect):
    # the hidden request carries the real token: were it parsed, it would be served
    inner = request(server, '/api/view?' + SMUGGLED[effect].replace('DOC', unique_doc(framing, effect)))
    before = done(server)
    answer, closed = raw(server, framings(server.server_address[1], inner)[framing])
    got = statuses(answer)
    assert closed, f"the connection was left open after {answer[:200]!r}"
    assert len([s for s in got if s != 100]) == 1 and got[-1] in (400, 405, 413), answer[:300]
    if not framing.startswith('HEAD'):         # an answer to HEAD has no body
        one_line_json(answer[answer.rfind(b'HTTP/1.'):])
    assert done(server) == before
    # the control: sent as a request of its own, it does what it says
    answer, _ = raw(server, inner.replace(b'\r\n\r\n', b'\r\nConnection: close\r\n\r\n'))
    assert statuses(answer) == [200] and done(server) != before


def test_pipelined_requests_of_the_page_are_still_answered_on_one_connection(server):
    answer, closed = raw(server, request(server, '/api/info') + request(server, '/static/token.js')
                         + request(server, '/api/info').replace(b'\r\n\r\n', b'\r\nConnection: close\r\n\r\n'))
    assert statuses(answer) == [200, 200, 200] and closed


# -- only the explorer's own page ----------------------------------------------------------------------
@pytest.mark.parametrize('endpoint', ENDPOINTS)
@pytest.mark.parametrize('case, headers, words', [
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
])
def test_the_api_answers_only_its_own_page(server, endpoint, case, headers, words):
    headers = dict(headers)
    with_token = headers.pop('token', None)
    query = headers.pop('?', None)
    path = endpoint + ('&' if '?' in endpoint else '?') + query if query else endpoint
    before = done(server)
    status, _, body = get(server, path, headers=headers, token=bool(with_token))
    assert status == 403 and words in one_line_json(body, head=False)
    assert done(server) == before


def test_the_page_with_its_token_is_served(server):
    port = server.server_address[1]
    own = {'Sec-Fetch-Site': 'same-origin', 'Origin': f'http://127.0.0.1:{port}'}
    assert get(server, '/api/info', headers=own)[0] == 200
    assert get(server, '/api/info', headers={'Origin': f'http://localhost:{port}'})[0] == 200
    status, _, body = get(server, f'/api/export?fmt=svg&token=2&api_token={server.token}', token=False)
    assert status == 200 and body.startswith(b'<?xml')
    # the page and its files are public: only the API needs the token
    assert get(server, '/', token=False)[0] == 200 and get(server, '/static/token.js', token=False)[0] == 200
    assert server.url == f'http://127.0.0.1:{port}/#token={server.token}' and len(server.token) >= 32


def test_each_server_has_its_own_token():
    with running_server(doc='emma') as a, running_server(doc='emma') as b:
        assert a.token != b.token
        status, _, _ = get(b, '/api/info', headers={'X-Explorer-Token': a.token}, token=False)
        assert status == 403


# -- checkpoints: only those offered, and no existence oracle ---------------------------------------------
HOSTILE_PATHS = ['/etc/shadow', '/etc/passwd', '/nonexistent/file.json', '/proc/self/environ', '/dev/zero',
                 '../start.json', 'runs/../secret.json', '.hidden.json', 'later.json/..', 'a\0b', '~/.ssh/id_rsa',
                 '', '/']


@pytest.mark.parametrize('field', ['ckpt=', 'cmp=ckpt:'])
@pytest.mark.parametrize('endpoint', ['/api/view', '/api/info', '/api/update', '/api/node?id=1'])
def test_unoffered_checkpoint_paths_are_refused_alike_whether_they_exist_or_not(server, offered, field, endpoint):
    _start, folder, secret = offered
    paths = [p for p in HOSTILE_PATHS if p] + [str(secret), str(folder / '.hidden.json'), str(folder / 'missing.json'),
                                               str(folder.parent / 'runs' / '..' / 'secret.json')]
    from urllib.parse import quote
    before = done(server)
    said = set()
    for path in paths:
        sep = '&' if '?' in endpoint else '?'
        status, body = get_json(server, f"{endpoint}{sep}{field}{quote(path, safe='/:')}")
        assert status == 400, (path, body)
        said.add(body['error'].replace(repr(path[:100]), 'PATH'))
    assert len(said) == 1, said                 # one answer for every path: nothing tells whether it exists
    assert 'is not a checkpoint this server offers' in said.pop()
    # and nothing was loaded from them: no model, no comparison; at most the server's own recording,
    # drawn as the nearest view a refused link falls back to (/api/view: fallback.nearest)
    after = done(server)
    assert after[1:3] == before[1:3]
    new = [k for cache, was in zip(after, before) for k in cache if k not in was]
    assert not any(len(p) > 2 and p in repr(k) for k in new for p in paths), new
    assert all(k[1] is None for k in after[0] if k not in before[0]), after[0]


def test_offered_checkpoints_open_by_name_or_by_the_path_offered(server, offered):
    start, folder, _ = offered
    for ckpt in ('start.json', str(start)):
        status, v = get_json(server, f'/api/view?ckpt={ckpt}')
        assert status == 200 and v['key'] == f'emma|{start}|', v
    # without a checkpoint: the fresh model of seed 42
    assert get_json(server, '/api/view')[1]['key'] == 'emma||42'
    for ckpt in ('later.json', f'{folder}/later.json'):
        status, v = get_json(server, f'/api/view?ckpt={ckpt}')
        assert status == 200 and v['key'] == f'emma|{folder}/later.json|', v
    status, v = get_json(server, '/api/view?cmp=ckpt:later.json')
    assert status == 200 and v['compare']['labels'] == ['fresh seed 42', 'later.json']
    status, v = get_json(server, '/api/view?ckpt=start.json&cmp=ckpt:later.json')
    assert status == 200 and v['compare']['labels'] == ['start.json', 'later.json']


# -- malformed HTTP: one line of JSON, the server keeps serving --------------------------------------------
@pytest.mark.parametrize('name, data, status', [
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
])
def test_malformed_requests_get_one_line_of_json_and_a_closed_connection(server, name, data, status):
    server.body_timeout = 1.0
    try:
        answer, closed = raw(server, data)
    finally:
        del server.body_timeout
    assert closed
    if status is None:                          # the body timed out: 408, or closed with nothing
        assert statuses(answer) in ([], [408])
    else:
        assert statuses(answer) == [status], answer[:200]
        one_line_json(answer)
    assert get(server, '/api/info')[0] == 200


# -- slow and half-open clients ------------------------------------------------------------------------
@pytest.fixture
def quick(server):
    """The server's deadlines shortened for a test (the instance's own attributes, removed after)."""
    server.head_timeout = server.body_timeout = 1.0
    try:
        yield server
    finally:
        del server.head_timeout, server.body_timeout


def test_a_half_open_client_is_closed_after_the_head_deadline(quick):
    t0 = time.monotonic()
    s = socket.create_connection(quick.server_address[:2], timeout=10)
    try:
        assert s.recv(100) == b''               # closed by the server, having said nothing
    finally:
        s.close()
    assert 0.9 <= time.monotonic() - t0 < 8


def test_a_client_trickling_its_head_gets_408_at_the_deadline_not_at_each_byte(quick):
    s = socket.create_connection(quick.server_address[:2], timeout=10)
    got = b''
    t0 = time.monotonic()
    try:
        for byte in request(quick, '/api/info')[:-2]:   # a byte every 0.1 s, never the final CRLF
            s.sendall(bytes([byte]))
            if select.select([s], [], [], 0.1)[0]:      # the server answered: stop sending
                break
        while True:
            part = s.recv(1000)
            if not part:
                break
            got += part
    finally:
        s.close()
    assert statuses(got) == [408] and 'did not arrive within 1 s' in one_line_json(got)
    assert time.monotonic() - t0 < 4          # a per-byte timeout would have kept it open for the whole trickle


def server_threads():
    return sum(t.name.endswith('(process_request_thread)') for t in threading.enumerate())


def test_slow_clients_do_not_block_others_and_give_their_threads_back(quick):
    quick.head_timeout = 3.0
    baseline = server_threads()
    slow = []
    try:
        for _ in range(40):
            s = socket.create_connection(quick.server_address[:2], timeout=10)
            s.sendall(b'GET /api/info HTTP/1.1\r\nHo')
            slow.append(s)
        end = time.monotonic() + 2
        while server_threads() < 40 and time.monotonic() < end:
            time.sleep(0.02)
        assert server_threads() >= 40                             # each holds a thread, for now
        for _ in range(3):                                        # others are answered meanwhile
            assert get_json(quick, '/api/info')[0] == 200
        for s in slow:                                            # ... and the slow ones are let go
            assert s.recv(1000).startswith(b'HTTP/1.1 408 ')
        end = time.monotonic() + 5
        while server_threads() > baseline and time.monotonic() < end:
            time.sleep(0.05)
        assert server_threads() <= baseline
    finally:
        for s in slow:
            s.close()
