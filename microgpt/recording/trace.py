"""`Trace`: one recorded forward + backward pass as plain columns.

Detached from the live Values: node ids are indices 0..n-1 in creation order
(parameters first, then every op result and constant as it was made). Columns:

    op[i]            'param' | 'const' | 'leaf' | 'add' | 'mul' | 'pow' | 'log' | 'exp' | 'relu'
    data[i], grad[i] floats, exactly the Values' .data and .grad
    scope[i]         index into `scopes`, tuples (pos, layer, block, head, role)
    children(i)      child ids, in the op's argument order
    local_grads(i)   d(node)/d(child) per child, computed when the node was made
    contributions(i) local_grad * grad(i) per child: what backward added to it
    backward_order   node ids in the order backward visited them, the loss first
                     (`backward_rank[i]`: node i's place in it, -1 if unreached)

Edges are stored CSR-style (`child_ptr`, `child`, `local`): every query below is a few look-ups.
"""

import math
from array import array
from bisect import bisect_right
from collections import Counter
from fnmatch import fnmatchcase
from itertools import chain, repeat, starmap
from operator import mul, sub

from ..files import write_atomic
from .aggregates import RECORD_COLUMNS, run_records
from .cells import TraceQueryError, check_param
from .codecs import binary as binary_codec
from .codecs import json as json_codec
from .codecs import plain_of, read_file
from .codecs.validate import COLUMNS
from .indexes import INDEX_COLUMNS, build, contributions, reach
from .names import ElementNames
from .ops import OP_CODE, OPS, count_ops
from .probes import same_probes
from .runs import gather
from .scopes import FIELDS, scope_path
from .shares import SHARE_COLUMNS, share_records
from .sums import fsum
from .uses import with_uses


class Trace:
    def __init__(self, *, op, data, grad, scope, scopes, child_ptr, child, local,
                 backward_order, pow_exponent, param_names, param_shapes, param_base, meta,
                 op_names=OPS, source=None, sources=None, probes=None, indexes=None, chains=None):
        self.op = op                    # array('B'): index into op_names
        self.op_names = tuple(op_names)   # OPS, then (a user's script) its own ops: 'tanh', 'gelu', ...
        # a trace recorded from a user's script (recording.script) also has, per node, an index into
        # `sources` (recording.sources.Source: file, line, functions, ...) and, for ops the node check
        # cannot replay, `probes`: {node: per child [x+h, x-h, f(x+h), f(x-h)] from the op, or why not}
        self.source = source            # array('I') or None
        self.sources = sources          # [Source] or None
        self.probes = probes or {}
        self.data = data                # array('d')
        self.grad = grad                # array('d')
        self.scope = scope              # array('I')
        self.scopes = scopes            # list of scope tuples
        self.child_ptr = child_ptr      # array('q'), n + 1 offsets into the edge columns
        self.child = child              # array('q'), child id per edge
        self.local = local              # array('d'), local derivative per edge
        self.backward_order = backward_order  # array('q'): ids as backward visited them, loss first
        self.pow_exponent = pow_exponent    # {node id: exponent}
        self.param_names = param_names      # [name], creation order
        self.param_shapes = param_shapes    # {name: (rows, cols)}
        self.param_base = param_base        # {name: id of cell [0][0]}; cells row by row
        self.meta = meta                    # doc, tokens, targets, config, loss ids, ...
        self._cache = {} if chains is None else {'made_by': chains}     # "made by" from a file: recording.madeby
        # the derived indexes (recording.indexes: runs of a scope, reverse edges, ...), as a
        # binary file stores them; what is missing is built on first use, all at once
        self._index = dict(indexes or {})

    # -- one node ---------------------------------------------------------------------
    def __len__(self):
        return len(self.op)

    def op_name(self, i):
        return self.op_names[self.op[i]]

    def source_of(self, i):
        """The `Source` of node i (a trace recorded from a script), else None."""
        return self.sources[self.source[i]] if self.source is not None else None

    def children(self, i):
        return list(self.child[self.child_ptr[i]:self.child_ptr[i + 1]])

    def local_grads(self, i):
        return list(self.local[self.child_ptr[i]:self.child_ptr[i + 1]])

    def contributions(self, i):     # its edges' only: the whole column takes ~2 s at 5 M nodes (issue 25)
        return list(self.contrib_slice(i, i + 1))

    def scope_of(self, i):
        """(pos, layer, block, head, role) of node i."""
        return self.scopes[self.scope[i]]

    def scope_path(self, i):
        return scope_path(self.scopes[self.scope[i]])

    def param_cell(self, i):
        """(name, row, col) if node i is a parameter, else None."""
        if self.op[i] != OP_CODE['param']:
            return None
        name = self.scopes[self.scope[i]].role
        cols = self.param_shapes[name][1]
        r, c = divmod(i - self.param_base[name], cols)
        return name, r, c

    def name(self, i):
        """Node i's one name, which every surface shows: 'q[2]@pos3', 'mul #4711' (recording.names)."""
        return self.names().name(i)

    def names(self):
        """The trace's namer (recording.names.ElementNames), made on first use."""
        if 'names' not in self._cache:
            self._cache['names'] = ElementNames(self)
        return self._cache['names']

    # -- columns and indexes derived on first use ------------------------------------------
    def index(self, name):
        """One index (indexes, aggregates, shares: *_COLUMNS); all built on first use if missing."""
        got = self._index.get(name)
        if got is None:
            self.build_indexes()
            got = self._index[name]
        return got

    def build_indexes(self, progress=None, edges_only=False):
        """Build the indexes it lacks but use records (indexes, aggregates, shares), `progress(done, 3)` a part (never told
        when none lacks: a file that stores them); all returned. `edges_only`: indexes.build's only (what use records read)."""
        lacks = any(n not in self._index for n, _ in (*INDEX_COLUMNS, *RECORD_COLUMNS, *SHARE_COLUMNS))
        say, had = (progress if lacks else None) or (lambda *_: None), 'contrib' in self._cache
        say(0, 3)
        from_columns = [name for name, _ in INDEX_COLUMNS if name not in self._index]
        if from_columns:
            built = build(self.op, self.scope, self.child, self.child_ptr, self.local, self.grad, self.backward_order)
            self._cache.setdefault('contrib', built.pop('contrib'))
            self._index.update((name, built[name]) for name in from_columns)
        say(1, 3)
        if edges_only:
            return self._index
        for k, (columns, records) in enumerate(((RECORD_COLUMNS, run_records), (SHARE_COLUMNS, share_records))):
            self._index.update(records(self) if any(n not in self._index for n, _ in columns) else {})
            say(2 + k, 3)
        if not had:     # the records read it (8 B an edge, ~80 MB at 5 M nodes): a view reads its own edges'
            self._cache.pop('contrib', None)    # (edge_contribs); the whole column is made again if asked
        return self._index

    def indexes(self, progress=None):
        """{name: column} of every index, built if missing: what the binary codec stores. Use records and their figures
        (recording.uses: 7 + 2 s at 5 M nodes) are built here only (uses.with_uses: aside, then attached at once; `progress`),
        not on opening a file without them: its matrix views walk the edges (or read the values) instead."""
        return with_uses(self, progress)

    @property
    def contrib(self):
        """array('d'): per edge, local * grad(parent), what backward added into the child."""
        if 'contrib' not in self._cache:
            self._cache['contrib'] = contributions(self.local, self.grad, self.child_ptr)
        return self._cache['contrib']

    def contrib_slice(self, a, b):
        """The contributions of the edges of nodes a..b-1 (contrib[child_ptr[a]:child_ptr[b]]),
        without building the whole column when it is not built yet."""
        ptr = self.child_ptr
        if 'contrib' in self._cache:    # built or set: a slice of it
            return self._cache['contrib'][ptr[a]:ptr[b]]
        ups = (repeat(self.grad[a]) if b == a + 1 else     # one node (a matrix's use): its grad on each edge
               chain.from_iterable(map(repeat, self.grad[a:b], map(sub, ptr[a + 1:b + 1], ptr[a:b]))))
        return self.edge_contribs(range(ptr[a], ptr[b]), ups, self.local[ptr[a]:ptr[b]])     # a copy, not an edge's look-up

    def edge_contribs(self, edges, grads, local=None):
        """array('d'): the contributions of edges `edges` (parents' grads `grads`, local derivatives `local`
        if read): the column's when built or set (a before/after's differences), else these edges' products."""
        if 'contrib' in self._cache:
            return array('d', map(self._cache['contrib'].__getitem__, edges))
        return array('d', map(mul, map(self.local.__getitem__, edges) if local is None else local, grads))

    @property
    def backward_rank(self):
        """array('i'): each node's place in the backward pass (0 = loss), -1 if unreached."""
        return self.index('backward_rank')

    def scope_runs(self):
        """(run_start, run_scope): the runs of consecutive ids of one scope (recording.indexes)."""
        return self.index('run_start'), self.index('run_scope')

    def runs_of_scope(self):
        """scope id -> [(first id, last id + 1)] of its runs, in id order."""
        if 'scope_runs' not in self._cache:
            starts, sids = self.scope_runs()
            groups = [[] for _ in self.scopes]
            for r, sid in enumerate(sids):
                groups[sid].append((starts[r], starts[r + 1]))
            self._cache['scope_runs'] = groups
        return self._cache['scope_runs']

    def scope_members(self, sid):
        """The ids of scope `sid`'s nodes, sorted."""
        return list(chain.from_iterable(starmap(range, self.runs_of_scope()[sid])))

    def adopt_indexes(self, other):
        """Take `other`'s indexes of the graph (recording.indexes.INDEX_COLUMNS: scope runs, reverse
        edges, backward ranks) when it is a recording of the same graph (a played run's next step):
        they need not be built again. The aggregates (recording.aggregates) hold numbers: not taken."""
        if other is not self and self.op == other.op and self.child == other.child and \
                self.backward_order == other.backward_order and self.scope == other.scope:
            for name, _ in INDEX_COLUMNS:
                if name in other._index:
                    self._index.setdefault(name, other._index[name])
            if 'scope_runs' in other._cache:
                self._cache.setdefault('scope_runs', other._cache['scope_runs'])
        return self

    def parents_index(self):
        """(parent_ptr, parent, edge): CSR of the reverse edges, parents in id order;
        edge[k] is the index of that edge in the forward columns."""
        return self.index('parent_ptr'), self.index('parent'), self.index('parent_edge')

    def parents(self, i):
        ptr, parent, _ = self.parents_index()
        return list(parent[ptr[i]:ptr[i + 1]])

    # -- validation ---------------------------------------------------------------------
    def _check_node(self, i):
        if not isinstance(i, int) or not 0 <= i < len(self):
            raise TraceQueryError(f"node {i!r} is not in this trace; node ids are 0..{len(self) - 1}")

    def _values_of(self, field):
        k = FIELDS.index(field)
        return sorted({s[k] for s in self.scopes if s[k] is not None and (s.block != 'params' or field == 'block')},
                      key=lambda x: (str(type(x)), x))

    def positions(self):
        return self._values_of('pos')

    def layers(self):
        return self._values_of('layer')

    def heads(self):
        return self._values_of('head')

    def roles(self):
        return self._values_of('role')

    def _check_field(self, field, value):
        allowed = self._values_of(field)
        if value not in allowed:
            shown = (f"{allowed[0]}..{allowed[-1]}" if allowed and all(isinstance(a, int) for a in allowed)
                     and allowed == list(range(allowed[0], allowed[-1] + 1)) else ', '.join(map(str, allowed)))
            noun = {'pos': 'position', 'layer': 'layer', 'head': 'head', 'block': 'block', 'role': 'role'}[field]
            raise TraceQueryError(f"{noun} {value!r} is not in this trace; {noun}s: {shown or 'none'}")

    # -- slices -----------------------------------------------------------------------
    def scope_ids(self, **fields):
        """Scope ids whose fields equal all of `fields` (pos=, layer=, block=, head=, role=)."""
        bad = set(fields) - set(FIELDS)
        if bad:
            raise TraceQueryError(f"unknown scope field(s) {sorted(bad)}; allowed: {', '.join(FIELDS)}")
        for f, v in fields.items():
            if v is not None:
                self._check_field(f, v)
        want = [(FIELDS.index(f), v) for f, v in fields.items() if v is not None]
        return [sid for sid, s in enumerate(self.scopes) if all(s[k] == v for k, v in want)]

    def nodes(self, **fields):
        """Sorted ids of the nodes whose scope matches every given field: nodes(pos=3), every op
        of position 3 (parameters have no position); nodes(layer=0, head=2, pos=5), nodes(role='q')."""
        return self._ids_of(self.scope_ids(**fields))

    def _ids_of(self, sids):
        """The sorted ids of the nodes of scopes `sids`, from their runs (no pass over the trace)."""
        runs = self.runs_of_scope()
        spans = sorted(chain.from_iterable(runs[s] for s in sids))
        return list(chain.from_iterable(starmap(range, spans)))

    def nodes_matching(self, pattern):
        """Nodes whose scope path matches a glob, e.g. 'pos3/*/attn/head2/*'."""
        sids = [s for s, t in enumerate(self.scopes) if fnmatchcase(scope_path(t), pattern)]
        if not sids:
            raise TraceQueryError(f"no scope matches {pattern!r}; scopes look like "
                                  f"{scope_path(self.scopes[self.scope[self.meta.get('loss_id', 0)]])!r}")
        return self._ids_of(sids)

    # -- a script's own code (traces recorded by recording.script) -------------------------
    def _need_sources(self, what):
        if self.source is None:
            raise TraceQueryError(f"this trace has no source lines ({what} views need a trace "
                                  f"recorded from a script with `microgpt-graph record`)")

    def functions(self):
        """Names of the script's functions that made nodes, sorted."""
        self._need_sources('function')
        return sorted({f for s in self.sources for f in s.funcs})

    def source_lines(self):
        """[(file, line)] of the lines that made nodes, sorted."""
        self._need_sources('line')
        used = set(self.source)
        return sorted({(s.file, s.line) for k, s in enumerate(self.sources) if k in used and s.line})

    def nodes_in_function(self, name):
        """Sorted ids of the nodes made inside function `name` (directly or in what it called)."""
        names = self.functions()
        if name not in names:
            raise TraceQueryError(f"function {name!r} made no node in this trace; functions: {', '.join(names)}")
        hit = {k for k, s in enumerate(self.sources) if name in s.funcs}
        return [i for i, k in enumerate(self.source) if k in hit]

    def nodes_at_line(self, line, file=None):
        """Sorted ids of the nodes made by source line `line` (of `file`, default the script)."""
        file = file or self.meta.get('recorded_from', {}).get('script')
        lines = [ln for f, ln in self.source_lines() if f == file]
        hit = {k for k, s in enumerate(self.sources) if s.line == line and s.file == file}
        if not hit:
            shown = ', '.join(map(str, lines[:40])) + (' ...' if len(lines) > 40 else '')
            raise TraceQueryError(f"line {line} of {file} made no node in this trace; lines that did: {shown}")
        return [i for i, k in enumerate(self.source) if k in hit]

    def param_nodes(self, spec):
        """Ids of a parameter cell ('layer0.attn_wq[3][5]') or a whole matrix ('wte')."""
        name, r, c = check_param(spec, {n: self.param_shapes[n] for n in self.param_names})
        rows, cols = self.param_shapes[name]
        base = self.param_base[name]
        if r is None:
            return list(range(base, base + rows * cols))
        return [base + r * cols + c]

    def ancestors(self, ids, depth=None):
        """Nodes reachable by following children from `ids`, up to `depth` hops
        (None: all); {id: hops}. Iterative breadth-first search."""
        return self._walk(ids, depth, self.child_ptr, self.child)

    def descendants(self, ids, depth=None):
        """Nodes that use `ids`, directly or through others, up to `depth` hops; {id: hops}."""
        ptr, parent, _ = self.parents_index()
        return self._walk(ids, depth, ptr, parent)

    def _walk(self, ids, depth, ptr, nbr):
        for i in ids:
            self._check_node(i)
        if depth is not None and depth < 0:
            raise TraceQueryError(f"depth must be >= 0, got {depth}")
        return reach(ids, depth, ptr, nbr)

    def uses(self, i):
        """How node i's grad was assembled: [(parent, local_grad, contribution)],
        in the order backward added them (unreached parents, which added 0, last).
        Summed in this order from 0 they give grad(i) exactly (in a recording; a
        before/after trace's contributions are differences, whose sum is not Δgrad
        to the last bit: steps.diff)."""
        self._check_node(i)
        if 'parent_ptr' in self._index:
            ptr, parent, edge = self.parents_index()
            edges = [(parent[k], edge[k]) for k in range(ptr[i], ptr[i + 1])]
        else:  # no reverse index yet: find i's edges with C-level scans of the child column
            edges, k, child, cptr = [], -1, self.child, self.child_ptr
            while True:
                try:
                    k = child.index(i, k + 1)
                except ValueError:
                    break
                edges.append((bisect_right(cptr, k) - 1, k))
        rank = {p: self._rank_of(p) for p, _ in edges}
        # the contribution column when built or set (a before/after's: differences, not a product of them)
        contrib = self._cache.get('contrib')
        rows = [(p, self.local[e], self.local[e] * self.grad[p] if contrib is None else contrib[e])
                for p, e in edges]
        rows.sort(key=lambda row: (rank[row[0]], row[0]))
        return rows

    def _rank_of(self, p):
        """backward_rank[p] without building the whole column (one C-level scan)."""
        if 'backward_rank' in self._index:
            r = self._index['backward_rank'][p]
            return r if r >= 0 else len(self)
        try:
            return self.backward_order.index(p)
        except ValueError:  # unreached by backward
            return len(self)

    # -- summaries --------------------------------------------------------------------------
    @property
    def loss(self):
        return self.data[self.meta['loss_id']]

    def position_losses(self):
        """The per-position losses -log p(target), in position order."""
        return [self.data[i] for i in self.meta.get('position_loss_ids', [])]

    def nonfinite(self):
        """Where NaN or infinity starts: {'data': the first node in forward (creation) order whose
        data is NaN or ±inf, 'grad': the first in backward order whose grad is}, None where all
        are finite. (A sum of a column is finite only when every value in it is: the scan for the
        node runs only when it is not.)"""
        isfinite = math.isfinite
        data, grad = self.data, self.grad
        first_data = first_grad = None
        if not isfinite(sum(data)):
            first_data = next((i for i, x in enumerate(data) if not isfinite(x)), None)
        if not isfinite(sum(grad)):
            first_grad = next((i for i in self.backward_order if not isfinite(grad[i])), None)
            if first_grad is None:      # unreached by backward, yet not finite: in creation order
                first_grad = next((i for i, x in enumerate(grad) if not isfinite(x)), None)
        return {'data': first_data, 'grad': first_grad}

    def op_counts(self):
        return dict(sorted(count_ops(self.op.tobytes(), self.op_names).items()))

    def scope_stats(self):
        """Per scope path: node count, data min/max, grad min/max/L2 norm, zero-grad share."""
        out = {}
        data, grad = self.data, self.grad
        for sid, runs in enumerate(self.runs_of_scope()):
            if not runs:
                continue
            # whole-run slices, in id order: the same figures as a list of the scope's nodes
            ds, gs = gather(data, runs), gather(grad, runs)
            out[scope_path(self.scopes[sid])] = {
                'nodes': len(ds), 'data_min': min(ds), 'data_max': max(ds),
                'grad_min': min(gs), 'grad_max': max(gs),
                'grad_norm': math.sqrt(fsum(map(mul, gs, gs))),
                'zero_grad': gs.count(0) / len(gs),
            }
        return out

    def summary(self):
        return {
            'nodes': len(self), 'edges': len(self.child), 'ops': self.op_counts(),
            'loss': self.loss if 'loss_id' in self.meta else None,
            'position_losses': self.position_losses(),
            'positions': self.positions(), 'layers': self.layers(), 'heads': self.heads(),
            'params': {n: list(self.param_shapes[n]) for n in self.param_names},
        }

    def position_nodes_count(self):
        """{pos: number of nodes made at that position}."""
        counts = Counter()
        for sid, runs in enumerate(self.runs_of_scope()):
            counts[self.scopes[sid].pos] += sum(b - a for a, b in runs)
        return counts

    def __eq__(self, other):
        """Bit-for-bit equality of every column (NaN equals NaN), scopes, params and meta."""
        if not isinstance(other, Trace):
            return NotImplemented
        return (all(getattr(self, c).tobytes() == getattr(other, c).tobytes() for c, _ in COLUMNS)
                and self.scopes == other.scopes and self.param_names == other.param_names
                and self.param_shapes == other.param_shapes and self.param_base == other.param_base
                and self.pow_exponent == other.pow_exponent and self.meta == other.meta
                and self.op_names == other.op_names and self.sources == other.sources
                and (self.source is None) == (other.source is None)
                and (self.source is None or self.source.tobytes() == other.source.tobytes())
                and same_probes(self.probes, other.probes))

    __hash__ = None

    def to_json(self, path=None):
        """The JSON text (schema in codecs.json); or, given `path`, written there atomically as it
        is made (constant memory) and `path` returned. TraceTooLarge when the loader would refuse it."""
        if path is None:
            return json_codec.encode(plain_of(self))
        json_codec.encode(plain_of(self), path)
        return path

    @classmethod
    def from_json(cls, source):
        """A Trace from a JSON string, a dict, or a path to a JSON file."""
        return cls(**json_codec.read(source))

    def to_binary(self, path=None, *, compression=binary_codec.COMPRESSION, indexes=True, chains=True):
        """The compact binary form (microgpt.recording.codecs.binary): the columns as stored, its
        indexes (built now if missing: a load then never builds them) unless indexes=False, its
        "made by" chains when it has them (recording.madeby) unless chains=False, compressed as
        `compression` says (binary.COMPRESSIONS). Given `path`: written there atomically and `path` returned."""
        kept = (self._cache.get('made_by') or None) if chains else None
        raw = binary_codec.encode(plain_of(self), compression, self.indexes() if indexes else None, kept)
        if path is None:
            return raw
        write_atomic(path, raw)
        return path

    @classmethod
    def from_binary(cls, raw):
        """A Trace from the bytes `to_binary` made."""
        return cls(**binary_codec.read(raw))

    @classmethod
    def load(cls, path, progress=None):
        """A Trace from a file saved by `export`, binary or JSON told apart by its first bytes
        (not its name); `progress(phase, done, total)`: where the load is (read_file)."""
        return cls(**read_file(path, progress))
