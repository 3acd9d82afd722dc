"""Before/after: two recordings of the same document drawn as one picture of differences.

Two checkpoints, or one model before and after N training steps, give two
traces of the same document with the same graph (same ops, same edges, same
scopes); only the numbers differ. `delta_trace(before, after)` is a Trace with
that graph whose columns are the differences, after - before: data (Δθ for the
parameters, Δ activation elsewhere), grad, local derivatives and contributions.
Drawing it with the ordinary pipeline gives ONE layout (the graph is the same,
so is the folding) and ONE colour scale (every fill comes from the same style
function of Δgrad; a matrix heat-map scales Δθ and Δgrad by their own largest
|Δ|, as it does for values). The delta trace carries meta['diff'], so its labels
say 'Δdata' / 'Δgrad' / 'Δ loss' from the start (draw/labels.words), and a note
box gives the loss before, after and its change.
"""

from array import array

from microgpt.errors import InputError
from microgpt.recording import Trace

from ..view import build_view, render_view


class DiffError(InputError):
    """The two traces are not recordings of the same graph."""


def check_same_graph(before, after):
    """Raise DiffError naming the first difference between the two traces' graphs."""
    doc_a, doc_b = before.meta.get('doc'), after.meta.get('doc')
    if doc_a != doc_b:
        raise DiffError(f"the two recordings are of different documents ({doc_a!r} and {doc_b!r}); "
                        f"a before/after needs the same document")
    for col in ('op', 'scope', 'child_ptr', 'child', 'op_names'):
        if getattr(before, col) != getattr(after, col):
            raise DiffError(f"the two recordings of {doc_a!r} have different graphs (column {col!r} differs): "
                            f"same document, but not the same model configuration")
    if before.param_shapes != after.param_shapes or before.scopes != after.scopes:
        raise DiffError("the two recordings have different parameter shapes or scopes: not the same model")


def _sub(a, b):
    return array('d', map(float.__sub__, a, b))


def delta_trace(before, after):
    """A Trace with `after`'s graph whose data, grad, local and contributions are after - before."""
    check_same_graph(before, after)
    meta = dict(after.meta)
    meta['diff'] = {'loss_before': before.loss, 'loss_after': after.loss, 'loss_delta': after.loss - before.loss}
    t = Trace(op=after.op, data=_sub(after.data, before.data), grad=_sub(after.grad, before.grad),
              scope=after.scope, scopes=after.scopes, child_ptr=after.child_ptr, child=after.child,
              local=_sub(after.local, before.local), backward_order=after.backward_order,
              pow_exponent=after.pow_exponent, param_names=after.param_names,
              param_shapes=after.param_shapes, param_base=after.param_base, meta=meta,
              op_names=after.op_names, source=after.source, sources=after.sources)   # a script's ops and lines
    t._cache['contrib'] = _sub(after.contrib, before.contrib)
    return t


def loss_lines(before, after, labels=('before', 'after')):
    d = after.loss - before.loss
    return [f"\u0394 = {labels[1]} \u2212 {labels[0]} everywhere in this picture (one layout, one colour scale)",
            f"loss {labels[0]} {before.loss:.6f} \u2192 {labels[1]} {after.loss:.6f}   (\u0394 loss {d:+.6f})"]


def build_diff(before, after, labels=('before', 'after'), **view_options):
    """The View of the differences (build_view's options: token=, layer=, param=, level=, ...)."""
    delta = delta_trace(before, after)
    notes = list(view_options.pop('notes', ())) + loss_lines(before, after, labels)
    return build_view(delta, notes=notes, **view_options)


def diff_svg(before, after, labels=('before', 'after'), *, renderer='auto', timeout=60.0, **view_options):
    """(view, svg text) of the before/after picture. `timeout`: the layout's seconds, or a function
    called once the view is built that gives them (what is left of a whole drawing's time)."""
    view = build_diff(before, after, labels, **view_options)
    svg = render_view(view, 'svg', timeout=timeout() if callable(timeout) else timeout,
                      renderer=renderer).decode('utf-8')
    return view, svg
