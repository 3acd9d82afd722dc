"""Recompute every deterministic number in README.md and say which ones differ.

    python -m benchmarks.readme_figures            # prints each figure: ok, or README vs fresh
    python -m benchmarks.readme_figures --slow     # + the 20 samples after 1,000 steps (minutes)

Each figure is the exact README text it belongs in, built from a fresh computation
(a recorded step, a view, a training run, a constant of the code); tests/test_readme_numbers.py
checks that README.md contains every one of them, and that every other number in the
README's prose is listed in MEASURED (timings, memory: they come from the benchmarks and
are not checked) or NOT_FIGURES (names, versions, list numbering).
"""

import argparse
import inspect
import json
import math
import re
import sys
from pathlib import Path

from graphviz_export import build_view, file_name, render_view
from graphviz_export.options import DEFAULT_TIMEOUT
from graphviz_export.spec import DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET, MAX_BUDGET, MAX_DEPTH, MAX_EDGE_BUDGET
from graphviz_export.web.explorer.recordings import APART, WARM_ROUTES
from microgpt.checks.diagnose import AUTO_SAMPLE
from microgpt.checks.params import ATOL, EPS, RTOL
from microgpt.data import DEFAULT_DOC, data_path_from_env, read_docs
from microgpt.model import flat_params
from microgpt.optim import AdamConfig
from microgpt.recording import record_step
from microgpt.recording.codecs.binary import FRAME as ZSTD_FRAME
from microgpt.recording.codecs.validate import MAX_TRACE_BYTES
from microgpt.recording.lab import lab_step
from microgpt.recording.madeby import made_by
from microgpt.recording.paths import K as PATHS_LISTED
from microgpt.recording.rules import rule
from microgpt.sample import format_sample, sample
from microgpt.train import NUM_STEPS, SEED, format_step, fresh_model, start_run, train_step

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'

# Numbers in the README that are measured, not computed: timings and memory from the
# benchmarks (they vary by machine and load). Each is the README text that holds it.
MEASURED = [
    '5 chars | 52 ms | 32 ms | 34 ms | 43 ms | 56 ms',
    '7 chars | 67 ms | 44 ms | 45 ms | 58 ms | 76 ms',
    '12 chars | 136 ms | 78 ms | 79 ms | 104 ms | 133 ms',
    'medians of 7', '--reps 7', '(load average 1.8–3.7 from other jobs during the run)',
    'it is 1.5–1.7×\nfaster', 'a copy of columns: 29 ms for 12 characters',
    '(both checkouts run in alternation, 11 times, `maximilliano`), detaching went\nfrom 66 ms to 34 ms',
    'the whole recorded step from 158 ms to 143 ms (the forward pass pays\n16 ms for the ids)',
    'A recorded 12-character step keeps a Trace of 74 bytes per node (the bare\nengine\'s live graph: 232 bytes',
    'recording peaks at 410 bytes per node)',
    'record 298 ms and the reverse-edge index 180 ms',
    'compile, 1.4 s',
    '| 104 ms | 1.00×', '| 69 ms | 0.66×', '| 53 ms | 0.52×', '7 blocks of `--steps 20`',
    'native `dot` 0.39 s; WebAssembly Graphviz 0.50 s (1.28×)', 'user cache (0.3 ms), 2.05 s when it compiles (1.7 s)',
    'binary 36 ms (2.0 MiB), JSON 772 ms (22.6 MiB), recording 161 ms', '(12-letter name;', 'render --token 2',
    'version (or every', '10⁵ live',
    '~22 MB for a 12-letter name', '~2 MB, bit-exact', '(40 ms against 250 ms; the JSON: 770 ms)',
    'medians of 5',
    '| 193 ms | 216 ms |', '| 145 ms | 172 ms |', '| 30 ms | 34 ms |', '| 436 ms | 433 ms |', '| 17 ms | 23 ms |',
    'switching to a 12-character document', 'a frame step is ~3 ms',
    '(2-core machine shared with other jobs, load average 1–3 during the run',
    '15 ms | 16 ms | 532 ms',
    '137 ms | 30 ms | 707 ms',
    '1 ms | 12 ms | 500 ms',
    '26 ms | 24 ms | 552 ms',
    "within the benchmark's 60 s cap",
    'the node-level check of a 12-character trace takes\n1.4× one recorded step',
    'about 4–5 minutes',
    # benchmarks/bench_play.py (issue 26)
    "▶ 30 steps on the token view of 'emma' in Chromium;\n2-core machine at load average 23 from other jobs): "
    "0.70 steps/s shown on screen (0.75 training on\n'emma' itself), a median 1381 ms between steps; the "
    "server's CPU time 247 ms a step (165 ms on 'emma'\nitself), so 4.1 (6.1) steps/s on a free core; no "
    "layout made while playing; the longest frame gap\n317 ms (200 ms). Memory stays flat: RSS 106 MB at "
    "step 0, 116 MB at step 50, 113 MB at step 300.",
    # Quick start: the install sizes and times (issue 28's fresh-venv measurements), the suite's
    # wall time (tests/conftest.py SUITE_MINUTES, printed when pytest starts)
    'about 130 MB', 'about 10 s on a 2-core machine', 'about 480 MB',
    'about 9 minutes (it says so when it starts; 9 min 20 s in CI)',
    'about 30 s more to install, 45 MB',                    # JupyterLab in the test extra
    # benchmarks/bench_explorer_why.py (the why branch)
    "Figures (`python benchmarks/bench_explorer_why.py --reps 3`, 2 shared cores, medians): under `--inject "
    "exp-x2` the first failing node is marked 110 ms after the first view is drawn (target 2 s; the check itself "
    "takes 1.2 s and starts as the step is recorded); recording with the \"made by\" chains costs +33% (1.28 s vs "
    "0.96 s); paths of one cell 3.7 ms; the identities of a step 18 ms.",
    # stop 31: the step cache's progress line, the render floor, scale, play, the hostile harness
    '`recording: 42% (3 s left)`',
    "`storing 'christopher' in the user cache: 40% (3 s left)`", '(on a terminal after 1 s; in a log after 5 s, then every 5 s)',
    # explore's bar while it opens a step (tests/test_explorer_opening.py), its 503 and exit status
    '`opening\nanna.mgtrace: inflating: 45% (1 s left)`', 'the API answers 503', 'exits with status 2',
    'the 32 most recent', 'about 11 bytes\n  a node',
    '(the lines of `model.py` that made it: 0.02 bytes a node)',     # bench_open_trace (stop 34)
    '`python -m benchmarks.bench_startup --only floor --reps 5` — `render --doc christopher --token 11`\n'
    'against its floor (Python start + `import cli` + `dot` on the same DOT), medians of 5 alternated, load\n'
    '~1.7: with its step reused from the cache 0.397 s wall, 1.46× the floor (CPU 1.70×: numpy, imported when\n'
    'the cached step is checked, is 0.1 s of it); recording it (`--no-cache`) 0.895 s, 3.3×. `import\n'
    'microgpt_graph.cli` loads no explorer, tour, notebook or download code (`tests/test_cli_imports.py`).',
    # scale (bench_scale: stop 33, quiet; bench_explorer_scale), the notebook's first view (stop 32)
    '`python -m benchmarks.bench_scale --layers 4 --embd 64 --doc anna --reps 3` — one step of a 4-layer,\n'
    '64-wide model, its views served from what the trace stores (per-scope runs, the reverse-edge index,\n'
    "each matrix's share of the grad per position), CPU seconds of this process, quiet machine (load ~1),\n"
    "before layout: at 2,232,731 nodes ('anna') the binary file (29.6 B/node) loads in 1.6 s with nothing\n"
    'rebuilt (the v1 path: 8.3 s); first view 158 ms; token views 109–118 ms, a layer at every position\n'
    "117 ms, a head 28 ms, a cell 5 ms, the whole document 403 ms, a matrix's uses 347 ms. At 3,465,731\n"
    "nodes ('abigail') token views 125–178 ms, the whole document 625 ms, a matrix's uses 459 ms; at\n"
    "5,126,083 ('christopher', `--max-nodes 5600000`; re-measured at load ~0.4 after stop 38's numpy picks\n"
    "and a record's children added once) load 0.9 s (from 4.0 s), first view 237 ms, token views 125–133 ms,\n"
    'a layer at every position 172 ms, the whole document 251 ms (from 959 ms, 538 at stop 37; one more build:\n'
    "select 12 + fold 131 + draw 163 ms), a matrix's uses 280 ms (from 564 ms; 2.24 s before its use records). Saving such\n"
    'a step builds its use records and their figures too\n'
    '(11.2 s to save 5.1 M nodes after 17.7 s of indexes; the figures add 2.0 s of CPU and 41 kB).\n'
    'On disk 29.6–30.3 B/node in zlib (33.1 B/node in zstd frames), arrays 95–98 B/node, recording peaks at\n'
    '455–474 B/node; a load inflates one column at a time, one a thread for zstd (a 5.1 M-node file peaks at\n'
    '802 MB, 763 MB in zlib, from 1,122).\n'
    "`export --format json` of such a step would be over the loader's 512 MiB cap: it is refused before\n"
    'writing, naming `--format binary` (the streaming writer adds nothing over the loaded trace: 763 MB at\n'
    'the peak for 5.1 M nodes and 1,068 MiB of text).',
    # bench_explorer_scale, bench_explorer_store and bench_open_trace (stop 37, load 0.0-3.1)
    '`python -m benchmarks.bench_explorer_scale --doc christopher --reps 2` — the same in Chromium, end to end\n'
    'against `explore` in its own process (quiet machine, load 0.0–1.2, two runs), the step from the user cache\n'
    '(open in 2.3 s, from 5.6 s; then 4.6–6.9 s of work in the background: the routes from the loss, for why,\n'
    'and the contributions ranked, for `max:contrib`), new views timed once that work has ended: a median new\n'
    "view 271–319 ms (the server's 206–246 ms, of which layout 84–103 ms), a token view 334–471 ms (the\n"
    "server's 278–354 ms), at vector level 360–474 ms, a layer 202–271 ms, a head 151–196 ms; a matrix's uses\n"
    "527–774 ms, medians 546 and 711 ms (building it 229–299 ms: its uses, boundary and outputs' bundle read\n"
    "from the stored use records and its groups' figures from the figures stored with them, folded per run\n"
    'of the trace; its heat-map sent as 407 kB of colour indices and painted in the page; layout 151–259 ms,\n'
    'the page 84–131 ms). The server holds 849–858 MB at rest after these views (174–176 bytes a node). With\n'
    "`--extra` (one run after this stop's changes, load 2.5 falling to ~0: a median new view 303 ms, its page\n"
    '37 ms) every request a user makes answers under 1 s: the whole document 764 ms (from 1,074 ms: the\n'
    "server's 664 ms, building it 426 ms from 572, numpy picking its attention's edges into earlier positions;\n"
    '1,447 kB; the page 77 ms from 224, no layout forced before the camera frames it), expand clicks 427–947\n'
    "ms, the step-through's backward frames 578 ms, the update panel of a token view 208 ms, `max:grad` 373 ms,\n"
    "`max:contrib` 49 ms, `max:dw` 68 ms, a deep node's why 51 ms; 945 MB at rest after all of them.\n"
    '`python -m benchmarks.bench_explorer_store` — `explore` recording that step at start with an empty user\n'
    'cache (load ~2): the first view after 42.9 s, the step stored 60.1 s after start (from 70.3 s: it is\n'
    'recorded and stored in a process of its own, which hands the server its columns, then its use records\n'
    "before it writes the file); a matrix's uses asked during the store 1.13 s (from 1.96 s), 0.67 s after\n"
    "it; 803 MB at rest (from 998 MB: the recording's leftovers stay in that process), its peak 1,231 MB\n"
    '(from 2.36 GB; the recording process peaks apart, ~1.7 GB).\n'
    '\n'
    '`python -m benchmarks.bench_open_trace --case OLD c44.mgtrace --case . c44z.mgtrace --commands\n'
    'explore,cached,load,render,inspect --checkpoint big.json --reps 3` — a fresh process on a saved 5.1 M-node\n'
    "step (4 × 64, 'christopher'; OLD a checkout of the code before this stop on its zlib file, against this\n"
    'one on the same step saved now), alternated, medians of 3 at load 1.6–3.1: `explore --trace` shows the\n'
    'first view after 2.3 s (from 5.6 s: reading 0.1–0.2 s, inflating 0.4–0.8 s from 2.8–3.2, checking\n'
    '0.2–0.6 s from 1.5–1.6, drawing 0.5–0.9 s), the step read from the user cache after 2.5 s (from 5.8 s);\n'
    '`Trace.load` 0.8 s (CPU 1.0 s from 4.7: the body is zstd frames inflated on two threads, the checks are\n'
    'whole-column passes in numpy), its peak 802 MB (from 750); saving the loaded step 0.7 s (from 4.9 s) for\n'
    '169.9 MB (from 155.6: 33.1 B/node from 30.4); `render --trace` 1.6 s (from 5.4 s), `inspect --trace`\n'
    '2.5 s (from 6.8 s). The same step in a file written before version 3 (no "made by" lines, no share\n'
    'records): 20.2 s to the first view (the forward pass replayed 10.5 s, share records built 5.0 s),\n'
    '`render` 10.8 s (measured before zstd).',
    '`python -m benchmarks.bench_notebook --reps 5 --frontend both` on a quiet\n'
    '2-core machine (load 1–2), recording `emma` (`MICROGPT_NO_STEP_CACHE=1`): first view 814 ms in the\n'
    'harness (kernel 443 ms + front end 392 ms), 879 ms in JupyterLab (Ctrl+Enter to the paint); with the\n'
    'step reused from the cache 536 ms and 669 ms; a view change 194 ms in the widget against 195 ms on the\n'
    'HTTP page (228 ms in JupyterLab).',
    '190.6 kB as saved, 45.6 kB gzip-compressed',
    "over the\nloader's 512 MiB cap",
    "`python benchmarks/bench_play.py --steps 30 --rss-steps 100`",
    "so the server spends 155–180 ms of CPU a step (from 310–350 ms) plus\n"
    "90–104 ms in the child on the other core; at load ~8.5, 1.39 steps/s on screen (from 1.16), 1.85\n"
    "training on the shown document (from 1.42); memory flat over 100 steps (113 → 118 MB, child 54 MB).",
    "A fixed sample of 8 mutants in each of the 12 mapped modules",
    "all 96 tried in\nabout 89 min at load 5–26, 89 killed as run; the 7 survivors",
    "`nice python -m benchmarks.mutate --all --max 8 --budget 7200`", "(`--line N --max 0`)",
    "15 classes", "14,253 cases: 0 tracebacks, 0 files damaged, 0 processes left, 0 cross-origin effects (26.5 min at\n"
    "load ~20; exit 1 if any case is unclean). One case was unclean in that run — a test's own 30 s socket\n"
    "timeout under load, not the server; fixed, its class re-run clean (11 of 11).",
]
# Numbers that are not figures: versions, names, the arguments of a command shown above,
# the view an example draws.
NOT_FIGURES = [
    'Python 3.11+', 'torch==2.13.0', '2-core machines', '10⁵ live Values',
    'whole 1,000-step reference run',
    'after\ntraining the same 20 samples',                     # train ... --samples 20
    'every loss of the 1,000 steps and the 20 samples',        # tests/test_model.py's slow test
    'Position 2 of "emma"', 'attention head 0 opened',        # what examples 01 and 02 draw
    "factor=2.0",                                              # an API example's argument
    'keep its schedule (`--schedule 1000`)', 'train --steps 300 --schedule 1000',   # a command; and the step
    'exactly the update Adam takes at step 301',               # after its 300 is 301
    'py -3.12', 'python@3.12',                                 # platform notes: versions
    'list of 32,033\nnames from Karpathy', '228,145\nbytes', 'SHA-256',   # the names file's own size
    '(30 s without data)',                                    # the download's stall timeout
    # Explore: a key, example queries, the address
    '`grad ?` (not 0)', '(0 on top;',
    '`1` comes back', '(`4711`)', '(`pos:3 layer:0 head:2 role:attn_weights`)', 'binds 127.0.0.1',
    '`05` trains 300 steps', 'or the downloaded copy; it exits 2 saying so otherwise',
    '9-point\n  labels at 11 px',        # the explorer's start zoom: tests/test_explorer_browser.py measures it
    '`line:42`', 'a page of 100',         # an example query; the update panel's page (a browser test pages it)
    'is refused\nin one line (exit 2)', 'refused before any work (exit 2)',     # exit statuses
    'another port of 127.0.0.1',                                                 # an address
    'A grad of exactly 0 says', 'a local derivative of 0', 'a dead ReLU passes 0',   # what zero means
    'makemore part 3',                                                           # a lecture's title
    '© 2026',                                                                    # the licence's year
    "(`checks/nodes.py` 212 and 219, `train.py` 12 and 80, `model.py` 170, `trace.py` 452, "
    "`fold/folding.py` 284 and 298)",                                           # line numbers of mutants
    'Version 2 also stores', 'version 1 files still load', "issue 21's harness",  # format versions, an issue
    'before binary version 3', 'Version 3 adds',
]
# README sections (## headings) whose numbers this script does not recompute yet: they came
# with features added after it was written (issue 16's note lists them). The test fails on
# a section in neither list, so a new section cannot slip in unchecked.
NOT_YET_CHECKED = ['## Watch backprop happen', '## Your own script: record, draw and gradcheck it',
                   '## Errors and exit codes',
                   '## Reading a picture',                       # names and indices in examples, not figures
                   '## A story for a lecture (examples/)']       # example 05's figures: tests/test_examples.py
# The 1,000-step run's samples: `--slow` recomputes them; the tests read them from the reference
# run the transcription recorded (tests/golden/reference_run.json).
SLOW_FIGURES = {
    'samples after training': '(`sample  1: kamon`, `sample  2: ann`, `sample  3: karai`, …)',
}
# Checked only where the names data is (CI has it): the README's words, recomputed there.
NAMES_FIGURES = {
    'first five losses': '`step    1 / 1000 | loss 3.3660`, `3.4243`, `3.1778`, `3.0664`, `3.2209`, …',
}


def fmt_int(n):
    return f"{n:,}"


def sci(x):
    """1e-06 -> '1e-6', as the README writes a power of ten."""
    mantissa, exponent = f"{x:e}".split('e')
    return f"{float(mantissa):g}e{int(exponent)}"


def figures(names=None, slow=False, renderer='wasm'):
    """[(what, README text)]: every deterministic figure, computed now. `names`: the
    names data file (figures of the reproduction are left out without it)."""
    out = []
    params, config, tok = fresh_model(seed=SEED)

    # -- the default render line (the CLI's own words) --------------------------------------
    emma = record_step(params, config, tok, DEFAULT_DOC)
    view = build_view(emma)
    st = view.stats
    out.append(('render line', f"wrote {file_name(view, 'svg')}: {view.selection.title}; level {st['level']}, "
                               f"{st['nodes']} nodes shown, {st['edges']} edges, {st['folded_ops']} ops folded "
                               f"into summaries"))
    out.append(('trace size cap', f"(at most {MAX_TRACE_BYTES // 2 ** 20} MiB)"))
    out.append(('zstd frame', f"frames of at most {ZSTD_FRAME // 2 ** 20} MiB"))

    # -- levels and budget ---------------------------------------------------------------------
    per_pos = [len(emma.nodes(pos=p)) for p in emma.positions()]
    out.append(('ops per position', f"~{round(sum(per_pos) / len(per_pos), -3):,.0f} scalar ops"))
    last = emma.positions()[-1]
    q = [n for n in json.loads(view.to_json())['nodes'] if n['kind'] == 'group' and n['scope'][4] == 'q'
         and n['scope'][0] == last]
    assert len(q) == 1, q
    out.append(('a vector node', f"`q = Wq·x, {q[0]['n']} values · {sum(q[0]['ops'].values())} ops`"))
    out.append(('node budget', f"`--budget` visible nodes ({DEFAULT_BUDGET};"))
    out.append(('edge budget', f"`--edge-budget` edges ({DEFAULT_EDGE_BUDGET})"))
    out.append(('view limits', f"`--depth` 0..{MAX_DEPTH}, `--budget` 1..{MAX_BUDGET:,} nodes, `--edge-budget` "
                               f"1..{MAX_EDGE_BUDGET:,} edges"))
    out.append(('explorer budget', f"the budget ({DEFAULT_BUDGET} nodes / {DEFAULT_EDGE_BUDGET} edges, adjustable)"))
    out.append(('routes walked after the first view', f"a step of {WARM_ROUTES:,} nodes or more"))
    out.append(('recorded apart', f"A step of {APART:,} nodes or more is recorded\n  and stored in a process of its own"))
    out.append(('rmsnorm fan-out', f"an rmsnorm scale feeding {config.n_embd} products"))
    out.append(('timeout', f"`--timeout` seconds ({DEFAULT_TIMEOUT:g})"))
    # -- examples --------------------------------------------------------------------------------
    (cell,) = emma.param_nodes('layer0.attn_wq[3][5]')
    out.append(('uses of a cell', f"the sum of its {len(emma.uses(cell))} uses' contributions"))
    src = (ROOT / 'examples' / '05_layer_before_after_training.py').read_text()
    steps05 = int(re.search(r'def views\(steps=(\d+)[,)]', src).group(1))
    out.append(('example 05 steps', f"layer 0 before and after {steps05} training steps"))
    # -- debugging gradients ---------------------------------------------------------------------
    out.append(('gradcheck defaults', f"({AUTO_SAMPLE} random cells by default, `--param`, `--all-params`; "
                                      f"eps {sci(EPS)}, rel {sci(RTOL)}, abs {sci(ATOL)})"))
    # -- the reproduction --------------------------------------------------------------------------
    seed = inspect.signature(start_run).parameters['seed'].default
    out.append(('seed', f"With seed {seed} this prints"))
    if names is not None:
        run = start_run(read_docs(names), seed=SEED)
        losses = [train_step(run, k, NUM_STEPS) for k in range(5)]
        out.append(('first five losses', f"`{format_step(0, NUM_STEPS, losses[0])}`, "
                                         + ', '.join(f"`{x:.4f}`" for x in losses[1:]) + ', …'))
        if slow:
            for k in range(5, NUM_STEPS):
                train_step(run, k, NUM_STEPS)
            got = [sample(run.params, run.config, run.tokenizer, run.rng) for _ in range(20)]
            out.append(('samples after training', '(' + ', '.join(
                f"`{format_sample(i, s)}`" for i, s in enumerate(got[:3])) + ', …)'))
    # -- play it live, and the backprop lab ------------------------------------------------------
    out.append(('played run', f"(seed {SEED}, the shuffled names, Adam with lr {AdamConfig().lr} decaying to 0 "
                              f"over {NUM_STEPS} steps)"))
    out.append(('uniform baseline', f"baseline \u2212log(1/{config.vocab_size}) = {math.log(config.vocab_size):.3f}"))
    out.append(('played run = train', f"`train --steps k --schedule {NUM_STEPS}`"))
    rec, twice, assign = (lab_step(params, config, tok, DEFAULT_DOC, m) for m in ('recursive', 'twice', 'assign'))
    name = rec.correct.name
    uses = len(assign.correct.uses(assign.first))
    out.append(('lab firsts', f"`{name(rec.first)}` #{rec.first} (recursive: `{name(rec.cause)}` passed its grad "
                              f"on before all its uses had arrived), `{name(twice.first)}` #{twice.first} of the "
                              f"mean (twice: {twice.wrong.grad[twice.first] / twice.correct.grad[twice.first]:g}\u00d7 "
                              f"its grad) and `{name(assign.first)}` #{assign.first} (assign: used by {uses} ops, "
                              f"only the last contribution kept)"))
    # -- why is this grad what it is ----------------------------------------------------------
    norm_out = emma.nodes(pos=0, layer=0, block='attn', role='rmsnorm')[-1]     # made on rmsnorm's last line
    out.append(('made-by chain', f"its call chain (`{made_by(emma, norm_out)['chain_text']}`)"))
    out.append(('paths listed', f"the side panel lists the {PATHS_LISTED} routes from the loss"))
    out.append(('paths tested', f"tested on all {fmt_int(len(flat_params(params)))} parameters of `emma`"))
    e = next(i for i in range(len(emma)) if emma.op_name(i) == 'exp' and emma.data[i] != 1)  # not a lone key's
    out.append(('a rule', f"for `emma`'s `{emma.name(e)}`: `{rule(emma, e, 0)['text']}`"))
    out.append(('loss at init', f"the loss at init vs \u2212log(1/{config.vocab_size}) = {math.log(config.vocab_size):.3f}"))
    top = max(range(len(emma)), key=lambda i: abs(emma.grad[i]))
    assert emma.name(top) == f"const {1 / len(emma.positions()):g}", emma.name(top)     # the mean's 1/n
    out.append(('largest grad', f"the largest |grad| is the mean's 1/n constant, {abs(emma.grad[top]):.4g}"))
    # -- performance: the deterministic columns ------------------------------------------------
    chris = record_step(params, config, tok, 'christopher')
    out.append(('christopher', f"\"christopher\" ({len(chris.positions())} positions, {fmt_int(len(chris))} nodes)"))
    last = chris.positions()[-1]
    rows = [(f'token {last} (default)', {'token': last}), ('layer 0, every position', {'layer': 0}),
            ('cell `layer0.attn_wq[3][5]`', {'param': 'layer0.attn_wq[3][5]'}),
            ('matrix `layer0.attn_wq`', {'param': 'layer0.attn_wq'})]
    for label, q in rows:
        v = build_view(chris, **q)
        kb = len(render_view(v, 'svg', renderer=renderer)) / 1024
        out.append((f'bench row {label}', f"| {label} | {v.stats['level']} | {v.stats['nodes']} |"))
        out.append((f'bench svg {label}', f"| {kb:.0f} KB |"))
    from benchmarks.bench_export import naive_dot
    source, n = naive_dot(chris, last)
    out.append(('naive draw_dot', f"every scalar of position {last} ({fmt_int(n)} values, "
                                  f"{fmt_int(source.count(' -> '))} edges)"))
    out.append(('forward passes', f"on a 5-character document ({fmt_int(1 + 2 * len(flat_params(params)))} "
                                  f"forward passes)"))
    return out


def prose(text):
    """README text a reader sees as prose: fenced code blocks removed."""
    return re.sub(r'```.*?```', '', text, flags=re.S)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--names', default=None, help='the names data (default: $MICROGPT_DATA or ../shared/data)')
    ap.add_argument('--slow', action='store_true', help='also the samples after the 1,000-step run')
    args = ap.parse_args(argv)
    named = data_path_from_env()
    names = args.names or (named and str(named[0])) or str(ROOT.parent / 'shared' / 'data' / 'names.txt')
    names = names if Path(names).exists() else None
    readme = README.read_text()
    bad = 0
    for what, text in figures(names, slow=args.slow):
        ok = text in readme or text.replace('\n', ' ') in ' '.join(readme.split())
        bad += not ok
        print(f"{'ok  ' if ok else 'DIFF'} {what}: {text}")
    print(f"\n{bad} figure(s) differ from README.md" if bad else "\nevery figure matches README.md")
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
