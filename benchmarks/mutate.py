"""A small mutation-testing pass: would the tests notice a wrong line?

    nice python -m benchmarks.mutate microgpt/optim.py microgpt/train.py --max 25
    nice python -m benchmarks.mutate --all --max 8 --budget 7200
    nice python -m benchmarks.mutate microgpt/checks/nodes.py --line 212 --line 219 --max 0

`--all` covers the 12 mapped modules (2,000-odd mutants in all: hours of machine time), so
it tries a fixed sample of `--max` per module and shares `--budget` out between the modules
left, so a slow module cannot starve the ones after it (its clean run counts against its
share: the fold modules' maps take ~5 min clean under load). Measured with --budget 3600 on 2
cores shared by 6 sessions (load 5-26): 44 of the 96 tried in 3,819 s, hence 7200. `--line N`
tries every mutant on line N of each module named (with `--max 0`, only those): to replay a
survivor after a new test.

For each module: make simple mutants one at a time (flip + and -, * and /, < and <=,
> and >=, == and !=, `and` and `or`; an integer constant +1 or -1; True and False; drop
one single-line statement), run a fast, targeted subset of the tests on a copy of the
tree (never on the working tree), and list the mutants no test killed ("survivors").
Each mutant gets a timeout of 3x the subset's clean time + 10 s (a timeout counts as
killed: the mutant made the code hang). Which mutants are made is deterministic
(`--max` picks them with Random(0)). Not part of CI: minutes of machine time.

Uses no third-party mutation tool: mutmut 3 copies and instruments the whole tree and
runs the whole suite to map tests to functions first, more than two shared cores allow.
"""

import argparse
import ast
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# module -> the fast tests that should notice a wrong line in it (fastest first: -x stops early)
TESTS = {
    'microgpt/engine.py': ['tests/test_engine.py', 'tests/test_model.py'],
    'microgpt/model.py': ['tests/test_model.py'],
    'microgpt/optim.py': ['tests/test_model.py', 'tests/test_call_order.py'],
    'microgpt/train.py': ['tests/test_update.py', 'tests/test_model.py', 'tests/test_call_order.py',
                          'tests/test_cli_values.py'],     # test_update: NUM_STEPS is lr_t's schedule
    'microgpt/recording/trace.py': ['tests/test_trace.py', 'tests/test_record.py'],
    'microgpt/checks/nodes.py': ['tests/test_gradcheck_nodes.py', 'tests/test_gradcheck_script.py'],
    'microgpt/checks/findings.py': ['tests/test_gradcheck_nodes.py', 'tests/test_gradcheck_script.py'],
    'microgpt/recording/script/closures.py': ['tests/test_gradcheck_script.py'],
    'microgpt/recording/script/params.py': ['tests/test_gradcheck_script.py'],
    'microgpt/recording/script/build.py': ['tests/test_gradcheck_script.py', 'tests/test_record_script.py'],
    'graphviz_export/fold/folding.py': ['tests/test_export_golden.py', 'tests/test_export_fold.py',
                                'tests/test_cli_values.py'],
    'graphviz_export/fold/summary.py': ['tests/test_export_fold.py', 'tests/test_cli_values.py',
                                   'tests/test_export_draw.py'],
}
PYTEST_ARGS = ['-x', '-q', '-p', 'no:cacheprovider', '-m', 'not slow']

SWAP_OPS = {'+': '-', '-': '+', '*': '/', '/': '*', '<': '<=', '<=': '<', '>': '>=', '>=': '>',
            '==': '!=', '!=': '==', '+=': '-=', '-=': '+=', '//': '*'}
SWAP_NAMES = {'and': 'or', 'or': 'and', 'True': 'False', 'False': 'True'}


@dataclass
class Mutant:
    path: str
    line: int           # 1-based
    col: int
    old: str            # the source line before
    new: str            # the source line after
    kind: str

    def describe(self):
        return f"{self.path}:{self.line} [{self.kind}]  {self.old.strip()}  ->  {self.new.strip()}"


def docstring_lines(tree):
    """Lines of docstrings (never mutated)."""
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, 'body', None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            out.update(range(body[0].lineno, body[0].end_lineno + 1))
    return out


def mutants(path):
    """Every simple mutant of the module at `path` (relative to ROOT), in source order."""
    src = (ROOT / path).read_text()
    lines = src.splitlines(keepends=True)
    tree = ast.parse(src)
    skip = docstring_lines(tree)
    out = []

    def replace(tok, new, kind):
        (r, c), (r2, c2) = tok.start, tok.end
        if r != r2 or r in skip:
            return
        old = lines[r - 1]
        out.append(Mutant(path, r, c, old, old[:c] + new + old[c2:], kind))


    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.OP and tok.string in SWAP_OPS:
            replace(tok, SWAP_OPS[tok.string], 'operator')
        elif tok.type == tokenize.NAME and tok.string in SWAP_NAMES:
            replace(tok, SWAP_NAMES[tok.string], 'operator')
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            n = int(tok.string)
            replace(tok, str(n + 1), 'constant+1')
            if n > 0:
                replace(tok, str(n - 1), 'constant-1')
    # drop one single-line statement inside a function (replaced by `pass`)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for st in ast.walk(node):
                if isinstance(st, (ast.Assign, ast.AugAssign, ast.Expr, ast.Return, ast.Raise)) \
                        and st.lineno == st.end_lineno and st.lineno not in skip:
                    old = lines[st.lineno - 1]
                    indent = old[:len(old) - len(old.lstrip())]
                    new = indent + ('return None' if isinstance(st, ast.Return) else 'pass') + '\n'
                    if new.strip() == old.strip():
                        continue                    # `return None` dropped is itself: no mutant
                    out.append(Mutant(path, st.lineno, st.col_offset, old, new, 'drop statement'))
    out.sort(key=lambda m: (m.line, m.col, m.kind))
    return out


def copy_tree(dest):
    """The tracked files (as in the working tree) copied to `dest`."""
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split('\0'):
        if name and (ROOT / name).is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)


def run_tests(tree, tests, timeout):
    """(killed, seconds): the tests failed (or hung past `timeout`) on `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE='1')
    t = time.perf_counter()
    try:
        r = subprocess.run([PYTHON, '-m', 'pytest', *PYTEST_ARGS, *tests], cwd=tree, env=env,
                           capture_output=True, timeout=timeout)
        failed = r.returncode != 0
    except subprocess.TimeoutExpired:
        failed = True
    return failed, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('modules', nargs='*', help='paths relative to the repository (default with --all: '
                                               + ', '.join(TESTS) + ')')
    ap.add_argument('--all', action='store_true', help='every module with a test map')
    ap.add_argument('--max', type=int, default=20, help='mutants per module (Random(0) picks them)')
    ap.add_argument('--budget', type=float, default=1800, help='seconds for the whole pass; stops after')
    ap.add_argument('--line', type=int, action='append', default=[],
                    help='also try every mutant on this line (repeatable); --max 0: only these')
    ap.add_argument('--list', action='store_true', help='only list the mutants')
    args = ap.parse_args(argv)
    modules = list(TESTS) if args.all else args.modules
    for m in modules:
        if m not in TESTS:
            ap.error(f"no test map for {m!r}; known: {', '.join(TESTS)}")
    start = time.perf_counter()
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    survivors, total, killed = [], 0, 0
    with tempfile.TemporaryDirectory(prefix='mutate-') as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        for n, path in enumerate(modules):
            ms = mutants(path)
            chosen = ms if len(ms) <= args.max else random.Random(0).sample(ms, args.max)
            chosen += [m for m in ms if m.line in args.line and m not in chosen]
            chosen.sort(key=lambda m: (m.line, m.col, m.kind))
            # this module's share of what is left, so the last module still gets its turn
            deadline = start + args.budget - (args.budget - (time.perf_counter() - start)) \
                * (1 - 1 / (len(modules) - n))
            print(f"\n== {path}: {len(ms)} mutants, trying {len(chosen)}; tests: {' '.join(TESTS[path])}",
                  flush=True)
            if args.list:
                for m in chosen:
                    print('  ' + m.describe())
                continue
            clean, base = run_tests(tree, TESTS[path], timeout=900)
            if clean:
                print(f"  the tests fail on the unmutated tree; skipped ({base:.0f} s)")
                continue
            target = tree / path
            original = target.read_text()
            lines = original.splitlines(keepends=True)
            for m in chosen:
                if time.perf_counter() > deadline:
                    print(f"  this module's share of the {args.budget:.0f} s budget is spent; "
                          f"{len(chosen) - chosen.index(m)} mutants not tried")
                    break
                mutated = lines[:m.line - 1] + [m.new] + lines[m.line:]
                target.write_text(''.join(mutated))
                try:
                    dead, secs = run_tests(tree, TESTS[path], timeout=3 * base + 10)
                finally:
                    target.write_text(original)
                total += 1
                killed += dead
                print(f"  {'killed ' if dead else 'SURVIVED'} {secs:5.1f}s  {m.describe()}", flush=True)
                if not dead:
                    survivors.append(m)
    print(f"\n{killed} of {total} mutants killed in {time.perf_counter() - start:.0f} s "
          f"(load average at the end: {os.getloadavg()[0]:.1f}); {len(survivors)} survived:")
    for m in survivors:
        print('  ' + m.describe())
    return 0


if __name__ == '__main__':
    sys.exit(main())
