"""The node check in the page: each recording checked in the background, its failing nodes marked.

    verdicts = Verdicts(check)           # check(trace) -> the node check as plain data
    verdicts.start(key, trace)           # once per recording; returns at once
    verdicts.status(key)                 # {'status': 'running' | 'done' | 'error' | 'off', ...}
    verdicts.at(key, node)               # the failures at one node (the side panel's)
    marks(view, failing)                 # the drawn nodes holding a failing node

The exporter never imports microgpt.checks (tests/test_imports.py): the command line
hands the server the check as a function (`explore` passes microgpt.checks.diagnose.
node_check_data), whose answer is data: NodeCheckResult.to_dict(), i.e. every failure
with its node id, kind, found and expected values, nearest the loss first. Without one
the page has no check ('off').

The check of a default 'emma' step takes about half a second (0.5-2 s with a fault
injected: every node fails its sum check under accumulate-overwrite); it starts when the
recording is made, before the page asks for its first view, so the failing node is
usually marked as the page is drawn (benchmarks/bench_explorer_why.py).
"""

import threading
import time
import traceback
from collections import OrderedDict

from microgpt.files import json_safe
from microgpt.recording.madeby import made_by

from .links import neighbourhood

KEEP = 8            # recordings whose verdict is kept
MAX_LISTED = 20     # failures at one node listed in the panel


class Verdicts:
    def __init__(self, check=None):
        self.check = check          # trace -> NodeCheckResult.to_dict(), or None: no check
        self._lock = threading.Lock()
        self._results = OrderedDict()    # key -> {'status', 'result', 'by_node', 'seconds'}

    def start(self, key, trace):
        """Check `trace` in a background thread unless it is checked (or being checked) already."""
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return
            if self.check is None:
                return
            self._results[key] = {'status': 'running'}
            while len(self._results) > KEEP:
                self._results.popitem(last=False)
        threading.Thread(target=self._run, args=(key, trace), daemon=True, name='node-check').start()

    def _run(self, key, trace):
        """The check, off the request threads: it reads the trace and patches nothing (unlike a
        recording), so it may run while the server records or draws."""
        t0 = time.perf_counter()
        try:
            result = self.check(trace)
            by_node = {}
            for f in result.get('failures', ()):
                by_node.setdefault(f['node'], []).append(f)
            got = {'status': 'done', 'result': result, 'by_node': by_node, 'seconds': time.perf_counter() - t0}
        except Exception as e:  # noqa: BLE001 -- the page says the check broke; the server goes on
            traceback.print_exc()
            got = {'status': 'error', 'error': f'{type(e).__name__}: {e}'}
        with self._lock:
            if key in self._results:
                self._results[key] = got

    def _get(self, key):
        with self._lock:
            return self._results.get(key)

    def status(self, key):
        """{'status': 'off' | 'running' | 'done' | 'error', ...}: for 'done', ok, the counts, the
        first failure (nearest the loss) and the summary per op and kind."""
        got = self._get(key)
        if got is None or got['status'] == 'off':
            return {'status': 'off'}
        if got['status'] != 'done':
            return {k: v for k, v in got.items() if k in ('status', 'error')}
        r = got['result']
        return json_safe({'status': 'done', 'ok': r['ok'], 'first': r.get('first'), 'summary': r.get('summary', []),
                          'failing_nodes': r.get('failing_nodes', len(got['by_node'])), 'checked': r.get('checked'),
                          'faults': r.get('faults', []), 'seconds': round(got['seconds'], 3)})

    def failing(self, key):
        """{node id: [failure]} of a finished check, else {}."""
        got = self._get(key)
        return got['by_node'] if got is not None and got['status'] == 'done' else {}

    def at(self, key, node):
        """The failures at `node` (nearest the loss first), or None while there is no finished check."""
        got = self._get(key)
        if got is None or got['status'] != 'done':
            return None
        return json_safe(got['by_node'].get(node, [])[:MAX_LISTED])


def marks(view, failing):
    """Names of the drawn nodes (not references) that hold a failing node, in drawing order."""
    if not failing:
        return []
    return [n.name for n in view.folded.nodes if n.kind != 'ref' and any(i in failing for i in n.ids)]


def check_answer(verdicts, key, trace, state, view, sources):
    """/api/check: the verdict of `key`'s recording (Verdicts.status); when done, the drawn nodes of
    `view` (the state's, if drawn) holding a failing node (`marks`) and the first failure's view
    (`url`: its neighbourhood, it selected) and line (`made_by`: the line of model.py or of the
    script, and where its derivative is written). Call it holding the recordings' lock (made_by)."""
    got = verdicts.status(key)
    if got['status'] != 'done':
        return got
    got['marks'] = marks(view, verdicts.failing(key)) if view is not None else []
    first = got['first']
    if first is not None:
        first['url'] = neighbourhood(state, first['node'])
        first['made_by'] = made_by(trace, first['node'], sources)
    return got
