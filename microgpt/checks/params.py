"""Parameter-level gradient check: backward's grads vs central finite differences.

    result = check_params(params, config, tok, 'emma', select=['layer0.attn_wq'], sample=50)
    result.ok, result.worst, result.failures[:5]
    print(format_param_table(result))

For each chosen parameter p (all 4,192 by default, or a selection), in float64:

    analytic = dL/dp from one forward + backward of the document's loss
    numeric  = (L(p + eps) - L(p - eps)) / (2 eps)    two forward-only passes
    abs_err  = |analytic - numeric|,  rel_err = abs_err / max(|analytic|, |numeric|)
    ok       iff abs_err <= atol + rtol * max(|analytic|, |numeric|)

and p is put back to the very same float afterwards. Rows come worst first, by
abs_err over that allowance (`score`; ok iff score <= 1).

Default tolerances, measured on the correct engine (benchmarks/bench_gradcheck.py:
all 4,192 parameters of the default model, seed 42, document 'emily', eps 1e-6).
The numeric grad's own error is rounding, ~ulp(loss) / eps ~ 1e-10 absolute
(truncation, eps^2 * L''' / 6, is ~1e-13): the largest abs_err seen was 8.9e-10
(median 1.3e-10); relative errors were at most 7e-8 for |grad| > 1e-2, 5e-7 for
|grad| > 1e-3 and 6e-6 for |grad| > 1e-4; the worst score was 0.06. So
    eps  = 1e-6   near the optimum step (cube root of 2^-52 is 6e-6) for
                  parameters of size ~0.1
    atol = 1e-8   ten times the largest absolute error seen, so grads near 0
                  (528 unused cells are exactly 0 both ways) never fail on noise
    rtol = 1e-5   twenty times the largest relative error of a grad > 1e-3; an
                  error of 0.001% in a grad that size fails
A wrong derivative is usually off by tens of per cent or more.

Parameters whose perturbation crosses a ReLU kink (|pre-activation| < ~eps) can
fail spuriously: the node-level check (microgpt.checks.nodes) tells them apart.
"""

import math
import random
import time
from dataclasses import dataclass, field

from ..engine import gc_paused
from ..errors import InputError
from ..model import check_model, doc_loss, flat_params
from ..recording.cells import check_param
from . import faults

EPS = 1e-6      # finite-difference step, absolute, on the parameter
RTOL = 1e-5     # relative tolerance
ATOL = 1e-8     # absolute floor, in loss units per parameter unit


def _check_tolerances(eps, rtol, atol):
    """eps a finite number > 0, rtol and atol finite numbers >= 0: anything else
    would make every row fail (NaN) or divide by zero (eps 0)."""
    for name, value, low in (('eps', eps, 'positive'), ('rtol', rtol, 'non-negative'), ('atol', atol, 'non-negative')):
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
              and (value > 0 if name == 'eps' else value >= 0))
        if not ok:
            raise InputError(f"{name} must be a finite {low} number, got {value!r}")


def _tokens(tokenizer, doc):
    if isinstance(doc, str):
        return tokenizer.encode(doc)
    return list(doc)


def select_cells(params, select=None, sample=None, seed=0):
    """(name, row, col) of the chosen parameters, in parameter order.

    select: None (all), or a string or list of strings, each a matrix name
            ('wte', 'layer0.mlp_fc1') or a cell ('layer0.attn_wq[3][5]').
    sample: keep a random k of those, drawn with random.Random(seed).
    """
    shapes = {name: (len(m), len(m[0]) if m else 0) for name, m in params.items()}
    if select is None:
        cells = [(n, r, c) for n, (rows, cols) in shapes.items() for r in range(rows) for c in range(cols)]
    else:
        specs = [select] if isinstance(select, str) else list(select)
        chosen = set()
        for spec in specs:
            name, r, c = check_param(spec, shapes)
            if r is None:
                rows, cols = shapes[name]
                chosen.update((name, i, j) for i in range(rows) for j in range(cols))
            else:
                chosen.add((name, r, c))
        order = {n: k for k, n in enumerate(shapes)}
        cells = sorted(chosen, key=lambda t: (order[t[0]], t[1], t[2]))
    if sample is not None:
        if not isinstance(sample, int) or sample < 1:
            raise InputError(f"sample must be a positive number of parameters, got {sample!r}")
        if sample < len(cells):
            picked = random.Random(seed).sample(range(len(cells)), sample)
            cells = [cells[k] for k in sorted(picked)]
    return cells


@dataclass
class ParamGrad:
    """One parameter's analytic and numeric gradient."""
    name: str
    row: int
    col: int
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    score: float        # abs_err / (atol + rtol * max(|analytic|, |numeric|)); ok iff <= 1
    ok: bool

    @property
    def cell(self):
        return f"{self.name}[{self.row}][{self.col}]"

    def to_dict(self):
        return {'param': self.cell, 'name': self.name, 'row': self.row, 'col': self.col,
                'analytic': self.analytic, 'numeric': self.numeric, 'abs_err': self.abs_err,
                'rel_err': self.rel_err, 'score': self.score, 'ok': self.ok}


@dataclass
class ParamCheckResult:
    """All checked parameters, worst first, and how they were checked."""
    doc: object
    loss: float
    rows: list                      # [ParamGrad], worst (highest score) first
    eps: float
    rtol: float
    atol: float
    forward_passes: int
    seconds: float
    faults: list = field(default_factory=list)   # names of faults injected while checking

    @property
    def ok(self):
        return all(r.ok for r in self.rows)

    @property
    def failures(self):
        return [r for r in self.rows if not r.ok]

    @property
    def worst(self):
        return self.rows[0] if self.rows else None

    def to_dict(self):
        return {'check': 'params', 'ok': self.ok, 'doc': self.doc, 'loss': self.loss,
                'checked': len(self.rows), 'failed': len(self.failures),
                'tolerances': {'eps': self.eps, 'rtol': self.rtol, 'atol': self.atol},
                'forward_passes': self.forward_passes, 'seconds': self.seconds, 'faults': self.faults,
                'rows': [r.to_dict() for r in self.rows]}


def compare(analytic, numeric, rtol, atol):
    """(abs_err, rel_err, score, ok) for one pair; NaN/inf anywhere fails."""
    if not (math.isfinite(analytic) and math.isfinite(numeric)):
        return math.inf, math.inf, math.inf, False
    abs_err = abs(analytic - numeric)
    scale = max(abs(analytic), abs(numeric))
    rel_err = abs_err / scale if scale else 0.0
    allowed = atol + rtol * scale
    score = abs_err / allowed if allowed else (0.0 if abs_err == 0 else math.inf)
    return abs_err, rel_err, score, score <= 1


def check_params(params, config, tokenizer, doc, *, select=None, sample=None, seed=0,
                 eps=EPS, rtol=RTOL, atol=ATOL, progress=None):
    """Check dL/dp of the chosen parameters against central differences.

    doc: a string (encoded with `tokenizer`) or a token list. select / sample /
    seed: which parameters (see `select_cells`). One forward + backward for the
    analytic grads, then two forward-only passes per parameter; every parameter's
    data is restored to the same float and every grad to what it held before.
    Returns a `ParamCheckResult`, rows worst first. progress(done, total) is
    called after each parameter (the CLI draws a bar from it).
    """
    _check_tolerances(eps, rtol, atol)
    check_model(params, config, tokenizer)
    t0 = time.perf_counter()
    tokens = _tokens(tokenizer, doc)
    cells = select_cells(params, select, sample, seed)
    flat = flat_params(params)
    saved_grads = [p.grad for p in flat]
    try:
        for p in flat:
            p.grad = 0
        with gc_paused():
            loss, _ = doc_loss(params, config, tokens)
            loss.backward()
        analytic = {(n, r, c): params[n][r][c].grad for n, r, c in cells}
        loss_value = float(loss.data)
        del loss
        rows = []
        with gc_paused():
            for n, r, c in cells:
                p = params[n][r][c]
                x = p.data
                try:
                    p.data = x + eps
                    up = doc_loss(params, config, tokens)[0].data
                    p.data = x - eps
                    down = doc_loss(params, config, tokens)[0].data
                finally:
                    p.data = x
                numeric = (up - down) / (2 * eps)
                a = float(analytic[(n, r, c)])
                rows.append(ParamGrad(n, r, c, a, numeric, *compare(a, numeric, rtol, atol)))
                if progress is not None:
                    progress(len(rows), len(cells))
    finally:
        for p, g in zip(flat, saved_grads):
            p.grad = g
    rows.sort(key=lambda row: -row.score)
    return ParamCheckResult(doc=doc if isinstance(doc, str) else list(doc), loss=loss_value, rows=rows,
                            eps=eps, rtol=rtol, atol=atol, forward_passes=1 + 2 * len(cells),
                            seconds=time.perf_counter() - t0, faults=faults.active_faults())


def format_param_table(result, limit=20):
    """The readable report: a verdict line, then the worst `limit` rows."""
    n, bad = len(result.rows), len(result.failures)
    head = (f"parameter check: {'FAIL' if bad else 'ok'} — {bad} of {n} parameters outside tolerance "
            f"(eps {result.eps:g}, rtol {result.rtol:g}, atol {result.atol:g}); loss {result.loss:.6f}, "
            f"{result.forward_passes} forward passes, {result.seconds:.1f} s")
    if result.faults:
        head += f"\nfault injected: {', '.join(result.faults)}"
    lines = [head]
    shown = result.rows[:limit]
    if shown:
        w = max(12, max(len(r.cell) for r in shown))
        lines.append(f"  {'parameter':<{w}}  {'analytic':>13}  {'numeric':>13}  {'abs err':>9}  {'rel err':>9}  ")
        for r in shown:
            lines.append(f"  {r.cell:<{w}}  {r.analytic:>13.6e}  {r.numeric:>13.6e}  {r.abs_err:>9.2e}  "
                         f"{r.rel_err:>9.2e}  {'ok' if r.ok else 'FAIL'}")
        if n > limit:
            lines.append(f"  ... {n - limit} more (worst first)")
    return '\n'.join(lines)
