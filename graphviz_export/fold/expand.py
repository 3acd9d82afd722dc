"""The ids a view's `expand` patterns open: selected nodes whose scope path matches one of them.

    expanded_ids(trace, selection, ['pos11/layer0/attn/rmsnorm'])    # a frozenset of node ids

A view asks this several times with the same selection (the explorer's early refusal, the fold,
the side panel's links; the too-big fallback once per scope it tries): the selection's ids are
cut by scope once per selection (summary.once), and a pattern's ids are its scopes' pieces; a token view of
a 4 x 64 model holds 400,000 ids, read per id in Python three times a view, and once per scope the
fallback tried (issue 25).
"""

from fnmatch import fnmatchcase
from itertools import chain, islice
from operator import lt

from microgpt.recording.cells import TraceQueryError
from microgpt.recording.runs import Ids, run_pieces
from microgpt.recording.scopes import scope_path

from .summary import once


def _scoped(trace, sel):
    """({scope id: [runs of its selected ids: nodes, inputs, outputs]}, {scope id: path}), once per selection:
    each side's ids cut where the trace's runs of one scope change (runs.run_pieces: two bisections a
    piece, none an id), so a pattern's ids are its scopes' pieces."""
    def make():
        groups, run_scope = {}, trace.index('run_scope')
        for side in (sel.nodes, sel.inputs, sel.outputs):
            ids = side if isinstance(side, Ids) or all(map(lt, side, islice(side, 1, None))) else sorted(set(side))
            for r, lo, hi in run_pieces(trace, ids):
                groups.setdefault(run_scope[r], []).append(ids[lo:hi])
        return groups, {sid: scope_path(trace.scopes[sid]) for sid in sorted(groups)}
    return once(sel, trace, 'scoped', make)


def _chosen(trace, sel, patterns):
    """(the selection's ids per scope, its paths, the scope ids `patterns` match); a pattern matching none:
    TraceQueryError naming the view's scopes."""
    groups, paths = _scoped(trace, sel)
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
    return groups, paths, chosen


def expanded_ids(trace, sel, patterns):
    """Ids of selected nodes whose scope path matches one of the glob `patterns` (a frozenset).

    A pattern may name a scope or any part of one: 'pos11/layer0/attn/head2' and
    'head2/attn_weights' both match 'pos11/layer0/attn/head2/attn_weights'."""
    if not patterns:
        return frozenset()
    groups, _, chosen = _chosen(trace, sel, patterns)
    return frozenset(chain.from_iterable(chain.from_iterable(map(groups.__getitem__, chosen))))


def expanded_scopes(trace, sel, pattern):
    """The scope paths of the selection that `pattern` matches, in the order the model made them (by
    their first id): what the explorer's too-big fallback opens one by one."""
    groups, paths, chosen = _chosen(trace, sel, (pattern,))
    return list(dict.fromkeys(paths[sid] for sid in sorted(chosen, key=lambda sid: min(piece[0] for piece in groups[sid]))))
