"""Which line of the model code made a node: scope fields -> a line of microgpt/model.py.

The model tags its ops with nested `with scope(pos=..., block='attn'):` /
`with scope(role='q'):` blocks. Read once (ast over the model's source at server
start), each `with scope(...)` gives the fields it sets, merged with those of the
blocks around it: a constant ('attn') must equal the node's field, a variable
(pos=pos_id) must be set. A node's line is the body of the innermost block that
matches its scope, so `q` maps to `q = linear(x, params[...attn_wq])`.
"""

import ast
import inspect
import threading

from .. import model as _model
from .scopes import FIELDS

_ANY = object()     # a field set from a variable: matches any value but None
# One thread at a time builds an AST: CPython 3.11 keeps the AST builder's recursion depth in
# state its threads share (python/cpython#106905), so two parses at once can fail with
# "SystemError: AST constructor recursion depth mismatch" (seen in the explorer: its node check
# reading engine.py while a recording thread read model.py).
_PARSING = threading.Lock()


def parse(source, filename='<unknown>'):
    """ast.parse(source, filename), never in two threads at once (see _PARSING)."""
    with _PARSING:
        return ast.parse(source, filename)


def _scope_fields(node):
    """{field: constant or _ANY} of a `scope(...)` call, else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'scope'):
        return None
    out = {}
    for kw in node.keywords:
        if kw.arg in FIELDS:
            out[kw.arg] = kw.value.value if isinstance(kw.value, ast.Constant) else _ANY
    return out


class SourceMap:
    def __init__(self, module=_model):
        source, start = inspect.getsourcelines(module)
        self.path = inspect.getsourcefile(module)
        self.lines = source
        self.first = start or 1     # a module's source starts at line 1 (inspect says 0)
        self.blocks = []     # (fields, first line, last line, function name), outer blocks first
        tree = parse(''.join(source), self.path or '<unknown>')
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef):
                self._walk(fn.body, {}, fn.name)
        self.params_line = self._def_line(tree, 'init_params')

    def _def_line(self, tree, name):
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef) and fn.name == name:
                return fn.body[-1].lineno
        return None

    def _walk(self, body, outer, fn):
        for stmt in body:
            if isinstance(stmt, ast.With):
                fields = dict(outer)
                tagged = False
                for item in stmt.items:
                    f = _scope_fields(item.context_expr)
                    if f is not None:
                        fields.update(f)
                        tagged = True
                if tagged:
                    self.blocks.append((fields, stmt.body[0].lineno, stmt.body[-1].end_lineno, fn))
                self._walk(stmt.body, fields if tagged else outer, fn)
            else:
                for name in ('body', 'orelse', 'finalbody'):
                    sub = getattr(stmt, name, None)
                    if isinstance(sub, list):
                        self._walk(sub, outer, fn)

    def line_of(self, scope):
        """{'file', 'line', 'function', 'code'} for a scope tuple, or None when no block matches."""
        if scope[2] == 'params':
            if self.params_line is None:
                return None
            return self._entry(self.params_line, self.params_line, 'init_params')
        best = None
        for fields, a, b, fn in self.blocks:
            ok = all((scope[FIELDS.index(f)] is not None) if v is _ANY else scope[FIELDS.index(f)] == v
                     for f, v in fields.items())
            # a block that sets no role cannot claim a node whose role is set (and vice versa)
            ok = ok and all((f in fields) == (scope[FIELDS.index(f)] is not None) for f in ('head', 'role'))
            if ok and (best is None or len(fields) >= len(best[0])):
                best = (fields, a, b, fn)
        if best is None:
            return None
        return self._entry(best[1], best[2], best[3])

    def code(self, line):
        """The text of one line of model.py, stripped."""
        k = line - self.first
        return self.lines[k].strip() if 0 <= k < len(self.lines) else ''

    def _entry(self, a, b, fn):
        text = [self.lines[k - self.first].rstrip() for k in range(a, min(b, a + 1) + 1)]
        indent = min(len(t) - len(t.lstrip()) for t in text if t.strip())
        return {'file': 'microgpt/model.py', 'line': a, 'function': fn,
                'code': '\n'.join(t[indent:] for t in text)}
