"""Where a node was made, read from the Python stack of the user's own code.

For every node created during the recorded step the recorder asks `Places.here()`
for two small ints: a source id and a scope id.

    source  (file, line, funcs, text, op_file, op_line): the call line is the first
            frame of the user's code outside the autograd class's methods (the line
            of the model that asked for the op, e.g. `x = [xi * scale for xi in x]`),
            funcs the enclosing user functions outermost first (comprehensions and
            the module left out), op_line the innermost user frame, i.e. the line
            inside the class (or helper) that built the node and its derivative.
    scope   (pos, layer, block, head, role) as the port's scopes: block is the
            innermost enclosing function ('module' at top level), role 'line N'
            (or 'file.py:N' for another file of the folder), pos/layer/head
            read from loop variables (below).

Loop variables. A tag (pos, layer, head) has candidate variable names in order of
preference (DEFAULT_TAGS; `--tag pos=NAME` replaces them). For each candidate, the
user frames are searched innermost first; the first int value found wins. A
variable counts in a frame only while it means the loop's current value: it is an
argument of the frame's function, a local of a comprehension, or the frame's line
lies inside a `for` statement that binds that name (found once per file with the
ast module). So `pos_id` after `for pos_id in range(n):` has ended no longer tags
the mean loss computed below the loop.

Cost: one walk up the stack per node (a few frames), one dict look-up per frame
for what is known about its code object, and `frame.f_locals` only for frames
whose code has a tag variable live at the current line.
"""

import ast
import linecache
import os

from ..sourcemap import parse
from ..sources import Source

DEFAULT_TAGS = {
    'pos': ('pos_id', 'pos', 't'),
    'layer': ('li', 'layer', 'l'),
    'head': ('h', 'head'),
}
TAG_FIELDS = ('pos', 'layer', 'head')
_COMPREHENSIONS = ('<listcomp>', '<genexpr>', '<setcomp>', '<dictcomp>')


class _Code:
    """What is known about one code object of the user's files."""
    __slots__ = ('file', 'in_class', 'module', 'name', 'tag_vars', 'tags', 'user')

    def __init__(self, user, in_class=False, module=False, name=None, tags=(), file=None):
        self.user, self.in_class, self.module, self.name, self.tags, self.file = \
            user, in_class, module, name, tags, file
        self.tag_vars = tuple(t[0] for t in tags)


_NOT_USER = _Code(False)


def parse_tags(specs):
    """['pos=pos_id', 'head=hh'] -> {'pos': ('pos_id',), ...} over DEFAULT_TAGS.
    Raises ValueError naming a bad spec and what is allowed."""
    tags = dict(DEFAULT_TAGS)
    for spec in specs or ():
        field, sep, name = spec.partition('=')
        field, name = field.strip(), name.strip()
        if not sep or field not in TAG_FIELDS or not name.isidentifier():
            raise ValueError(f"--tag {spec!r}: write FIELD=VARIABLE with FIELD one of "
                             f"{', '.join(TAG_FIELDS)} and a Python variable name, e.g. pos=pos_id")
        tags[field] = (name,)
    return tags


def loop_ranges(path):
    """{name: [(first line, last line)]} of every `for` statement (and comprehension)
    in the file that binds the name."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return {}
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.AsyncFor)):
            targets, span = [node.target], (node.lineno, node.end_lineno)
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)):
            targets, span = [g.target for g in node.generators], (node.lineno, node.end_lineno)
        else:
            continue
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    out.setdefault(n.id, []).append(span)
    return out


class Places:
    """Interns (source, scope) of the nodes made during the recorded step."""

    def __init__(self, folder, script, class_codes, tags=None, exclude=()):
        self.folder = folder.rstrip(os.sep) + os.sep
        self.script = script
        self.class_codes = class_codes      # ids of the code objects of the autograd class's methods
        self.exclude = tuple(e.rstrip(os.sep) + os.sep for e in exclude)
        tags = tags or DEFAULT_TAGS
        # variable name -> (tag field index in (pos, layer, head), preference rank)
        self.wanted = {}
        for k, field in enumerate(TAG_FIELDS):
            for rank, name in enumerate(tags.get(field, ())):
                self.wanted.setdefault(name, (k, rank))
        self.codes = {}     # id(code object) -> _Code
        self._keep = []
        self.files = {}     # filename -> (relative name, loop ranges) for user files
        self.sources, self.source_ids = [], {}
        self.scopes, self.scope_ids = [], {}
        self.scope_keys = {}  # (source id, pos, layer, head) -> scope id
        self.keys = {}        # (op code, op line, call) -> (source id, scope id)
        self.calls, self.call_ids = [], {}
        self._frames = {}     # call frame -> (line, own loop variables, call part)
        self.found = {}     # tag field -> variable names that tagged some node

    # -- code objects ---------------------------------------------------------------------
    def _user_file(self, filename):
        info = self.files.get(filename)
        if info is None:
            path = os.path.realpath(filename) if not filename.startswith('<') else filename
            user = (path.startswith(self.folder) and not path.startswith(self.exclude)
                    and 'site-packages' not in path)
            info = self.files[filename] = ((os.path.relpath(path, self.folder), loop_ranges(path))
                                           if user else False)
        return info

    def _code(self, code):
        info = self._user_file(code.co_filename)
        if not info:
            c = _NOT_USER
        else:
            rel, ranges = info
            name = code.co_name
            module = name == '<module>'
            comp = name in _COMPREHENSIONS
            args = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
            names = () if module else code.co_varnames + code.co_cellvars
            tags = []
            for var, (field, rank) in self.wanted.items():
                if module or var in names:
                    always = (comp and var in names) or var in args
                    tags.append((var, field, rank, None if always else ranges.get(var, ())))
            label = getattr(code, 'co_qualname', name).replace('<locals>.', '')
            c = _Code(True, id(code) in self.class_codes, module,
                      None if module or comp else label, tuple(tags), rel)
        self.codes[id(code)] = c   # by id, cheap to hash; _keep holds the code so the id stays its
        self._keep.append(code)
        return c

    # -- one node -----------------------------------------------------------------------------
    def here(self, frame):
        """(source id, scope id) of a node being created by the code running in `frame`."""
        get = self.codes.get
        f = frame
        info = get(id(f.f_code)) or self._code(f.f_code)
        while not info.user:          # our own frames, the standard library: up to the user's
            f = f.f_back
            if f is None:
                return self._unknown()
            info = get(id(f.f_code)) or self._code(f.f_code)
        op_code, op_line, first, op_info = f.f_code, f.f_lineno, f, info
        while info.in_class or not info.user:   # out of the autograd class: the model's line
            f = f.f_back
            if f is None:
                f, info = first, op_info
                break
            info = get(id(f.f_code)) or self._code(f.f_code)
        line = f.f_lineno
        own = tuple(map(f.f_locals.get, info.tag_vars)) if info.tags else None
        # a frame seen at the same line (with the same values of its own loop variables)
        # gives the same answer: the frames outside it are paused while it runs. The
        # cache holds the frames, so no other frame can reuse their identity.
        cache = self._frames
        hit = cache.get(f)
        if hit is not None and hit[0] == line and hit[1] == own:
            call = hit[2]
        else:
            call = self._call(f, info)
            if len(cache) >= 256:
                cache.clear()
            cache[f] = (line, own, call)
        key = (id(op_code), op_line, call)
        out = self.keys.get(key)
        if out is None:
            out = self.keys[key] = self._intern(op_info.file, op_line, *self.calls[call])
        return out

    def _call(self, f, info):
        """The id of (file, line, funcs, pos, layer, head) from the call frame `f` outward."""
        get = self.codes.get
        file, line = info.file, f.f_lineno
        funcs = []
        best = [None, None, None]
        rank = [99, 99, 99]
        names = [None, None, None]
        while f is not None:
            if info.user:
                if info.name is not None:
                    funcs.append(info.name)
                if info.tags:
                    at = f.f_lineno
                    local = None
                    for var, field, r, spans in info.tags:
                        if r >= rank[field]:
                            continue
                        if spans is not None and not any(a <= at <= b for a, b in spans):
                            continue
                        if local is None:
                            local = f.f_locals
                        v = local.get(var)
                        if type(v) is int:
                            best[field], rank[field], names[field] = v, r, var
                if info.module:
                    break
            f = f.f_back
            if f is not None:
                info = get(id(f.f_code)) or self._code(f.f_code)
        funcs.reverse()
        for field, var in enumerate(names):
            if var is not None:
                self.found.setdefault(TAG_FIELDS[field], set()).add(var)
        call = (file, line, tuple(funcs), best[0], best[1], best[2])
        k = self.call_ids.get(call)
        if k is None:
            k = self.call_ids[call] = len(self.calls)
            self.calls.append(call)
        return k

    def _unknown(self):
        return self._intern('?', 0, '?', 0, (), None, None, None)

    def _intern(self, op_file, op_line, file, line, funcs, pos, layer, head):
        block = funcs[-1] if funcs else 'module'
        key = (op_file, op_line, file, line, funcs)
        sid = self.source_ids.get(key)
        if sid is None:
            text = linecache.getline(os.path.join(self.folder, file), line).strip() if line else ''
            sid = self.source_ids[key] = len(self.sources)
            self.sources.append(Source(file, line, funcs, text, op_file, op_line, op_line))
        skey = (sid, pos, layer, head)
        cid = self.scope_keys.get(skey)
        if cid is None:
            src = self.sources[sid]
            role = f"line {src.line}" if src.file == self.script else f"{src.file}:{src.line}"
            scope = (pos, layer, block, head, role)
            cid = self.scope_ids.get(scope)
            if cid is None:
                cid = self.scope_ids[scope] = len(self.scopes)
                self.scopes.append(scope)
            self.scope_keys[skey] = cid
        return sid, cid
