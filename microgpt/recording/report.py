"""What a recorded step contains, as data and as the text `inspect` prints."""

from .identities import KINDS, TITLES, identities


def inspect_report(trace, scopes=True):
    """{doc, script, loss, loss_id, nodes, edges, ops, positions: [{pos, token, target, loss,
    loss_id, nodes}], params: {name: [rows, cols]}, scopes: {path: {nodes, grad_norm,
    zero_grad}}}. The ids are node ids to start from (`render --node ID`). `script`: for a
    trace recorded from a user's script (`record`), {file, step}, else None (doc is then None)."""
    summary = trace.summary()
    toks = trace.meta.get('token_strs', [])
    counts = trace.position_nodes_count()
    loss_ids = trace.meta.get('position_loss_ids') or [None] * len(trace.positions())
    positions = [{'pos': p, 'token': toks[p] if p < len(toks) else None,
                  'target': toks[p + 1] if p + 1 < len(toks) else None,
                  'loss': loss, 'loss_id': loss_id, 'nodes': counts[p]}
                 for p, loss, loss_id in zip(trace.positions(), trace.position_losses(), loss_ids)]
    rf = trace.meta.get('recorded_from')
    script = {'file': rf['script'], 'step': rf['step']} if rf else None
    return {'doc': trace.meta.get('doc'), 'script': script, 'loss': summary['loss'], 'loss_id': trace.meta.get('loss_id'),
            'nodes': summary['nodes'],
            'edges': summary['edges'], 'ops': summary['ops'], 'positions': positions,
            'params': summary['params'], 'scopes': trace.scope_stats() if scopes else {},
            'identities': identity_summary(trace)}


def identity_summary(trace):
    """Per identity of backprop (recording.identities): where it was checked, where it holds, the
    largest deviation, and the first place it fails ({kind, title, checked, holds, deviation, fails})."""
    out = []
    badges = identities(trace)
    for kind in KINDS:
        got = [b for b in badges if b.kind == kind]
        if not got:
            continue
        bad = [b for b in got if not b.holds]
        out.append({'kind': kind, 'title': TITLES[kind], 'checked': len(got), 'holds': len(got) - len(bad),
                    'deviation': _worst(b.deviation for b in got),
                    'fails': bad[0].text if bad else None,
                    'text': got[0].text if kind == 'loss-init' else None})
    return out


def format_report(report):
    """The report as the tables `microgpt-graph inspect` prints."""
    script = report.get('script')
    what = (f"script {script['file']!r}, backward() call {script['step']}" if script and report['doc'] is None
            else f"document {report['doc']!r}")
    lines = [f"{what}: {report['nodes']} nodes, {report['edges']} edges, loss {report['loss']:.6f}",
             'ops: ' + ', '.join(f"{k} {v}" for k, v in report['ops'].items())]
    if report['positions']:     # a script's trace has positions only when its loop variables were found
        lines += ['', 'pos  input   target   loss      nodes  loss node']
    for p in report['positions']:
        token, target = ('?' if t is None else str(t) for t in (p['token'], p['target']))  # a trace file may lack them
        lines.append(f"{p['pos']:3d}  {token:7s} {target:7s} {p['loss']:9.6f} {p['nodes']:6d}  "
                     f"{'' if p.get('loss_id') is None else p['loss_id']}".rstrip())
    if report.get('loss_id') is not None:
        column = "; a position's loss: the 'loss node' column" if report['positions'] else ''
        lines += ['', f"node ids to start from (render --node ID): loss {report['loss_id']}{column}; "
                      f"any id from `export`"]
    lines += ['', 'parameters:']
    for name, (r, c) in report['params'].items():
        lines.append(f"  {name:16s} {r:3d} x {c:<3d}")
    if report.get('identities'):
        lines += ['', 'identities of backprop, checked on this step (holds where / largest deviation):']
        for b in report['identities']:
            mark = '✓' if b['holds'] == b['checked'] else '✗'
            lines.append(f"  {mark} {b['title']}: {b['holds']} of {b['checked']}, largest deviation {b['deviation']:.2g}")
            if b['text']:
                lines.append(f"      {b['text']}")
            if b['fails']:
                lines.append(f"      first failure: {b['fails']}")
    if report['scopes']:
        lines += ['', f"{'scope':40s} {'nodes':>6s} {'grad norm':>11s} {'zero grad':>9s}"]
        for path, s in report['scopes'].items():
            lines.append(f"{path:40s} {s['nodes']:6d} {s['grad_norm']:11.4e} {s['zero_grad']:8.0%}")
    return '\n'.join(lines)


def _worst(xs):
    """The largest of the deviations; NaN if one is NaN (a broken identity is the news)."""
    xs = list(xs)
    return next((x for x in xs if x != x), max(xs))
