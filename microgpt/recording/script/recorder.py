"""Inside the child process: find the user's scalar autograd class, watch it, and
capture the graph of its Nth `backward()` call.

Finding the class (duck typing, no change to the script). `builtins.__build_class__`
is wrapped while the script runs, so every `class` statement executed from then on
is seen as it is made: a class is a candidate when it defines `backward` and either
comes from a file in the script's folder or its `backward` reads `_children`,
`_prev` or `_backward` (so a pip-installed micrograd is found too, torch is not).
A candidate's `__init__`, `backward` and op methods are wrapped at once; its first
instance decides the convention:

    microgpt   data, grad, _children, _local_grads (local derivatives stored at creation)
    micrograd  data, grad, _prev, _backward (a closure per node; local derivatives are
               found by calling it on a unit upstream grad, grads saved and restored)

(`_children` with `_backward` closures is read the micrograd way.) An instance
without them rules its class out and the reason is kept for the final message:
"class Foo has data and grad but neither _children nor _prev".

Which node was made by which op: the frame that called the constructor. Its code
object is one of the class's methods (__add__ -> add, tanh -> tanh; a node without
children made there is a 'const', e.g. the 2 of x * 2), or a user function outside
the class (the op is named after it; without children the node is a 'leaf'). So
`a - b`, written as `a + (-b)`, gives a mul, a const and an add, as in the port. For
ops the node check cannot replay by itself (pow needs its exponent, tanh or gelu a
re-run), the frame's arguments are kept too. No op method is wrapped: the only
hook per node is the class's __init__.

Windows. Only the nodes made after the (N-1)th backward() returns (from the start
for N = 1) are recorded with their provenance; before that the wrappers only keep
the leaves the user makes outside op methods (parameter candidates, in creation
order), dropping at each backward() those nobody else holds any more. At the Nth
call the user's own backward runs first, then the graph is walked from its root
and written out (see build.py), and the child ends.
"""

import builtins
import gc
import os
import sys
import types

from .places import Places

# op methods by the op name the trace uses; others keep their name without underscores
METHOD_OPS = {
    '__add__': 'add', '__radd__': 'add', '__mul__': 'mul', '__rmul__': 'mul',
    '__pow__': 'pow', '__rpow__': 'rpow', '__truediv__': 'div', '__rtruediv__': 'div',
    '__sub__': 'sub', '__rsub__': 'sub', '__neg__': 'neg', '__abs__': 'abs',
}
_NOT_OPS = frozenset({
    '__init__', '__new__', '__repr__', '__str__', '__format__', '__hash__', '__eq__', '__ne__',
    '__lt__', '__le__', '__gt__', '__ge__', '__bool__', '__float__', '__int__', '__index__',
    '__getattr__', '__getattribute__', '__setattr__', '__delattr__', '__del__', '__init_subclass__',
    '__class_getitem__', '__reduce__', '__reduce_ex__', '__getstate__', '__setstate__', '__copy__',
    '__deepcopy__', '__len__', '__iter__', '__contains__', '__dir__', '__sizeof__', '__round__',
    'backward', 'zero_grad', 'parameters',
})
_GRAPH_NAMES = ('_children', '_prev', '_backward', '_local_grads')
_REPLAYED = frozenset({'add', 'mul', 'log', 'exp', 'relu'})


class NotFound(Exception):
    """No autograd class, or no Nth backward(): the message says which and why."""


def _code_names(code):
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def _codes(fn):
    out = {fn.__code__}
    stack = [fn.__code__]
    while stack:
        for c in stack.pop().co_consts:
            if isinstance(c, types.CodeType) and c not in out:
                out.add(c)
                stack.append(c)
    return out


def op_name_of(method_name):
    return METHOD_OPS.get(method_name) or method_name.strip('_')


class Recorder:
    def __init__(self, script, step, tags, on_capture, exclude=()):
        self.script = os.path.realpath(script)
        self.folder = os.path.dirname(self.script)
        self.step = step
        self.tags = tags
        self.on_capture = on_capture  # callback(recorder, root) at the Nth backward
        self.exclude = exclude
        self.calls = 0
        self.cls = None               # the class found
        self.convention = None        # 'microgpt' | 'micrograd'
        self.children_attr = self.local_attr = None
        self.rejected = []            # (class name, why) of candidates ruled out
        self.candidates = []          # names of candidate classes seen
        self.class_codes = set()      # code objects of the class's methods (and their closures)
        self.class_ids = set()        # their ids: cheap to hash per node (the functions keep them alive)
        self.code_ops = {}            # id of a class method's code -> (op name, function)
        self.no_args = set()          # ids of code objects whose nodes need no arguments kept
        self.args = {}                # window node index -> (function, arguments) of its op
        self.nodes = []               # the window's nodes, in creation order
        self.creators = []            # per node: the code object that called the constructor
        self.source = []              # per node: source id
        self.scope = []               # per node: scope id
        self.places = None
        self.early = []               # before the window: leaves made outside op methods, still alive
        self.window = False
        self._gc_was_on = False
        self._saved_build = None

    # -- finding the class --------------------------------------------------------------------
    def install(self):
        saved = self._saved_build = builtins.__build_class__
        rec = self

        def __build_class__(func, name, *bases, **kw):
            cls = saved(func, name, *bases, **kw)
            try:
                rec.consider(cls, func)
            except Exception:   # never break the user's class statement
                pass
            return cls

        builtins.__build_class__ = __build_class__

    def uninstall(self):
        if self._saved_build is not None:
            builtins.__build_class__ = self._saved_build

    def consider(self, cls, body):
        if self.cls is not None:
            return
        backward = cls.__dict__.get('backward')
        if not isinstance(backward, types.FunctionType):
            return
        path = os.path.realpath(body.__code__.co_filename)
        ours = path.startswith(self.folder + os.sep) and not path.startswith(
            tuple(e + os.sep for e in self.exclude))
        if not ours and not (_code_names(backward.__code__) & set(_GRAPH_NAMES)):
            return
        if any(cls is c for c, _ in self.candidates):
            return
        self.candidates.append((cls, self._wrap(cls)))

    def _wrap(self, cls):
        """Wrap __init__, backward and the op methods of a candidate; returns an undo."""
        rec = self
        saved = {}
        orig_init = cls.__init__
        orig_backward = cls.__dict__['backward']

        getframe = sys._getframe
        nodes, creators, source, scope, no_args = rec.nodes, rec.creators, rec.source, rec.scope, rec.no_args

        def __init__(self, *args, **kw):
            orig_init(self, *args, **kw)
            if rec.window:   # rec.add, inlined: this runs once per node
                frame = getframe(1)
                code = frame.f_code
                nodes.append(self)
                creators.append(code)
                s, c = rec.places.here(frame)
                source.append(s)
                scope.append(c)
                if id(code) not in no_args:
                    rec._keep_args(self, frame, code)
            else:
                rec.new(self)

        def backward(self, *args, **kw):
            return rec.backward(self, orig_backward, args, kw)

        __init__.__wrapped__, backward.__wrapped__ = orig_init, orig_backward
        for name, fn in list(cls.__dict__.items()):
            if isinstance(fn, types.FunctionType) and name not in _NOT_OPS:
                for code in _codes(fn):
                    self.code_ops.setdefault(id(code), (op_name_of(name), fn))
                self.class_codes |= _codes(fn)
        saved['__init__'] = cls.__dict__.get('__init__')
        saved['backward'] = orig_backward
        self.class_codes |= _codes(orig_backward)
        if isinstance(saved['__init__'], types.FunctionType):
            self.class_codes |= _codes(saved['__init__'])
        cls.__init__ = __init__
        cls.backward = backward

        def undo():
            for name, fn in saved.items():
                if fn is None:
                    delattr(cls, name)
                else:
                    setattr(cls, name, fn)
        return undo

    def _decide(self, v):
        """The first instance of a candidate: which convention, or why none."""
        cls = type(v)
        has = {a: _has(v, a) for a in ('data', 'grad') + _GRAPH_NAMES}
        name = cls.__name__
        why = None
        if not (has['data'] and has['grad']):
            missing = ' and '.join(a for a in ('data', 'grad') if not has[a])
            why = f"class {name} has backward() but no {missing} attribute"
        elif not (has['_children'] or has['_prev']):
            why = f"class {name} has data and grad but neither _children nor _prev"
        elif has['_local_grads']:
            self.convention, self.local_attr = 'microgpt', '_local_grads'
        elif has['_backward']:
            self.convention, self.local_attr = 'micrograd', '_backward'
        else:
            why = (f"class {name} has data, grad and {'_children' if has['_children'] else '_prev'} "
                   f"but neither _local_grads (stored local derivatives) nor a _backward closure")
        undo = next(u for c, u in self.candidates if c is cls or isinstance(v, c))
        if why:
            self.rejected.append((name, why))
            undo()
            return False
        self.cls = cls
        self.children_attr = '_children' if has['_children'] else '_prev'
        for c, u in self.candidates:   # the others stop being watched
            if c is not cls and not issubclass(cls, c):
                u()
        self.class_ids = {id(c) for c in self.class_codes}
        self.places = Places(self.folder, os.path.basename(self.script), self.class_ids, self.tags,
                             self.exclude)
        if self.step == 1:
            self._open()
        return True

    def _open(self):
        """The recorded step starts. The cyclic garbage collector is paused until its
        backward() (the child ends right after): the recording keeps every node alive
        and the collector's passes over them would cost more than the recording."""
        self.window = True
        self._gc_was_on = gc.isenabled()
        gc.disable()

    # -- every node ---------------------------------------------------------------------------------
    def add(self, v, frame):
        """A node made inside the window, by the code running in `frame`."""
        code = frame.f_code
        self.nodes.append(v)
        self.creators.append(code)
        s, c = self.places.here(frame)
        self.source.append(s)
        self.scope.append(c)
        if id(code) not in self.no_args:
            self._keep_args(v, frame, code)

    def _keep_args(self, v, frame, code):
        """The arguments of the op that made v, for ops the check must re-run."""
        op = self.code_ops.get(id(code))
        if op is not None and op[0] in _REPLAYED:   # add, mul, log, exp, relu: data is enough
            self.no_args.add(id(code))
            return
        if not getattr(v, self.children_attr):
            return
        if op is None:   # a function outside the class: find it by name in its module
            fn = frame.f_globals.get(code.co_name)
            if getattr(fn, '__code__', None) is not code:
                return
        else:
            fn = op[1]
        loc = frame.f_locals
        names = code.co_varnames[:code.co_argcount]
        self.args[len(self.nodes) - 1] = (fn, tuple(loc.get(n) for n in names))

    def new(self, v):
        """A node made outside the window (or the class's first instance)."""
        if self.cls is not None:
            if getattr(v, self.children_attr):
                return
            f = sys._getframe(2)
            if id(f.f_code) not in self.class_ids:
                self.early.append(v)     # a leaf made by the user: maybe a parameter
        elif self._decide(v):
            if self.window:
                self.add(v, sys._getframe(2))
            else:
                self.new(v)

    def backward(self, root, orig, args, kw):
        if self.cls is None or not isinstance(root, self.cls):
            return orig(root, *args, **kw)
        self.calls += 1
        if self.calls < self.step:
            out = orig(root, *args, **kw)
            # forget the user's leaves nobody else holds any more (list, loop variable, argument)
            self.early = [v for v in self.early if sys.getrefcount(v) > 3]
            if self.calls == self.step - 1:   # the recorded step starts now
                for column in (self.nodes, self.creators, self.source, self.scope):
                    column.clear()   # in place: the __init__ wrapper holds these lists
                self.args = {}
                self._open()
            return out
        if self.calls == self.step:
            out = orig(root, *args, **kw)
            self.window = False
            if self._gc_was_on:
                gc.enable()
            self.on_capture(self, root)
            return out
        return orig(root, *args, **kw)

    def diagnosis(self):
        """Why nothing was captured, as one sentence."""
        n = self.step
        nth = {1: 'first', 2: 'second', 3: 'third'}.get(n, f'{n}th')
        if self.cls is not None:
            if self.calls == 0:
                return (f"backward() was never called (class {self.cls.__name__}, "
                        f"{self.convention} convention)")
            return (f"backward() was called {self.calls} time{'s' if self.calls != 1 else ''}; "
                    f"--step {n} asks for the {nth} call (class {self.cls.__name__}, {self.convention} convention)")
        if self.rejected:
            return '; '.join(why for _, why in self.rejected)
        if self.candidates:
            names = ', '.join(c.__name__ for c, _ in self.candidates)
            return f"class {names} has backward() but no instance of it was ever made"
        return (f"no scalar autograd class was found: no class with a backward() method was defined "
                f"in {os.path.basename(self.script)} or a module in its folder")


def _has(v, attr):
    try:
        getattr(v, attr)
        return True
    except AttributeError:
        return False
