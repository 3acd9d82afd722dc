"""What a node check found (nodes.py): each failure, the whole result and its readable report.

A `NodeFailure` says where backward went wrong in a learner's words (`message`: 'line 51:
your derivative of tanh is wrong (...)') and in a table row's (`reason`); a
`NodeCheckResult` holds every failure nearest the loss first, what was checked and with
which tolerances; `format_node_report` prints it as `gradcheck` does.
"""

from dataclasses import dataclass, field

from ..recording.names import with_id


@dataclass
class NodeFailure:
    """One disagreement at one node (and, for 'local', one argument of it)."""
    node: int
    op: str
    scope: str          # scope path, e.g. 'pos3/layer0/attn/head1/attn_weights'
    kind: str           # 'forward' | 'local' | 'sum' | 'dloss'
    expected: float     # what the check computed
    found: float        # what the trace holds
    child: int = None   # for 'local': which argument (0 = left/only, 1 = right)
    child_id: int = None
    rank: int = -1      # place in the backward pass, 0 = loss (-1: not reached)
    source: object = None   # recording.sources.Source of a trace recorded from a script
    script: str = None      # that script's file name
    line: tuple = None      # (file, line) to blame in that script's files: where the
    #                         derivative of this edge is written ('local'), where a closure
    #                         set this grad with = ('sum'); see recording.script.closures
    name: str = None        # the node's one name (Trace.name): 'relu[31]@pos4', 'log → loss_t@pos4', 'tanh #295'

    @property
    def called(self):       # the name and the id: 'relu[31]@pos4 #12805' ('tanh #295' holds it already)
        return with_id(self.name or self.op, self.node)

    @property
    def message(self):
        """The learner's line: 'line 51: your derivative of tanh is wrong (...)'; for a
        trace of the port, the reason with the node's scope."""
        src = self.source
        if src is None:
            return f"{self.called} at {self.scope}: {self.reason}"

        def at(file, line):
            return f"line {line}" if file == self.script else f"{file} line {line}"
        made = f"node {self.node}, made by {at(src.file, src.line)}" + (f" `{src.text}`" if src.text else '')
        if self.kind == 'local':
            file, line = self.line or (src.op_file, src.grad_line or src.op_line)
            head = f"{at(file, line)}: your derivative of {self.op} is wrong"
        elif self.kind == 'forward':
            head = f"{at(src.op_file, src.op_line)}: your {self.op} does not compute {self.op}"
        elif self.kind == 'sum' and self.line is not None:
            head = (f"{at(*self.line)}: this line sets a grad with = where backward must add to it with +=, "
                    f"so this node's grad is not the sum of what its users passed back")
        elif self.kind == 'sum':
            head = (f"{at(src.file, src.line)}: this node's grad is not the sum of what its users passed back "
                    f"(accumulate with += ?)")
        else:
            head = f"{at(src.file, src.line)}: this node's grad is not d loss / d node"
        return f"{head} ({made}; {self.reason})"

    @property
    def reason(self):
        """A short line for a table row or a picture's tooltip."""
        if self.kind == 'local':
            what = f"d {self.op}/d arg{self.child} (node {self.child_id})"
        elif self.kind == 'forward':
            what = f"{self.op} output"
        elif self.kind == 'sum':
            what = "grad vs sum of its parents' contributions"
        else:
            what = "grad vs d loss/d node, numerically"
        return f"{what}: found {self.found:.6g}, expected {self.expected:.6g}"

    def to_dict(self):
        d = {'node': self.node, 'name': self.name, 'op': self.op, 'scope': self.scope, 'kind': self.kind,
             'expected': self.expected, 'found': self.found, 'rank': self.rank, 'reason': self.reason}
        if self.child is not None:
            d.update(child=self.child, child_id=self.child_id)
        if self.source is not None:
            d.update(message=self.message, source={'file': self.source.file, 'line': self.source.line,
                                                   'op_file': self.source.op_file, 'op_line': self.source.op_line,
                                                   'grad_line': self.source.grad_line, 'text': self.source.text})
        if self.line is not None:
            d['line'] = {'file': self.line[0], 'line': self.line[1]}
        return d


@dataclass
class NodeCheckResult:
    """Every failure, nearest the loss first, and what was checked with which tolerances."""
    failures: list                  # [NodeFailure], in backward order
    checked: dict                   # {'forward': nodes, 'local': edges, 'sum': nodes, 'dloss': nodes}
    nonsmooth: int                  # local checks accepted only by the kink rule
    skipped: list                   # [(node, kind, why)]: could not be measured
    tolerances: dict
    seconds: float
    loss_id: int
    dloss: list = field(default_factory=list)   # [{'node', 'grad', 'numeric', 'step', 'abs_err', 'ok'}]
    worst: dict = field(default_factory=dict)   # largest relative error / tolerance use among passing local checks
    faults: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.failures

    @property
    def first(self):
        """The failure nearest the loss in backward order: where backward first went wrong."""
        return self.failures[0] if self.failures else None

    @property
    def nodes(self):
        """Failing node ids, each once, in backward order."""
        return list(dict.fromkeys(f.node for f in self.failures))

    def by_kind(self):
        out = {}
        for f in self.failures:
            out.setdefault(f.kind, set()).add(f.node)
        return out

    def highlight(self):
        """{node id: reason} of the failing nodes (first reason per node), for pictures."""
        out = {}
        for f in self.failures:
            out.setdefault(f.node, f.reason)
        return out

    def summary(self):
        """'636 exp nodes: local' style counts, per (op, kind)."""
        counts = {}
        for f in self.failures:
            counts.setdefault((f.op, f.kind), set()).add(f.node)
        return [f"{len(ids)} {op} node{'s' if len(ids) != 1 else ''}: {kind}"
                for (op, kind), ids in sorted(counts.items(), key=lambda kv: -len(kv[1]))]

    def to_dict(self):
        return {'check': 'nodes', 'ok': self.ok, 'loss_id': self.loss_id,
                'first': self.first.to_dict() if self.first else None,
                'failing_nodes': len(self.nodes), 'summary': self.summary(),
                'checked': self.checked, 'nonsmooth': self.nonsmooth,
                'skipped': [{'node': n, 'kind': k, 'why': w} for n, k, w in self.skipped],
                'tolerances': self.tolerances, 'worst': self.worst, 'seconds': self.seconds, 'faults': self.faults,
                'dloss': self.dloss, 'failures': [f.to_dict() for f in self.failures]}


def format_node_report(result, limit=20):
    """The readable report: verdict, the first failure spelled out, then a table."""
    c = result.checked
    what = (f"{c['forward']} nodes' forward, {c['local']} local derivatives, {c['sum']} grad sums"
            + (f", {c['dloss']} d loss/d node by replay" if c['dloss'] else ''))
    lines = [f"node check: {'ok' if result.ok else 'FAIL'} — {what}; "
             f"{len(result.nodes)} failing node{'s' if len(result.nodes) != 1 else ''} ({result.seconds:.2f} s)"]
    if result.faults:
        lines.append(f"fault injected: {', '.join(result.faults)}")
    if result.nonsmooth or result.skipped:
        lines.append(f"{result.nonsmooth} derivatives at a kink accepted between their one-sided values; "
                     f"{len(result.skipped)} could not be measured")
    if result.ok:
        return '\n'.join(lines)
    f = result.first
    lines.append(f"first wrong (nearest the loss, backward step {f.rank}): {f.called} at {f.scope}")
    lines.append(f"  {f.reason}")
    if f.source is not None:
        lines.append(f"  {f.message}")
    lines.append("failing: " + '; '.join(result.summary()))
    shown = result.failures[:limit]
    w = max(5, max(len(x.scope) for x in shown))
    lines.append(f"  {'node':>7}  {'op':<5} {'scope':<{w}}  {'check':<7} {'arg':>3}  {'found':>13}  {'expected':>13}"
                 f"  name")
    for x in shown:
        arg = '' if x.child is None else str(x.child)
        lines.append(f"  {x.node:>7}  {x.op:<5} {x.scope:<{w}}  {x.kind:<7} {arg:>3}  "
                     f"{x.found:>13.6e}  {x.expected:>13.6e}  {x.name or ''}".rstrip())
    if len(result.failures) > limit:
        lines.append(f"  ... {len(result.failures) - limit} more, in backward order")
    return '\n'.join(lines)
