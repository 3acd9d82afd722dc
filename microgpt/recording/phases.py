"""What a long piece of work says about itself, in one place: the terminal's progress line
(microgpt_graph.progress.Phases) and the explorer's progress bar (graphviz_export.web.explorer.work)
both read these figures, so the page and the terminal show the same phase, percentage and time left.

    phase_figures('recording', 5, 12, 4.0)
    {'phase': 'recording', 'percent': 41, 'left': 6, 'line': 'recording: 41% (6 s left)'}

`done`/`total` are what the work reported (record_step: positions of the forward pass, then
'backward' and 'building the trace' 0 of 1, 1 of 1); `elapsed`: seconds since this phase began.
Time left is the phase's elapsed time scaled by what remains (None while nothing is done).
"""


def phase_figures(phase, done, total, elapsed):
    """{phase, percent (None when there is nothing to count), left (s, or None), line}."""
    if not total:
        return {'phase': phase, 'percent': None, 'left': None, 'line': f"{phase}: {elapsed:.0f} s"}
    if done >= total:
        return {'phase': phase, 'percent': 100, 'left': 0, 'line': f"{phase}: 100% ({elapsed:.1f} s)"}
    pct = 100 * done // total
    left = elapsed * (total - done) / done if done else None
    words = f"{left:.0f} s left" if left is not None else 'time left unknown'
    return {'phase': phase, 'percent': pct, 'left': None if left is None else round(left, 1),
            'line': f"{phase}: {pct}% ({words})"}
