"""Which line of code made a node: the innermost line of the model, with its call chain.

    made_by(trace, node)
    {'file': 'microgpt/model.py', 'line': 89, 'function': 'rmsnorm', 'code': 'return [xi * scale for xi in x]',
     'chain': [['gpt', 110], ['rmsnorm', 89]], 'chain_text': 'gpt:110 → rmsnorm:89',
     'derivative_at': 'microgpt/engine.py:58'}

A learner reading model.py beside the picture needs the line inside rmsnorm, softmax
or linear that made the op, not the call site in gpt(). Scopes cannot say it (they are
set around the call), so the forward pass is replayed once per trace, recorded with
the same tape (the same node ids, in the same order), while each primitive op looks
up the Python stack that asked for it: the frames in model.py, comprehensions folded
into their function, the innermost line last. The chain starts at the outermost frame
whose line sits inside a `with scope(...)` block (sourcemap.SourceMap): what drives
the model from outside (doc_loss's loop calling gpt()) is left out. The replay must
make the trace's own ops in the trace's own order (the op columns are compared), or
it is not used: made_by then falls back to the scope's line (SourceMap.line_of).

The chains can also be captured while the step is first recorded (record_step(lines=True),
which the explorer's recordings do): no replay then. Either way they are kept on the trace,
and a binary file stores them (codecs.binary version 3: `export`, the user step cache), so a
trace loaded from one never replays either.
Cost: a stack walk per op (a few frames; the last call sites are remembered), about as much
as recording the forward pass again (benchmarks/bench_explorer_why.py). The replay records,
so like every recording it swaps the engine's ops for the whole process: not while another
recording runs (the explorer replays a loaded trace before it serves, and holds its
recordings' lock otherwise).

A trace recorded from a user's script already carries, per node, its call line, the
enclosing functions and the line where its derivative is written (recording.sources):
made_by reads those.
"""

import ast
import inspect
import sys
from array import array
from contextlib import contextmanager

from .. import engine, model, tags
from ..model import GPTConfig, doc_loss
from .ops import OP_CODE
from .sourcemap import SourceMap, parse
from .tape import record

REPLAYING = 'replaying the forward pass'    # the phase of replay_chains's progress
_COMPREHENSIONS = ('<listcomp>', '<genexpr>', '<setcomp>', '<dictcomp>', '<lambda>')
_RECENT = 4         # call sites remembered (see _Stacks.mark)
MODEL_FILE = 'microgpt/model.py'
ENGINE_FILE = 'microgpt/engine.py'


def derivative_lines():
    """{op: line of microgpt/engine.py where its local derivative is written}: the line of
    the primitive's `return Value(...)`, found by reading engine.py's source (the class's
    methods may be wrapped while a recording or a fault is in force)."""
    tree = parse(inspect.getsource(engine), ENGINE_FILE)
    methods = {}
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef) and cls.name == 'Value':
            methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    out = {}
    for op, attr in engine.PRIMITIVES.items():
        fn = methods.get(attr)
        if fn is not None:
            returns = [n.lineno for n in ast.walk(fn) if isinstance(n, ast.Return)]
            out[op] = max(returns) if returns else fn.lineno
    return out


class _Stacks:
    """Interns the model.py call chain of each op as it is made; marks runs of node ids."""

    def __init__(self, tape, sources):
        self.tape = tape
        self.model_file = model.__file__
        self.engine_file = engine.__file__
        self.tagged = {}            # function name -> [(first, last)] lines inside `with scope` blocks
        for _fields, a, b, fn in sources.blocks:
            self.tagged.setdefault(fn, []).append((a, b))
        self.chains, self.ids = [], {}
        self.marks = []             # (first node id, chain id)
        self.recent = []            # the last ops' (frame, line, resumer, its line, chain id)

    def chain(self, frame):
        """(function, line) frames of model.py, outermost first, comprehensions folded in;
        `frame` is the first frame outside engine.py."""
        out = []
        while frame is not None and frame.f_code.co_filename == self.model_file:
            name, line = frame.f_code.co_name, frame.f_lineno
            if out and out[-1][0] in _COMPREHENSIONS:
                out[-1] = (name, out[-1][1])         # a comprehension's line, its function's name
            else:
                out.append((name, line))
            frame = frame.f_back
        out.reverse()
        while len(out) > 1 and not self._in_scope(*out[0]):
            out.pop(0)                               # the driver (doc_loss's loop), not the model's
        return tuple(out)

    def _in_scope(self, fn, line):
        return any(a <= line <= b for a, b in self.tagged.get(fn, ()))

    def wrap(self, name, current):
        values = self.tape.values
        mark = self.mark
        if engine.ARITY[name] == 2 or name == 'pow':
            def op(a, b):
                n0 = len(values)
                out = current(a, b)
                mark(n0, sys._getframe(1))
                return out
        else:
            def op(a):
                n0 = len(values)
                out = current(a)
                mark(n0, sys._getframe(1))
                return out
        return op

    def mark(self, n0, frame):
        engine_file = self.engine_file
        while frame is not None and frame.f_code.co_filename == engine_file:
            frame = frame.f_back                     # a derived op (__sub__, __radd__, ...)
        back = frame.f_back if frame is not None else None
        # the frames above `back` are suspended in the calls that led here and keep their lines;
        # only a generator's resumer (`back`) may change: same four, same chain (no walk). A few
        # are kept: a sum over a generator alternates between the generator's frame and its caller's
        line, bline = (frame.f_lineno if frame is not None else 0), (back.f_lineno if back is not None else 0)
        for f, ln, b, bl, c in self.recent:
            if f is frame and ln == line and b is back and bl == bline:
                cid = c
                break
        else:
            chain = self.chain(frame)
            cid = self.ids.get(chain)
            if cid is None:
                cid = self.ids[chain] = len(self.chains)
                self.chains.append(chain)
            self.recent.insert(0, (frame, line, back, bline, cid))
            del self.recent[_RECENT:]
        if not self.marks or self.marks[-1][1] != cid:
            self.marks.append((n0, cid))

    def done(self):
        """Let go of the frames the fast path held."""
        self.recent = []


@contextmanager
def capturing(tape):
    """Inside `record()`, around the forward pass: each op made in the block gets its call chain
    (yields the _Stacks; `keep_chains` puts them on the detached Trace). record_step(lines=True)."""
    stacks = _Stacks(tape, SourceMap())
    try:
        with engine.patched_ops(stacks.wrap):
            yield stacks
    finally:
        stacks.done()


def keep_chains(trace, stacks):
    """Put the chains captured while `trace` was recorded on it, where made_by reads them."""
    trace._cache['made_by'] = _per_node(trace, stacks)


def kept_chains(trace):
    """(chain id per node, [chain]) kept on `trace` (captured, replayed or read from the step
    cache), or None when it has none yet (or its replay failed: False is kept then)."""
    got = trace._cache.get('made_by')
    return got or None


def put_chains(trace, chains):
    """Keep (chain id per node, [chain]) on `trace`: what made_by reads (the step cache's copy)."""
    trace._cache['made_by'] = chains


def _per_node(trace, stacks):
    per_node = array('i', [-1]) * len(trace)       # as a binary file stores it (codecs.binary)
    marks = stacks.marks + [(len(stacks.tape.values), None)]
    param = OP_CODE['param']
    for (a, cid), (b, _) in zip(marks, marks[1:]):
        for i in range(a, min(b, len(trace))):
            if trace.op[i] != param:
                per_node[i] = cid
    return per_node, stacks.chains


def replay_chains(trace, progress=None, phase=REPLAYING):
    """(chain id per node (-1: none, e.g. a parameter), [chain]) by replaying the trace's
    forward pass; None when it cannot be replayed or does not make the trace's ops.
    `progress(phase, done, total)`: told `phase` ('replaying the forward pass') per position."""
    meta = trace.meta
    if trace.source is not None or 'config' not in meta or 'tokens' not in meta:
        return None
    try:
        config = GPTConfig(**meta['config'])
    except (TypeError, ValueError):
        return None
    params = {}
    for name in trace.param_names:
        rows, cols = trace.param_shapes[name]
        base = trace.param_base[name]
        params[name] = [[engine.Value(trace.data[base + r * cols + c]) for c in range(cols)] for r in range(rows)]
    try:
        with record(params) as tape, capturing(tape) as stacks:
            if progress is not None:
                report_positions(progress, len(meta['tokens']) - 1, phase)
            doc_loss(params, config, list(meta['tokens']))
    except (ValueError, ArithmeticError, LookupError, TypeError):
        return None     # not the port's model (another parameter table, tokens out of range): no chains
    if len(tape.values) != len(trace) or tape.ops.tobytes() != trace.op.tobytes():
        return None
    if progress is not None:
        progress(phase, len(meta['tokens']) - 1, len(meta['tokens']) - 1)
    return _per_node(trace, stacks)


def report_positions(progress, n_positions, phase):
    """Tell `progress(phase, pos, n_positions)` each position the forward pass enters: the port's
    scope hook says when (a listener around the tape's own, which record() restores when it ends)."""
    tape_listener = tags.listen(None)
    last = [-1]         # positions are entered in order

    def listener(fields):
        pos = fields.get('pos')
        if pos is not None and pos > last[0]:
            last[0] = pos
            progress(phase, pos, n_positions)
        return tape_listener(fields)
    tags.listen(listener)


def replay(trace, progress=None, phase=REPLAYING):
    """Make `trace`'s chains now (what made_by reads), replaying its forward pass if it needs it
    (needs_replay; the caller holds the engine's lock then), telling `progress` how far it is
    (as `phase`): the explorer does it while opening a saved trace that lacks them, before any
    view asks; `export` before it writes a binary file."""
    if needs_replay(trace):
        trace._cache['made_by'] = replay_chains(trace, progress, phase) or False


def needs_replay(trace):
    """Whether made_by would replay `trace`'s forward pass, which patches the engine for the
    whole process (its caller then holds the engine's lock): a port trace whose chains were
    neither captured as it was recorded nor replayed yet."""
    return trace.source is None and 'made_by' not in trace._cache


def made_by(trace, node, sources=None):
    """Where node `node` was made (see the module docstring), or None when nothing is known
    (a leaf of a script, a trace the replay cannot reproduce and whose scope no block of
    model.py sets). `sources`: a SourceMap to reuse."""
    src = trace.source_of(node)
    if src is not None:
        return _from_script(trace, src)
    if trace.source is not None:
        return None
    replay(trace)
    got = trace._cache['made_by']
    sources = sources or SourceMap()
    if got and got[0][node] >= 0:
        chain = got[1][got[0][node]]
        fn, line = chain[-1]
        d = {'file': MODEL_FILE, 'line': line, 'function': fn, 'code': sources.code(line),
             'chain': [list(c) for c in chain], 'chain_text': ' → '.join(f'{f}:{ln}' for f, ln in chain)}
    else:
        d = sources.line_of(trace.scope_of(node))
        if d is None:
            return None
        d = dict(d, chain=[[d['function'], d['line']]], chain_text=f"{d['function']}:{d['line']}")
    op = trace.op_name(node)
    lines = derivative_lines()
    if op in lines:
        d['derivative_at'] = f'{ENGINE_FILE}:{lines[op]}'
    return d


def _from_script(trace, src):
    funcs = list(src.funcs) or ['<module>']
    d = {'file': src.file, 'line': src.line, 'function': funcs[-1], 'code': src.text, 'script': True,
         'chain': [[f, None] for f in funcs[:-1]] + [[funcs[-1], src.line]],
         'chain_text': ' → '.join(funcs[:-1] + [f'{funcs[-1]}:{src.line}'])}
    if (src.op_file, src.op_line) != (src.file, src.line):
        d['op_at'] = f'{src.op_file}:{src.op_line}'
    if src.grad_line:
        d['derivative_at'] = f'{src.op_file}:{src.grad_line}'
    return d
