"""Build a tour: one self-contained HTML file (slides of it: slides.py).

The HTML holds everything inline: each stop's SVG (laid out once, here), its
frames as JSON (texts and label places included: steps/frames.py), the update
table as HTML (web/update_table.py, the explorer's), and the player's JS and CSS
(web/static/, shared with the explorer; static/ for the tour's own). It opens from
file:// with no server and no network.

Recording is the caller's: `get_trace(doc, checkpoint, seed)` returns the
Trace of a step (the CLI passes its own, which handles checkpoints and data
errors), so this package never imports the model.
"""

import html
import json
from importlib.resources import files

from ...steps.frames import frames as view_frames
from ...steps.update import adam_update, matrix_summary, params_in_view
from ...view import build_view, render_view
from ..update_table import update_html

STATIC = files(__package__) / 'static'
SHARED = files('graphviz_export.web') / 'static'    # the frame player, escape and number format
SHARED_FILES = ('format.js', 'stepper.js', 'stepper.css')
UPDATE_ROWS = 64        # rows of a stop's update table (the per-matrix summary covers them all)


def _static(name):
    folder = SHARED if name in SHARED_FILES else STATIC
    return (folder / name).read_text(encoding='utf-8')


def _inline_svg(svg):
    """The <svg> element alone (no XML prolog, doctype or comments before it)."""
    return svg[svg.index('<svg'):]


def stop_traces(tour, get_trace):
    """{doc: Trace} for every document the tour shows (each recorded once)."""
    out = {}
    for s in tour.stops:
        doc = s.doc or tour.doc
        if doc not in out:
            out[doc] = get_trace(doc, tour.checkpoint, tour.seed)
    return out


def build_stop(trace, stop, *, renderer='auto', timeout=60.0):
    """(view, svg text, frames dict or None, update dict or None) of one stop."""
    view = build_view(trace, **stop.view)
    svg = render_view(view, 'svg', timeout=timeout, renderer=renderer).decode('utf-8')
    fr = view_frames(view, stop.step, svg) if stop.step != 'none' else None
    upd = None
    if stop.update:
        ids = params_in_view(view)
        upd = adam_update(trace, ids) if ids else None
    return view, svg, fr, upd


def update_table(trace, upd):
    """The stop's update table (update_table.update_html with no controls: the first rows)."""
    if upd is None:
        return update_html(None, [], [], count=0)
    rows = upd['rows']
    return update_html(upd, rows[:UPDATE_ROWS], matrix_summary(trace, rows), count=len(rows))


def _json_script(obj):
    """JSON safe inside <script>: no '</' can end the element early."""
    return json.dumps(obj, separators=(',', ':'), ensure_ascii=False).replace('</', '<\\/')


def build_tour_html(tour, get_trace, *, renderer='auto', timeout=60.0):
    """The whole tour as one HTML string."""
    traces = stop_traces(tour, get_trace)
    stops = []
    for stop in tour.stops:
        trace = traces[stop.doc or tour.doc]
        stops.append((stop, trace, *build_stop(trace, stop, renderer=renderer, timeout=timeout)))
    return tour_html(tour.title, stops)


def tour_html(title, stops):
    """The page of stops already built: (stop, trace, view, svg, frames or None, update or None) each
    (build_stop's, or a view drawn elsewhere: the notebook's static explorer plays its view's frames)."""
    sections, data = [], []
    for k, (stop, trace, view, svg, fr, upd) in enumerate(stops):
        sections.append(f'<section class="stop" id="stop-{k}" hidden>{_inline_svg(svg)}</section>')
        count = len(fr['frames']) if fr else 0
        first, last = stop.frames if stop.frames else (0, count)
        first, last = min(first, count), min(last, count)
        data.append({'caption': stop.caption, 'title': stop.title or view.selection.title,
                     'frames': fr, 'range': [first, last],
                     'update': update_table(trace, upd) if stop.update else None})
    page = {'title': title, 'stops': data}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_static('stepper.css')}
{_static('tour.css')}</style>
</head><body>
<header><h1>{html.escape(title)}</h1>
<div id="where"></div><p id="caption"></p></header>
<main><div id="stage">{''.join(sections)}</div>
<aside><div id="panel"></div><div id="update"></div></aside></main>
<footer>
<button id="prev-stop" title="previous stop (PageUp)">\u00ab stop</button>
<button id="prev" title="one frame back (\u2190)">|\u25c0</button>
<button id="play" title="play / pause (space)">\u25b6</button>
<button id="next" title="one frame on (\u2192)">\u25b6|</button>
<button id="next-stop" title="next stop (PageDown)">stop \u00bb</button>
<input id="scrub" type="range" min="0" max="0" value="0" aria-label="frame">
<label>speed <select id="speed"><option>0.5</option><option selected>1</option><option>2</option>
<option>4</option><option>8</option></select></label>
<span class="keys">\u2190 \u2192 frame \u00b7 PageUp/PageDown stop \u00b7 space play</span>
</footer>
<script type="application/json" id="tour-data">{_json_script(page)}</script>
<script>{_static('format.js')}</script>
<script>{_static('stepper.js')}</script>
<script>{_static('tour.js')}</script>
</body></html>
"""
