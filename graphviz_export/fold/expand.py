"""The ids a view's `expand` patterns open: selected nodes whose scope path matches one of them.

    expanded_ids(trace, selection, ['pos11/layer0/attn/rmsnorm'])    # a frozenset of node ids

A view asks this several times with the same selection (the explorer's early refusal, the fold,
the side panel's links; the too-big fallback once per scope it tries): each id's scope is read
once per selection, in C (summary.once), and a pattern's ids are picked from those in C; a token
view of a 4 x 64 model holds 400,000 ids, read per id in Python three times a view (issue 25).
"""

from array import array
from fnmatch import fnmatchcase
from itertools import compress

from microgpt.recording.cells import TraceQueryError
from microgpt.recording.scopes import scope_path

from .summary import once


def _scoped(trace, sel, selected):
    """(the scope id of each selected id, {scope id: path}), once per selection (1.6 MB for 400,000 ids)."""
    def make():
        scopes = array('I', map(trace.scope.__getitem__, selected))
        return scopes, {sid: scope_path(trace.scopes[sid]) for sid in sorted(set(scopes))}
    return once(sel, trace, 'scoped', make)


def expanded_ids(trace, sel, patterns):
    """Ids of selected nodes whose scope path matches one of the glob `patterns` (a frozenset).

    A pattern may name a scope or any part of one: 'pos11/layer0/attn/head2' and
    'head2/attn_weights' both match 'pos11/layer0/attn/head2/attn_weights'."""
    if not patterns:
        return frozenset()
    selected = sel.nodes + sel.inputs + sel.outputs
    scopes, paths = _scoped(trace, sel, selected)
    chosen = set()
    for pat in patterns:        # checked by fold (graphviz_export.spec)
        forms = (pat, pat + '/*', '*/' + pat, '*/' + pat + '/*')
        hit = {sid for sid, path in paths.items() if any(fnmatchcase(path, f) for f in forms)}
        if not hit:
            inner = sorted({trace.scope[i] for i in sel.nodes})      # in the order the model made them
            shown = [paths[sid] for sid in inner]
            more = f", ... ({len(shown)} in all, plus the boundary's)" if len(shown) > 8 else ''
            raise TraceQueryError(f"expand pattern {pat!r} matches no scope in this view; its scopes: "
                                  f"{', '.join(shown[:8])}{more}")
        chosen |= hit
    return frozenset(compress(selected, map(chosen.__contains__, scopes)))
