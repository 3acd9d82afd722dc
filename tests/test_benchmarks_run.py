"""The benchmarks' cheap cases still run on the code as it is (their figures are read by hand, so a
benchmark broken by a change in the code it measures would go unnoticed until someone needs it:
bench_scale read a Trace attribute that a refactoring had removed, and stopped at its last row)."""

import random
import re
import subprocess
import sys
from pathlib import Path

from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording.step import record_step

ROOT = Path(__file__).resolve().parents[1]
AZ = 'abcdefghijklmnopqrstuvwxyz'


def test_bench_scale_runs_its_ci_case_to_the_end_on_the_step_it_names():
    """`bench_scale` at 2 x 32 (the issue's case cheap enough for CI): every row printed, and the
    step it measured is the one asked for (its node and edge counts those of the same model's
    step recorded here, with other parameter values: the graph's shape does not depend on them)."""
    r = subprocess.run([sys.executable, '-m', 'benchmarks.bench_scale', '--doc', 'anna', '--reps', '1'],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    rows = [line.split()[0] + (' ' + line.split()[1] if line.startswith(('save', 'first', 'cold', 'view', 'at', 'v1'))
                               else '') for line in r.stdout.splitlines() if line.strip()]
    for row in ('record', 'save binary', 'load', 'first view', 'cold file', 'at rest', 'v1 path'):
        assert row in rows, (row, r.stdout)
    assert rows.count('view change') == 8, r.stdout
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32)
    trace = record_step(init_params(config, random.Random(7)), config, tok, 'anna')
    nodes, edges = re.search(r"doc 'anna': ([\d,]+) nodes, ([\d,]+) edges", r.stdout).groups()
    assert (int(nodes.replace(',', '')), int(edges.replace(',', ''))) == (len(trace), len(trace.child))
