"""The convenience API: build_view (select -> fold -> draw) and render_view (-> bytes).

    view = build_view(trace, token=3)             # auto level, budget 150 nodes
    view.stats                                    # {'level': 'vector', 'nodes': 40, ...}
    svg = render_view(view)                       # native dot, else WebAssembly Graphviz
    view                                          # in Jupyter: shows itself (either renderer)
"""

import hashlib
import html
import json
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import graphviz_export.render as _render
from graphviz_export.render.errors import TIMEOUT_HINT
from microgpt.errors import InputError, WriteError
from microgpt.files import json_safe, write_atomic, write_new
from microgpt.recording.runs import id_runs
from microgpt.recording.uses import remembered

from .draw import draw
from .fold import fold
from .fold.summary import figures, op_counts
from .options import DEFAULT_RENDERER, DEFAULT_TIMEOUT
from .select import select
from .spec import ASPECTS, DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET, DEFAULT_LEVEL, DIRECTIONS, check_options


class ViewLayoutTimeout(_render.LayoutTimeout):
    """Graphviz's layout took longer than allowed; `dot_path` holds the DOT source."""

    def __init__(self, message, dot_path):
        super().__init__(message)
        self.dot_path = dot_path


@dataclass
class View:
    """One view of a trace: the selection, its folding, and the Digraph that draws it."""
    trace: object
    selection: object
    folded: object
    digraph: object                 # graphviz.Digraph
    options: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)     # node name -> {'data', 'grad', 'norm'} texts, as drawn
    # build_view(paint_heatmaps=True): {matrix node name: its cells} (draw.heatmap.painted), its rows
    # drawn as plain boxes for a page to paint; None: striped (the picture shows itself)
    heatmaps: dict = None
    drawn_with: dict = field(default_factory=dict, repr=False)     # draw's options, to draw it again (striped)

    @property
    def source(self):
        """The DOT text (byte-identical for the same trace and arguments)."""
        return self.digraph.source

    def striped(self):
        """This view as a picture that shows itself: itself, or, when its heat-map rows are boxes for
        a page to paint (paint_heatmaps), the same view drawn again with striped rows (an export)."""
        if self.heatmaps is None:
            return self
        return replace(self, digraph=draw(self.trace, self.folded, fields={}, **self.drawn_with), heatmaps=None)

    @property
    def stats(self):
        """level chosen, visible nodes (reference nodes included), edges, ops in view,
        ops folded into summary nodes, boundary ops, budget, and whether it fits."""
        return dict(self.folded.stats)

    def to_json(self):
        """The selected, folded view as JSON text: what the picture shows, with every digit."""
        return json.dumps(view_dict(self), indent=1, ensure_ascii=False)

    def __repr__(self):
        # short: the default dataclass repr printed the whole trace (~277,000 characters)
        st = self.stats
        return (f"<View {self.selection.title!r}: level {st['level']}, {st['nodes']} nodes, "
                f"{st['edges']} edges, {st['folded_ops']} ops folded>")

    def _repr_svg_(self):
        # Jupyter: drawn by our renderer (native `dot`, else the WebAssembly Graphviz),
        # so it shows with or without a system Graphviz (view.digraph needs `dot`)
        return render_view(self, 'svg').decode('utf-8')

    def _repr_html_(self):
        # front ends that prefer HTML get the same SVG with a caption: what is shown
        # and which renderer drew it
        return self._html(self._repr_svg_())

    def _html(self, svg):
        caption = html.escape(f"{self!r} \u2014 drawn by {renderer_label('svg')}")
        return f'<figure style="margin:0">{svg}<figcaption><small>{caption}</small></figcaption></figure>'

    def _repr_mimebundle_(self, include=None, exclude=None):
        # IPython asks this first: one render for both the SVG and the HTML entry
        # (with only _repr_svg_ and _repr_html_ it would lay the graph out twice)
        svg = self._repr_svg_()
        return {'image/svg+xml': svg, 'text/html': self._html(svg), 'text/plain': repr(self)}


class Oversize(Exception):
    """A folding over build_view's `ceiling`, not drawn; `stats`: its View.stats."""

    def __init__(self, stats):
        super().__init__(f"{stats['nodes']} nodes and {stats['edges']} edges")
        self.stats = stats


def build_view(trace, *, token=None, layer=None, head=None, param=None, node=None, depth=None,
               direction=DIRECTIONS[0], level=DEFAULT_LEVEL, budget=DEFAULT_BUDGET, edge_budget=DEFAULT_EDGE_BUDGET,
               expand=(), edge_grads=False, highlight=None, notes=(), legend=True, function=None, line=None,
               document=False, aspect=ASPECTS[0], selection=None, paint_heatmaps=False, ceiling=None):
    """Select, fold and draw one view of `trace`.

    What to show (by precedence): document=True (every op of the document: the
    explorer's top view); param='layer0.attn_wq[3][5]' (a cell: its uses and
    their contributions; depth = hops downstream, default 1) or param='wte' (the
    matrix as a heat-map and its uses per position); node=4711 or node='loss' (its
    neighbourhood, depth hops, default 2; direction 'ancestors', 'descendants' or
    'both'); function='rmsnorm' or line=42 (a trace recorded from a script: what that
    function or source line made); head=h (with layer=, token=); layer=l (token= for one position);
    token=t (default: the last position).

    level: 'auto' (finest that fits budget nodes and edge_budget edges), 'scalar',
    'vector' or 'block'. expand: scope patterns kept at scalar level.
    edge_grads: label edges with local derivative and contribution. aspect: the screen
    shape to lay it out for ('auto', '16:9', ...: graphviz_export.spec.ASPECTS).
    highlight: {node id: reason}, outlined in red; notes: lines for a note box.
    The options and their limits are graphviz_export.spec's (a ViewSpec gives them:
    build_view(trace, **spec.kwargs())). Raises TraceQueryError when the trace has no
    such thing, ViewOptionError (a ValueError) for an option outside its limits.
    selection: what select() gave for these same query arguments, when the caller has it
    already (the explorer's early refusal selects first): not selected again.
    paint_heatmaps: a matrix's heat-map rows drawn as plain boxes (the same layout) and its cells
    kept in View.heatmaps, for a page that paints them (the explorer: a 4 x 64 model's matrix was
    5.7 MB of stripes and tooltips); View.striped() draws it as a picture again.
    ceiling: (nodes, edges) a caller lays out at most: a folding over either raises Oversize (its
    stats) before it is drawn (the explorer's fallback tries views that may not fit: drawing one of
    646 nodes took 0.24 s at 5 M nodes for nothing).
    """
    check_options(token=token, layer=layer, head=head, param=param, node=node, depth=depth, direction=direction,
                  level=level, budget=budget, edge_budget=edge_budget, expand=expand, edge_grads=edge_grads,
                  function=function, line=line, aspect=aspect)
    with remembered(trace):     # a matrix's use records, expanded once for its selection, fold and drawing
        sel = selection if selection is not None else select(
            trace, token=token, layer=layer, head=head, param=param, node=node, depth=depth, direction=direction,
            function=function, line=line, document=document)
        folded = fold(trace, sel, level=level, budget=budget, edge_budget=edge_budget, expand=expand)
        if ceiling is not None and (folded.stats['nodes'] > ceiling[0] or folded.stats['edges'] > ceiling[1]):
            raise Oversize(dict(folded.stats))
        fields, cells = {}, {} if paint_heatmaps else None
        drawn_with = {'edge_grads': edge_grads, 'highlight': highlight, 'notes': tuple(notes), 'legend': legend,
                      'aspect': aspect}
        g = draw(trace, folded, fields=fields, cells=cells, **drawn_with)
    options = {'level': level, 'budget': budget, 'edge_budget': edge_budget, 'expand': list(folded.expand),
               'edge_grads': edge_grads, 'aspect': aspect}
    return View(trace=trace, selection=sel, folded=folded, digraph=g, options=options, fields=fields,
                heatmaps=cells, drawn_with=drawn_with)


def file_name(view, fmt):
    """A default output file name, readable and distinct per view: 'emma-token4.svg'
    (level auto), 'emma-token4-scalar.svg', 'emma-layer0-head1-token3.svg',
    'emma-layer0.attn_wq-3-5.svg' (a cell), 'emma-wte.svg', 'emma-node4711.svg';
    '-expand', '-edge-grads' and '-16x9' (an aspect) mark those options. A trace recorded from a script
    is named after the script."""
    meta = view.trace.meta
    stem = meta.get('doc') or Path(meta.get('recorded_from', {}).get('script') or 'trace').stem
    parts = [safe_name(stem), _view_slug(view)]
    options = view.options
    if options.get('level', 'auto') != 'auto':
        parts.append(options['level'])
    if options.get('expand'):
        parts.append('expand')
    if options.get('edge_grads'):
        parts.append('edge-grads')
    if options.get('aspect', 'auto') != 'auto':
        parts.append(options['aspect'].replace(':', 'x'))
    return f"{'-'.join(parts)}.{fmt}"


_CELL = re.compile(r'^([A-Za-z0-9_.]+)\[(\d+)\]\[(\d+)\]$')


def _view_slug(view):
    q, kind = view.selection.query, view.selection.kind
    token = f"-token{q['token']}" if q.get('token') is not None else ''
    if kind == 'token':
        return f"token{q.get('token')}"
    if kind == 'layer':
        return f"layer{q.get('layer')}{token}"
    if kind == 'head':
        return f"layer{q.get('layer')}-head{q.get('head')}{token}"
    if kind in ('param', 'matrix'):
        text = str(q.get('param', kind))
        cell = _CELL.match(text)
        return safe_name(f"{cell[1]}-{cell[2]}-{cell[3]}" if cell else text, keep='-_.')
    if kind == 'document':
        return 'document'
    if kind in ('function', 'line'):
        return safe_name(f"{kind}-{q.get(kind)}")
    node = q.get('node', '')
    return f"node{node}" if isinstance(node, int) else safe_name(f"node-{node}")


def safe_name(text, keep='-_'):
    """A file-name-safe version of a document or view name (at most 40 characters)."""
    out = ''.join(c if (c.isascii() and c.isalnum()) or c in keep else '_' for c in str(text))
    return out[:40] or 'doc'


def renderer_label(fmt, renderer=DEFAULT_RENDERER):
    """Who draws `fmt` when `renderer` is asked for, in words for messages:
    'native Graphviz (dot)', 'WebAssembly Graphviz' or, for 'dot' and 'json', which
    need no drawing, None. Raises RenderInputError as render would."""
    if fmt in ('dot', 'json'):
        return None
    return RENDERER_WORDS[_render.renderer_for(fmt, renderer)]


RENDERER_WORDS = {'native': 'native Graphviz (dot)', 'wasm': 'WebAssembly Graphviz'}


def render_view(view, fmt='svg', *, path=None, timeout=DEFAULT_TIMEOUT, renderer=DEFAULT_RENDERER):
    """The view rendered as `fmt` bytes ('svg', 'dot', 'json' for the view itself, ...);
    or, given `path`, written there atomically and `path` returned (not the bytes: in a
    REPL or notebook the call then echoes a file name, not 150 KB of SVG).

    When Graphviz's layout exceeds `timeout` seconds, raises ViewLayoutTimeout whose
    message says so and where the DOT source was saved: next to `path` (its name
    with '.dot'), or in the temporary directory.
    """
    if fmt == 'json':
        data = view.to_json().encode('utf-8')
    else:
        try:
            data = _render.render(view.source, fmt, renderer=renderer, timeout=timeout)
        except _render.LayoutTimeout:
            try:
                dot_path = _save_dot(view, path)
                saved = f"DOT source saved to {dot_path}"
            except (WriteError, InputError, OSError) as save_error:
                dot_path, saved = None, f"the DOT source could not be saved either ({save_error})"
            st = view.stats
            raise ViewLayoutTimeout(f"Graphviz layout of this {view.selection.kind} view ({st['nodes']} nodes, "
                                    f"{st['edges']} edges, level {st['level']}) did not finish in {timeout:g} s; "
                                    f"{saved}; {TIMEOUT_HINT}", dot_path) from None
    if path is None:
        return data
    write_atomic(path, data)
    return path


def _save_dot(view, path):
    """Save the DOT source under a name that did not exist (NAME-xxxxxxxx.dot beside
    `path`, else in the temp folder): a failed render never replaces a file."""
    if path is not None:
        root, _ = os.path.splitext(os.path.basename(os.fspath(path)))
        return write_new(os.path.dirname(os.path.abspath(path)), f'{root[:100]}-', '.dot', view.source)
    digest = hashlib.sha256(view.source.encode('utf-8', 'replace')).hexdigest()[:12]
    return write_new(tempfile.gettempdir(), f'microgpt-graph-{digest}-', '.dot', view.source)


# -- JSON --------------------------------------------------------------------------------------
def view_dict(view):
    trace, folded, sel = view.trace, view.folded, view.selection
    nodes = []
    for n in folded.nodes:
        d = {'name': n.name, 'kind': n.kind, 'side': n.side,
             'scope': list(n.scope), 'positions': list(n.positions)}
        if n.kind == 'scalar':
            i = n.ids[0]
            d.update(id=i, op=trace.op_name(i), label=trace.name(i), scope_path=trace.scope_path(i),
                     data=json_safe(trace.data[i]), grad=json_safe(trace.grad[i]))
        elif n.kind == 'ref':
            d['refers'] = list(n.refers)
        else:
            fig = figures(trace, n.values)
            d.update(ids=[[a, b - 1] for a, b in id_runs(n.ids)], ops=op_counts(trace, n.ids), values=len(n.values),
                     **json_safe(fig.to_dict()))
        if n.focus:
            d['focus'] = True
        if n.fan_out:
            d['fan_out'] = n.fan_out
        nodes.append(d)
    edges = []
    for e in folded.edges:
        d = {'src': e.src, 'dst': e.dst, 'kind': e.kind, 'count': e.count, 'contrib': json_safe(e.contrib),
             'contrib_norm': json_safe(e.contrib_norm)}
        if e.local is not None:
            d['local'] = json_safe(e.local)
        if e.sources:
            d['sources'] = [{'src': s, 'count': c, 'contrib': json_safe(x), 'contrib_norm': json_safe(m)}
                            for s, c, x, m in e.sources]
        edges.append(d)
    out = {'format': 'microgpt-graph view', 'version': 1, 'kind': sel.kind, 'title': sel.title,
           'query': sel.query, 'options': view.options, 'stats': view.stats,
           'notes': list(folded.notes), 'nodes': nodes, 'edges': edges}
    if sel.kind == 'param':
        (cell,) = sel.focus
        out['uses'] = [{'node': p, 'local': json_safe(lg), 'contrib': json_safe(c)} for p, lg, c in trace.uses(cell)]
        out['grad'] = json_safe(trace.grad[cell])
    return out
