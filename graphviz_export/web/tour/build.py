"""Build a tour: one self-contained HTML file (slides of it: slides.py).

The HTML holds everything inline: each stop's SVG (laid out once, here), its
frames as JSON (texts and label places included: steps/frames.py), the update
table as HTML (web/update_table.py, the explorer's), and the player's JS and CSS
(web/static/, shared with the explorer; static/ for the tour's own). It opens from
file:// with no server and no network.

Recording is the caller's: `get_trace(doc, checkpoint, seed)` returns the
Trace of a step (the CLI passes its own, which handles checkpoints and data
errors), so this package never imports the model; so is a lab stop's wrong
backward: `get_lab(trace, mode)` returns its microgpt.recording.lab.Lab (the
CLI's runs a fault of microgpt.checks.faults, which this package does not import).
"""

import html
import json
from contextlib import nullcontext
from importlib.resources import files

from microgpt.files import json_safe

from ...steps.diff import delta_trace
from ...steps.frames import frames as view_frames
from ...steps.update import adam_update, delta_heatmap, matrix_summary, params_in_view
from ...view import build_view, render_view
from ..update_table import update_html
from .spec import SELECTORS

STATIC = files(__package__) / 'static'
SHARED = files('graphviz_export.web') / 'static'    # the frame player, escape and number format
SHARED_FILES = ('format.js', 'stepper.js', 'stepper.css', 'viewbox.js')
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


def build_stop(trace, stop, *, renderer='auto', timeout=60.0, lab=None):
    """(view, svg text, frames dict or None, update dict or None) of one stop; the update dict
    carries its matrix view's Δvalue heat-map ('heat': steps.update.delta_heatmap). `timeout`:
    the layout's seconds, or a function called once the view is built that gives them. `lab` (a
    lab stop's microgpt.recording.lab.Lab): drawn as wrong - correct, the update on the wrong grads."""
    options, extra, moved = dict(stop.view), {}, trace
    if lab is not None:
        moved = lab.wrong
        trace = delta_trace(lab.correct, lab.wrong)
        extra['notes'] = [f"lab {lab.mode}: \u0394 = wrong \u2212 correct backward (one layout)", *lab.lines]
        if lab.first is not None:
            extra['highlight'] = {lab.first: 'first node where the two backwards diverge'}
            if not any(options.get(k) is not None for k in SELECTORS):
                options.update(node=lab.first, depth=options.get('depth') or 2)
    view = build_view(trace, **options, **extra)
    svg = render_view(view, 'svg', timeout=timeout() if callable(timeout) else timeout,
                      renderer=renderer).decode('utf-8')
    fr = view_frames(view, stop.step, svg) if stop.step != 'none' else None
    upd = None
    if stop.update:
        ids = params_in_view(view)
        upd = adam_update(moved, ids) if ids else None
        if upd is not None:
            upd['heat'] = delta_heatmap(moved, view, upd['rows'])
    return view, svg, fr, upd


def stop_lab(stop, trace, get_lab):
    """The Lab of a lab stop (get_lab(trace, mode)), else None."""
    if stop.lab is None:
        return None
    if get_lab is None:
        raise ValueError("a tour with lab stops needs get_lab (the CLI passes it)")
    return get_lab(trace, stop.lab)


def update_table(trace, upd):
    """The stop's update table (update_table.update_html with no controls: the first rows)."""
    if upd is None:
        return update_html(None, [], [], count=0)
    rows = upd['rows']
    return update_html(upd, rows[:UPDATE_ROWS], matrix_summary(trace, rows), count=len(rows))


def _json_script(obj):
    """JSON safe inside <script>: no '</' can end the element early; strict JSON (NaN and
    infinity written 'nan', 'inf', '-inf': json_safe), so the page's JSON.parse reads it."""
    return json.dumps(json_safe(obj), separators=(',', ':'), ensure_ascii=False, allow_nan=False).replace('</', '<\\/')


def stop_time(each_stop, k, timeout):
    """The context each stop is drawn in: each_stop(k) (1-based; it yields the layout's timeout, a
    number or a function), else one that yields `timeout`."""
    return each_stop(k) if each_stop is not None else nullcontext(timeout)


def build_tour_html(tour, get_trace, *, renderer='auto', timeout=60.0, each_stop=None, get_lab=None):
    """The whole tour as one HTML string. `each_stop(k)`: a context manager each stop is drawn in,
    yielding its layout's timeout (the command line's --timeout per stop: microgpt_graph);
    `get_lab(trace, mode)`: a lab stop's Lab (stop_lab)."""
    traces = stop_traces(tour, get_trace)
    stops = []
    for k, stop in enumerate(tour.stops):
        trace = traces[stop.doc or tour.doc]
        lab = stop_lab(stop, trace, get_lab)
        with stop_time(each_stop, k + 1, timeout) as seconds:
            built = build_stop(trace, stop, renderer=renderer, timeout=seconds, lab=lab)
        stops.append((stop, lab.wrong if lab else trace, *built))     # a lab's update: on the wrong grads
    return tour_html(tour.title, stops, present=tour.present)


def tour_html(title, stops, present=False):
    """The page of stops already built: (stop, trace, view, svg, frames or None, update or None) each
    (build_stop's, or a view drawn elsewhere: the notebook's static explorer plays its view's frames);
    `present`: open in presentation mode."""
    sections, data = [], []
    for k, (stop, trace, view, svg, fr, upd) in enumerate(stops):
        sections.append(f'<section class="stop" id="stop-{k}" hidden>{_inline_svg(svg)}</section>')
        count = len(fr['frames']) if fr else 0
        first, last = stop.frames if stop.frames else (0, count)
        first, last = min(first, count), min(last, count)
        data.append({'caption': stop.caption, 'title': stop.title or view.selection.title,
                     'frames': fr, 'range': [first, last],
                     'update': update_table(trace, upd) if stop.update else None,
                     'heat': upd['heat'] if upd else None})
    page = {'title': title, 'stops': data, 'present': present}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_static('stepper.css')}
{_static('tour.css')}</style>
</head><body>
<header><div class="cap"><h1>{html.escape(title)}</h1>
<div id="where"></div><p id="caption"></p></div>
<div class="pctl"><button id="pprev" title="one frame back (\u2190)">\u25c0</button>
<button id="pplay" title="play / pause (space)">\u25b6</button>
<button id="pnext" title="one frame on (\u2192)">\u25b6|</button>
<button id="pexit" title="leave presentation mode (Esc)">\u2715</button></div></header>
<main><div id="stage"><div class="camera"><button id="zoomout" title="zoom out (-)">\u2212</button>
<button id="zoomin" title="zoom in (+)">+</button><button id="fit" title="fit the stop (f)">Fit</button></div>
{''.join(sections)}</div>
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
<button id="presentbtn" title="presentation mode (P): the caption large, the chrome one line">Present</button>
<span class="keys">\u2190 \u2192 frame \u00b7 PageUp/PageDown stop \u00b7 space play \u00b7 wheel, drag: zoom, pan
\u00b7 c recentre</span>
</footer>
<script type="application/json" id="tour-data">{_json_script(page)}</script>
<script>{_static('format.js')}</script>
<script>{_static('stepper.js')}</script>
<script>{_static('viewbox.js')}</script>
<script>{_static('tour.js')}</script>
</body></html>
"""
