"""The live view: one layout, the numbers of each training step written into it.

A recording of the same document on other weights has the same graph (same ops, same
ids, same edges), so it folds into the same nodes: only the numbers in the labels and
the fill colours change. Rather than laying the graph out again each step (Graphviz is
the slow part, and the picture would jump), the view is drawn once and each step sends a
compact payload of its visible nodes' numbers, which the page (play.js) writes into the
same SVG:

    drawn = drawn_texts(view)                   # {node name: [field text as drawn, ...]}
    now = numbers(view, trace_k)                 # {node name: [[text] or [text, scale], ..., fill, font]}

`drawn` is sent once with the layout (the page finds each field's <text> by it);
`numbers` per step: the fields in the same order, each [text] or [text, scale] (a text
wider than the field drawn for it shrinks, as the frame player's running sums do:
frame_texts.fitted), then the node's fill and font colour (draw.digraph.look, the colour
drawing uses). Heat-map cells and edge labels keep the numbers they were drawn with.
"""

from microgpt.errors import InputError

from ..draw.digraph import look
from ..draw.labels import drawn_fields, number_fields
from ..fold.summary import Interior
from .diff import check_same_graph
from .frame_texts import fitted


def _numbered(view):
    return [n for n in view.folded.nodes if n.kind in ('scalar', 'group')]


def fields_of(trace, view, interior):
    """{node name: (fill, font, [number field texts])} of the view's nodes on `trace`'s numbers."""
    out = {}
    for n in _numbered(view):
        fill, font, fig, share = look(trace, n, interior)
        out[n.name] = (fill, font, number_fields(trace, n, fig, share))
    return out


def drawn_texts(view):
    """{node name: [number field texts as drawn]}: what the page looks for in the SVG."""
    interior = Interior(view.trace, view.selection.nodes)
    return {name: texts for name, (_, _, texts) in fields_of(view.trace, view, interior).items()}


def numbers(view, trace, drawn=None):
    """The payload of `trace` (a recording of the same graph as view.trace, on other weights)
    for the layout of `view`: {node name: [[text] or [text, scale] per drawn field, fill, font]}."""
    if trace is not view.trace:
        try:
            check_same_graph(view.trace, trace)
        except InputError as e:
            raise InputError(f"the live view needs the same graph at every step: {e}") from None
    drawn = drawn_texts(view) if drawn is None else drawn
    interior = Interior(view.trace, view.selection.nodes)
    out = {}
    for name, (fill, font, texts) in fields_of(trace, view, interior).items():
        was = drawn.get(name)
        if was is None or len(was) != len(texts):
            continue
        out[name] = [*(fitted([t], d) for t, d in zip(texts, was)), fill, font]
    return out


def view_fields(view, trace):
    """{node name: its number fields (labels.drawn_fields)} of `trace`'s numbers on `view`'s
    nodes: View.fields as if the view had been drawn on `trace` (the step-through of a played step)."""
    interior = Interior(view.trace, view.selection.nodes)
    out = {}
    for n in _numbered(view):
        _, _, fig, share = look(trace, n, interior)
        out[n.name] = drawn_fields(trace, n, fig, share)
    return out
