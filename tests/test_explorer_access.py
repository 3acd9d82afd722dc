"""Hostile HTTP against the explorer over real sockets on 127.0.0.1: smuggled requests, no token,
other origins, checkpoint paths the user did not offer, malformed requests, slow and half-open
clients. Each refusal is checked for what the server did (its recordings, models, comparisons and
views are unchanged; no API call ran), not only for the status it answered."""

import select
import socket
import threading
import time

import pytest

from tests.explorer_helpers import get, get_json, running_server
from tests.hostile_cases import (
    API_ENDPOINTS,
    CHECKPOINT_ENDPOINTS,
    CHECKPOINT_FIELDS,
    ENDPOINTS,
    FOREIGN,
    MALFORMED,
    SMUGGLING,
    foreign,
    hostile_server,
    hostile_value,
    hostile_values,
    malformed,
    offered_files,
    one_line_json,
    raw,
    request,
    smuggle,
    statuses,
    unoffered,
    unoffered_paths,
)


@pytest.fixture(scope='module')
def offered(tmp_path_factory):
    """(a checkpoint the server offers, a folder of checkpoints it offers, one it does not offer)."""
    return offered_files(tmp_path_factory.mktemp('access'))


@pytest.fixture(scope='module')
def server(offered):
    with hostile_server(offered) as s:
        yield s


# -- a request hidden in a body is never served --------------------------------------------------------
@pytest.mark.parametrize('framing, effect', SMUGGLING)
def test_a_request_hidden_in_a_body_is_not_served(server, framing, effect):
    smuggle(server, framing, effect)     # refused, connection closed, nothing done; the control does it


def test_pipelined_requests_of_the_page_are_still_answered_on_one_connection(server):
    answer, closed = raw(server, request(server, '/api/info') + request(server, '/static/token.js')
                         + request(server, '/api/info').replace(b'\r\n\r\n', b'\r\nConnection: close\r\n\r\n'))
    assert statuses(answer) == [200, 200, 200] and closed


# -- only the explorer's own page ----------------------------------------------------------------------
@pytest.mark.parametrize('endpoint', ENDPOINTS)
@pytest.mark.parametrize('case, headers, words', FOREIGN)
def test_the_api_answers_only_its_own_page(server, endpoint, case, headers, words):
    foreign(server, endpoint, case, headers, words)     # 403 with one line naming why, nothing done


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
@pytest.mark.parametrize('field', CHECKPOINT_FIELDS)
@pytest.mark.parametrize('endpoint', CHECKPOINT_ENDPOINTS)
def test_unoffered_checkpoint_paths_are_refused_alike_whether_they_exist_or_not(server, offered, field, endpoint):
    _start, folder, secret = offered
    said = {unoffered(server, endpoint, field, path) for path in unoffered_paths(folder, secret)}
    assert len(said) == 1, said                 # one answer for every path: nothing tells whether it exists


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
@pytest.mark.parametrize('name, data, status', MALFORMED)
def test_malformed_requests_get_one_line_of_json_and_a_closed_connection(server, name, data, status):
    malformed(server, name, data, status)


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


# -- every endpoint x every field x hostile values (a tenth of them here; all in benchmarks/bench_hostile.py)
@pytest.mark.parametrize('endpoint', API_ENDPOINTS)
def test_hostile_values_of_every_field_are_answered_or_refused_in_one_line_never_a_500(server, endpoint):
    cases = [c for c in hostile_values() if c[0] == endpoint][::10]
    assert len(cases) > 140
    for e, field, value in cases:
        hostile_value(server, e, field, value)
