"""What a recorded step contains, as data and as the text `inspect` prints."""


def inspect_report(trace, scopes=True):
    """{doc, loss, nodes, edges, ops, positions: [{pos, token, target, loss, nodes}],
    params: {name: [rows, cols]}, scopes: {path: {nodes, grad_norm, zero_grad}}}."""
    summary = trace.summary()
    toks = trace.meta.get('token_strs', [])
    counts = trace.position_nodes_count()
    positions = [{'pos': p, 'token': toks[p] if p < len(toks) else None,
                  'target': toks[p + 1] if p + 1 < len(toks) else None,
                  'loss': loss, 'nodes': counts[p]}
                 for p, loss in zip(trace.positions(), trace.position_losses())]
    return {'doc': trace.meta.get('doc'), 'loss': summary['loss'], 'nodes': summary['nodes'],
            'edges': summary['edges'], 'ops': summary['ops'], 'positions': positions,
            'params': summary['params'], 'scopes': trace.scope_stats() if scopes else {}}


def format_report(report):
    """The report as the tables `microgpt-graph inspect` prints."""
    lines = [f"document {report['doc']!r}: {report['nodes']} nodes, {report['edges']} edges, "
             f"loss {report['loss']:.6f}",
             'ops: ' + ', '.join(f"{k} {v}" for k, v in report['ops'].items()),
             '', 'pos  input   target   loss      nodes']
    for p in report['positions']:
        token, target = ('?' if t is None else str(t) for t in (p['token'], p['target']))  # a trace file may lack them
        lines.append(f"{p['pos']:3d}  {token:7s} {target:7s} {p['loss']:9.6f} {p['nodes']:6d}")
    lines += ['', 'parameters:']
    for name, (r, c) in report['params'].items():
        lines.append(f"  {name:16s} {r:3d} x {c:<3d}")
    if report['scopes']:
        lines += ['', f"{'scope':40s} {'nodes':>6s} {'grad norm':>11s} {'zero grad':>9s}"]
        for path, s in report['scopes'].items():
            lines.append(f"{path:40s} {s['nodes']:6d} {s['grad_norm']:11.4e} {s['zero_grad']:8.0%}")
    return '\n'.join(lines)
