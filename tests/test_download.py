"""The names download against a local HTTP server on 127.0.0.1: a good file, a
wrong checksum, a stall, a connection refused, a file cut short. None may leave
a file (or an empty folder) behind; each error names the URL and says what to do."""

import hashlib
import http.server
import threading
import time

import pytest

import microgpt.data as data
from microgpt.data import DataError, default_data_path
from microgpt.download import DownloadError, download
from tests.conftest import names_path, needs_names

BODY = b'emma\nolivia\nava\n' * 2000  # 32 kB: several chunks
DIGEST = hashlib.sha256(BODY).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == '/stall':
            self.send_response(200)
            self.send_header('Content-Length', str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:100])
            self.wfile.flush()
            self.server.release.wait(10)  # sends nothing more until the test ends
            return
        if self.path == '/short':
            self.send_response(200)
            self.send_header('Content-Length', str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:1000])
            return  # closes the connection early
        if self.path == '/missing':
            self.send_error(404, 'Not Found')
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.release = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{srv.server_address[1]}'
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def test_download_writes_the_checked_file_and_reports_progress(server, tmp_path):
    seen = []
    dest = tmp_path / 'cache' / 'names.txt'
    download(f'{server}/names.txt', dest, sha256=DIGEST, progress=lambda done, total: seen.append((done, total)))
    assert dest.read_bytes() == BODY
    assert seen[0] == (0, len(BODY)) and seen[-1] == (len(BODY), len(BODY))
    assert len(seen) >= 3 and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_checksum_mismatch_saves_nothing(server, tmp_path):
    dest = tmp_path / 'cache' / 'names.txt'
    with pytest.raises(DownloadError) as e:
        download(f'{server}/names.txt', dest, sha256='0' * 64)
    assert f'has SHA-256 {DIGEST}, expected {"0" * 64}' in str(e.value)
    assert not (tmp_path / 'cache').exists()


def test_a_stall_ends_at_the_timeout_with_nothing_left(server, tmp_path):
    dest = tmp_path / 'cache' / 'names.txt'
    t = time.monotonic()
    with pytest.raises(DownloadError, match=r'download of http://127\.0\.0\.1:\d+/stall stalled: no data for 0\.5 s'):
        download(f'{server}/stall', dest, timeout=0.5)
    assert time.monotonic() - t < 5
    assert not (tmp_path / 'cache').exists()


def test_a_short_body_and_http_errors_are_refused(server, tmp_path):
    dest = tmp_path / 'cache' / 'names.txt'
    with pytest.raises(DownloadError, match=r'/short was cut short: 1000 of 32000 bytes'):
        download(f'{server}/short', dest)
    with pytest.raises(DownloadError, match=r'/missing failed: HTTP 404'):
        download(f'{server}/missing', dest)
    assert not (tmp_path / 'cache').exists()


def test_default_data_path_announces_downloads_then_uses_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ('MICROGPT_DATA', 'MICROGPT_NAMES'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(data, 'NAMES_URL', f'{server}/names.txt')
    monkeypatch.setattr(data, 'NAMES_SHA256', DIGEST)
    said = []
    path = default_data_path(cache_dir=tmp_path / 'cache', log=said.append)
    assert path == tmp_path / 'cache' / 'names.txt' and path.read_bytes() == BODY
    assert said == [f'downloading the makemore names list from {server}/names.txt to {path}']
    said.clear()
    assert default_data_path(cache_dir=tmp_path / 'cache', log=said.append) == path
    assert said == []  # cached: no second download


def test_no_network_error_says_how_to_supply_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ('MICROGPT_DATA', 'MICROGPT_NAMES'):
        monkeypatch.delenv(var, raising=False)
    # a port nothing listens on: connection refused, as offline
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(data, 'NAMES_URL', f'http://127.0.0.1:{port}/names.txt')
    with pytest.raises(DataError) as e:
        default_data_path(cache_dir=tmp_path / 'cache', timeout=2)
    msg = str(e.value)
    assert msg.startswith(f'download of http://127.0.0.1:{port}/names.txt failed: ')
    assert 'pass its path (microgpt-graph train names.txt) or set $MICROGPT_DATA=/path/to/names.txt' in msg
    assert '\n' not in msg and not (tmp_path / 'cache').exists()


def test_the_data_variable_and_its_alias(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'n.txt').write_text('ann\n')
    monkeypatch.delenv('MICROGPT_DATA', raising=False)
    monkeypatch.setenv('MICROGPT_NAMES', str(tmp_path / 'n.txt'))
    assert default_data_path(download=False) == tmp_path / 'n.txt'
    monkeypatch.setenv('MICROGPT_DATA', str(tmp_path / 'gone.txt'))  # the main name wins
    with pytest.raises(DataError, match=r'^\$MICROGPT_DATA is .*gone\.txt, which is not a file'):
        default_data_path(download=False)


@needs_names
def test_the_recorded_checksum_is_the_makemore_file():
    """The names data the tests use ($MICROGPT_DATA, ../shared/data, the downloaded copy) is
    makemore's file, the one `train` checks its download against."""
    assert hashlib.sha256(names_path().read_bytes()).hexdigest() == data.NAMES_SHA256
