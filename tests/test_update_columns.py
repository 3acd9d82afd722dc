"""The Adam panel's per-matrix figures read as columns in C (update.matrix_summary, update.largest_at,
update_health) are those of the per-row loops they replace, bit for bit, on a real step and on rows with
NaN, infinities, signed zeros and ties."""

import math
import struct

import pytest

from graphviz_export.fold.summary import magnitude
from graphviz_export.steps.update import adam_update, largest_at, matrix_summary
from graphviz_export.steps.update_health import update_health
from microgpt.recording.sums import fsum


def per_row_summary(trace, rows):
    """matrix_summary as a loop over rows (the reference)."""
    by = {}
    for r in rows:
        by.setdefault(r['matrix'], []).append(r)
    out = []
    for name in trace.param_names:
        rs = by.get(name)
        if not rs:
            continue
        top = max(rs, key=lambda r: magnitude(r['delta']))
        rows_, cols = trace.param_shapes[name]
        out.append({'name': name, 'shape': [rows_, cols], 'cells': len(rs), 'size': rows_ * cols,
                    'norm_delta': math.sqrt(fsum(r['delta'] * r['delta'] for r in rs)),
                    'max_delta': abs(top['delta']), 'largest': top['name'], 'largest_delta': top['delta'],
                    'norm_grad': math.sqrt(fsum(r['grad'] * r['grad'] for r in rs))})
    return out


def per_row_health(rows):
    """update_health's spreads and zero-grad share as loops over rows (the reference), per matrix."""
    def std(xs):
        n = len(xs)
        if n < 2:
            return 0.0
        m = fsum(xs) / n
        return math.sqrt(fsum((x - m) * (x - m) for x in xs) / (n - 1))
    by = {}
    for r in rows:
        by.setdefault(r['matrix'], []).append(r)
    return {name: [std([r[k] for r in rs]) for k in ('data', 'grad', 'delta')]
            + [sum(1 for r in rs if r['grad'] == 0) / len(rs)] for name, rs in by.items()}


def bits(x):
    return struct.pack('<d', x) if isinstance(x, float) else x


def same(a, b):
    return {k: bits(v) for k, v in a.items()} == {k: bits(v) for k, v in b.items()}


@pytest.fixture(scope='module')
def rows(recorded_christopher):
    t = recorded_christopher
    return t, adam_update(t, [i for m in t.param_names for i in t.param_nodes(m)])['rows']


def broken(rows, seed):
    """Rows with NaN, infinities, signed zeros and equal deltas put in (copies)."""
    out = [dict(r) for r in rows]
    odd = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300, -1e300]
    for k in range(seed, len(out), 97):
        out[k]['delta'] = odd[k % len(odd)]
        out[k]['grad'] = odd[(k + 3) % len(odd)]
        out[k]['data'] = odd[(k + 5) % len(odd)] if k % 5 == 0 else out[k]['data']
    for k in range(seed + 1, len(out), 50):
        out[k]['delta'] = -out[k - 1]['delta']      # a tie in magnitude: the first of equals is the largest
    return out


@pytest.mark.parametrize('seed', [None, 0, 7])
def test_matrix_figures_read_in_c_are_the_per_row_loops(rows, seed):
    trace, rs = rows
    rs = rs if seed is None else broken(rs, seed)
    got, want = matrix_summary(trace, rs), per_row_summary(trace, rs)
    assert len(got) == len(want) == len(trace.param_names)
    for g, w in zip(got, want):
        assert same(g, w), g['name']
    health = {h['name']: [h['std_data'], h['std_grad'], h['std_delta'], h['zero_grad']]
              for h in update_health(trace, rs)}
    ref = per_row_health(rs)
    assert {k: list(map(bits, v)) for k, v in health.items()} == {k: list(map(bits, v)) for k, v in ref.items()}
    if seed is not None:        # the broken rows do reach the figures: NaN somewhere, a largest that is not finite
        assert any(math.isnan(h[2]) for h in health.values())
        assert any(not math.isfinite(m['max_delta']) for m in got)


@pytest.mark.parametrize('xs, at', [
    ([1.0, -3.0, 3.0, 2.0], 1),             # the first of equal magnitudes
    ([1.0, math.inf, math.nan, -math.inf], 1),   # NaN counts as inf: the first of them
    ([math.nan, math.inf], 0),
    ([-0.0, 0.0], 0),
    ([0.5], 0),
])
def test_largest_at_is_max_by_magnitude(xs, at):
    assert largest_at(xs) == at == max(range(len(xs)), key=lambda k: magnitude(xs[k]))
