"""The side panel's "why is this grad what it is" and the view's identity badges, as the page's JSON.

    node_why(trace, i, sources, view)   # made by, the rule of each input, the paths (each with its
                                        # route in the view on screen), the identities it is part of
    view_badges(trace, view)            # {drawn node: [badge]}: the identities that hold there
    route(view, nodes)                  # the drawn nodes and edge ids a path of node ids runs through

The figures are the recording package's (microgpt.recording.why and its parts); here
they become what the page shows: every float as its repr (every digit, as the panel's
other numbers), a path as the values it passes ('loss ← loss_t@pos4 ← ...'), and each
path's route in the drawn view: the visible nodes holding its nodes, and the ids of
the drawn edges between them (draw/ids.py), which the page outlines.
"""

from bisect import bisect_left

from microgpt.recording.identities import by_node, identities
from microgpt.recording.paths import K, count_text
from microgpt.recording.runs import holds
from microgpt.recording.why import why

from ...draw.ids import edge_id
from ...draw.style import full
from ...fold.owners import Owners


def owners(view):
    """node id -> drawn node name (`.get`) of every id a drawn node (not a reference) stands for (fold.owners)."""
    return Owners(view.folded)


def route(view, nodes, owner=None):
    """{'nodes': [drawn names], 'edges': [edge ids]} a path of node ids (loss first) runs through
    in `view`: each id's drawn node once, in path order, and the drawn edges between consecutive
    ones (data flows child -> user: the edge from the later name to the earlier)."""
    owner = owners(view) if owner is None else owner
    drawn = {(e.src, e.dst) for e in view.folded.edges}
    names, edges = [], []
    for i in nodes:
        name = owner.get(i)
        if name is None or (names and names[-1] == name):
            continue
        if names and (name, names[-1]) in drawn:
            edges.append(edge_id(name, names[-1]))
        if name not in names:
            names.append(name)
    return {'nodes': names, 'edges': edges}


def node_why(trace, i, sources, view=None, owner=None, k=K):
    """The page's answer to "why is this grad what it is" for node i (see the module docstring)."""
    d = why(trace, i, k, sources)
    rules = [{'text': r['text'], 'kind': r['kind'], 'agrees': r['agrees'], 'exact': r['exact'],
              'value': full(r['value']), 'stored': full(r['stored']), 'input': r['input']} for r in d['rules']]
    out = {'made_by': d['made_by'], 'rules': rules, 'kv': None, 'paths': None,
           'identities': [dict(b.to_dict(), deviation=full(b.deviation)) for b in d['identities']]}
    if d['kv'] is not None:
        out['kv'] = {'positions': [{'pos': r['pos'], 'sum': full(r['sum'])} for r in d['kv']['positions']],
                     'total': full(d['kv']['total']), 'grad': full(d['kv']['grad'])}
    p = d['paths']
    if p is not None:
        owner = owner if owner is not None or view is None else owners(view)
        paths = []
        for path in p['paths']:
            row = {'product': full(path['product']), 'zeros': path['zeros'], 'length': len(path['edges']),
                   'stops': [{'id': j, 'label': name} for j, name in path['stops']],
                   'nodes': path['nodes']}
            if view is not None:
                row['route'] = route(view, path['nodes'], owner)
            paths.append(row)
        out['paths'] = {'paths': paths, 'grad': full(p['grad']), 'listed_sum': full(p['listed_sum']),
                        'remainder': [full(r) for r in p['remainder']], 'exact': p['exact'],
                        'count': count_text(p['count']), 'others': count_text(p['others']), 'order': p['order'],
                        'why_zero': _why_zero(trace, p['why_zero'])}
    return out


def _why_zero(trace, wz):
    if wz is None:
        return None
    out = {'kind': wz['kind'], 'text': wz['text']}
    if 'edges' in wz:
        out['edges'] = [{'user': e['user'], 'label': trace.name(e['user']), 'why': e['why'], 'x': full(e['x'])}
                        for e in wz['edges'][:20]]
        out['n_edges'] = wz['n_edges']
    return out


def view_badges(trace, view):
    """{drawn node name: [{'kind', 'title', 'text', 'deviation'}]} of the identities that hold for
    the nodes a drawn node stands for (each badge once per drawn node); identities that fail are
    not badges: the panel of a node they concern says so."""
    if 'loss_id' not in trace.meta or trace.meta.get('diff') is not None:
        return {}
    badges = identities(trace)
    index = by_node(trace)
    about = sorted(index)       # the nodes badges are about, found per run of a node's ids, not per id
    out = {}
    for n in view.folded.nodes:
        if n.kind == 'ref':
            continue
        got = []
        for i in _about(about, n):
            for k in index[i]:
                if badges[k].holds and k not in got:
                    got.append(k)
        if got:
            out[n.name] = [{'kind': badges[k].kind, 'title': badges[k].title, 'text': badges[k].text,
                            'deviation': full(badges[k].deviation)} for k in got]
    return out


def _about(about, n):
    """The ids of `about` (sorted) that drawn node `n` stands for, ascending: per run of its ids (a
    token view's groups: a few long runs), or, when fewer of `about` lie between its first and last
    id than it has runs (a matrix's uses: 16,384 single ids a group, a few badge nodes among them),
    each of those looked up in its sorted ids (a bisection each, not one per run)."""
    runs, ids = n.runs, n.ids
    lo, hi = bisect_left(about, runs[0][0]), bisect_left(about, runs[-1][1])
    if hi - lo < len(runs):
        return [i for i in about[lo:hi] if holds(ids, i)]
    return [i for a, b in runs for i in about[bisect_left(about, a):bisect_left(about, b)]]
