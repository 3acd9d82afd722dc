"""A lower bound on the edges a fold draws, read from the trace's run records before folding,
so that a fold which cannot fit is not built only to learn it: a layer at every position of
a 12-position document, heads apart, draws 408 edges between its interior groups (each head
reads every earlier position's keys), over the 400 that level auto allows; built anyway it was
a third of that view's time at 5 M nodes (fold then folds the heads in and builds again).
"""

from bisect import bisect_left

from .summary import interior_of


def interior_edge_floor(trace, sel, key_of):
    """The number of distinct (child group, parent group) pairs of the view's interior that the
    run records name, `key_of(scope)` an interior scope's group key: a lower bound on the edges
    a block fold draws, since a record of (run, child scope) is an edge from a node of the run
    into that scope, an interior group's edges are never referenced away at block level
    (folding._reference_high_fanout) but in the whole document (_reference_other_rows: 0
    then), and the edges between two groups are one drawn edge. 0 unless the interior is whole
    scopes (a layer, a token: every node of a scope in it, so every child a record names is)."""
    if sel.kind == 'document' or not sel.nodes:
        return 0
    scopes = interior_of(trace, sel).scopes    # the view's Interior, made once: its drawing reads it too
    if not scopes:
        return 0
    starts, _ = trace.scope_runs()
    rec_ptr, rec_scope, rec_count = trace.index('rec_ptr'), trace.index('rec_scope'), trace.index('rec_count')
    held = trace.runs_of_scope()
    key = {sid: key_of(trace.scopes[sid]) for sid in scopes}
    pairs = set()
    for sid in sorted(scopes):
        kp = key[sid]
        for a, _ in held[sid]:
            r = bisect_left(starts, a)       # a scope's runs are the trace's runs
            for k in range(rec_ptr[r], rec_ptr[r + 1]):
                kc = key.get(rec_scope[k])
                if kc is not None and kc != kp and rec_count[k]:
                    pairs.add((kc, kp))
    return len(pairs)
