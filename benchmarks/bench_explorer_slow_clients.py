"""Slow and half-open clients against a real `microgpt-graph explore` process; prints figures, asserts nothing.

    python benchmarks/bench_explorer_slow_clients.py [--clients 300] [--seconds 12]

Starts `explore --no-browser` (its own process, so the clients here do not share its interpreter),
then opens --clients half-open connections (connect, send nothing) and as many slow ones (a request
head sent a byte a second, never finished), and meanwhile asks /api/info (with the server's token)
five times a second, as the page would. Prints:
  served          the page's requests answered during the attack, of those sent, and their
                  latency (median, max) next to the same requests without the attack
  threads         the server process's threads (/proc/PID/status) over time: each open connection
                  holds one until its deadline (server.HEAD_TIMEOUT), then gives it back
  let go          when the server closed the slow and the half-open connections (median, max)
Before issue 21 there was no deadline: 300 half-open sockets held 300 threads for as long as the
client kept them open.
"""

import argparse
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tests.explorer_helpers import opened

ROOT = Path(__file__).resolve().parent.parent


def start():
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1')
    p = subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-browser', '--doc', 'emma'],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
    line = p.stdout.readline()
    opened(line.split()[2])         # it records the step in the background first
    url = urlsplit(line.split()[2])
    return p, url.hostname, url.port, url.fragment[len('token='):]


def threads(pid):
    with open(f'/proc/{pid}/status') as f:
        return int(next(line for line in f if line.startswith('Threads:')).split()[1])


def ask(host, port, token):
    t0 = time.perf_counter()
    req = urllib.request.Request(f'http://{host}:{port}/api/info', headers={'X-Explorer-Token': token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            ok = r.status == 200 and 'tokens' in json.loads(r.read())
    except OSError:
        ok = False
    return ok, 1000 * (time.perf_counter() - t0)


def page_requests(host, port, token, seconds, out):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(ask(host, port, token))
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--clients', type=int, default=300, help='half-open connections, and as many slow ones')
    ap.add_argument('--seconds', type=float, default=12.0, help='how long the attack lasts')
    a = ap.parse_args()
    attack(a.clients, a.seconds)


def attack(clients, seconds):
    """The attack, its figures printed; (page requests served, sent, connections let go, opened)
    (benchmarks/bench_hostile.py counts them)."""
    proc, host, port, token = start()
    sockets = []
    try:
        quiet = [ask(host, port, token)[1] for _ in range(10)]
        base = threads(proc.pid)
        t0 = time.monotonic()
        opened = {}
        for kind in ('half-open', 'slow'):
            for _ in range(clients):
                s = socket.create_connection((host, port), timeout=30)
                s.setblocking(False)
                if kind == 'slow':
                    s.send(b'GET /api/info HTTP/1.1\r\nH')
                sockets.append(s)
                opened[s] = kind
        served = []
        asker = threading.Thread(target=page_requests, args=(host, port, token, seconds, served))
        asker.start()
        closed, counts, trickle = {}, [], b'ost: x\r\nX-Slow: ' + b'y' * 10000
        sent = {s: 0 for s in sockets}
        next_byte = time.monotonic()
        while time.monotonic() - t0 < seconds:
            now = time.monotonic()
            if now >= next_byte:                    # the slow ones: one more byte each, every second
                for s, kind in opened.items():
                    if kind == 'slow' and s not in closed:
                        try:
                            s.send(trickle[sent[s]:sent[s] + 1])
                            sent[s] += 1
                        except OSError:
                            closed[s] = now - t0
                next_byte = now + 1.0
            open_ = [s for s in sockets if s not in closed]
            for s in select.select(open_, [], [], 0.1)[0] if open_ else ():
                try:
                    while s.recv(65536):
                        pass
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                closed[s] = time.monotonic() - t0
            if not counts or now - t0 >= counts[-1][0] + 1.0:
                counts.append((round(now - t0, 1), threads(proc.pid)))
        asker.join()
        ok = [ms for good, ms in served if good]
        print(f"explore on {host}:{port}; {clients} half-open + {clients} slow connections for {seconds:g} s")
        print(f"  served     {len(ok)} of {len(served)} page requests during the attack; latency median "
              f"{statistics.median(ok):.1f} ms, max {max(ok):.1f} ms (without it: median "
              f"{statistics.median(quiet):.1f} ms, max {max(quiet):.1f} ms)")
        print(f"  threads    {base} before; " + ', '.join(f't={t:g}s {n}' for t, n in counts))
        for kind in ('half-open', 'slow'):
            times = [closed[s] for s, k in opened.items() if k == kind and s in closed]
            print(f"  let go     {kind}: {len(times)} of {clients} closed by the server"
                  + (f", median {statistics.median(times):.1f} s, max {max(times):.1f} s" if times else ''))
        return len(ok), len(served), len(closed), len(sockets)
    finally:
        for s in sockets:
            s.close()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


if __name__ == '__main__':
    main()
