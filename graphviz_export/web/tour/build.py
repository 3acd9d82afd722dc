"""Build a tour: one self-contained HTML file, or numbered SVG (and PNG) frames for slides.

The HTML holds everything inline: each stop's SVG (laid out once, here), its
frames as JSON, the update table as HTML, and the player's JS and CSS
(static/). It opens from file:// with no server and no network.

Recording is the caller's: `get_trace(doc, checkpoint, seed)` returns the
Trace of a step (the CLI passes its own, which handles checkpoints and data
errors), so this package never imports the model.
"""

import html
import json
import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

from ...steps.frames import frames as view_frames
from ...steps.svg_ids import tag_svg
from ...steps.update import adam_update, params_in_view
from ...view import build_view, render_view

STATIC = files(__package__) / 'static'
SHARED = files('graphviz_export.web') / 'static'    # the frame player, shared with the explorer


def _static(name):
    folder = SHARED if name.startswith('stepper.') else STATIC
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
    """(view, tagged svg text, frames dict or None, update dict or None) of one stop."""
    view = build_view(trace, **stop.view)
    svg = render_view(view, 'svg', timeout=timeout, renderer=renderer).decode('utf-8')
    svg = tag_svg(svg, view.folded)
    fr = view_frames(view, stop.step) if stop.step != 'none' else None
    upd = None
    if stop.update:
        ids = params_in_view(view)
        upd = adam_update(trace, ids) if ids else None
    return view, svg, fr, upd


def update_table(upd, limit=64):
    """The Adam panel as an HTML table (every digit in the title attribute)."""
    if upd is None:
        return '<p>No parameters in this view: nothing to update.</p>'
    head = (f"<p>Adam, {html.escape(upd['source'])}: lr_t = {upd['lr']} \u00d7 (1 \u2212 {upd['step']}/"
            f"{upd['num_steps']}) = {upd['lr_t']!r}; \u03b21 {upd['beta1']}, \u03b22 {upd['beta2']}, "
            f"\u03b5 {upd['eps']}</p>")
    cols = ('name', 'grad', 'm', 'v', 'm_hat', 'v_hat', 'data', 'delta', 'new')
    titles = ('param', 'grad', 'm', 'v', 'm\u0302', 'v\u0302', 'value', '\u0394value', 'new value')
    rows = ['<tr>' + ''.join(f'<th>{t}</th>' for t in titles) + '</tr>']
    for r in upd['rows'][:limit]:
        cells = []
        for c in cols:
            x = r[c]
            cells.append(f'<td>{html.escape(x)}</td>' if isinstance(x, str)
                         else f'<td title="{x!r}" data-value="{x!r}">{x:.4g}</td>')
        rows.append(f'<tr data-id="{r["id"]}">' + ''.join(cells) + '</tr>')
    more = len(upd['rows']) - limit
    tail = f'<p>... and {more} more parameters in view</p>' if more > 0 else ''
    return head + '<table class="mg-update">' + ''.join(rows) + '</table>' + tail


def _json_script(obj):
    """JSON safe inside <script>: no '</' can end the element early."""
    return json.dumps(obj, separators=(',', ':'), ensure_ascii=False).replace('</', '<\\/')


def build_tour_html(tour, get_trace, *, renderer='auto', timeout=60.0):
    """The whole tour as one HTML string."""
    traces = stop_traces(tour, get_trace)
    sections, data = [], []
    for k, stop in enumerate(tour.stops):
        trace = traces[stop.doc or tour.doc]
        view, svg, fr, upd = build_stop(trace, stop, renderer=renderer, timeout=timeout)
        sections.append(f'<section class="stop" id="stop-{k}" hidden>{_inline_svg(svg)}</section>')
        count = len(fr['frames']) if fr else 0
        first, last = stop.frames if stop.frames else (0, count)
        first, last = min(first, count), min(last, count)
        data.append({'caption': stop.caption, 'title': stop.title or view.selection.title,
                     'frames': fr, 'range': [first, last],
                     'update': update_table(upd) if stop.update else None})
    page = {'title': tour.title, 'stops': data}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(tour.title)}</title>
<style>{_static('stepper.css')}
{_static('tour.css')}</style>
</head><body>
<header><h1>{html.escape(tour.title)}</h1>
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
<script>{_static('stepper.js')}</script>
<script>{_static('tour.js')}</script>
</body></html>
"""


# -- frames for slides -------------------------------------------------------------------------
def frame_svg(svg, fr, p, caption=''):
    """The SVG of position p (0..count) of `fr`, its classes set as the player sets them,
    the stepper CSS inside, and one line of text saying what the frame does."""
    states = {}
    for name, info in fr['nodes'].items():
        k = info['frame']
        states[f'node-{name}'] = 'mg-done' if k < p - 1 else 'mg-current' if k == p - 1 else 'mg-pending'
    active = set()
    cur = fr['frames'][p - 1] if p > 0 else None
    if cur:
        for e in cur['edges']:
            active.add(e['svg'])
            if 'via' in e:
                active.add(e['via'])

    def cls(m):
        gid, kind = m.group(1), m.group(2)
        extra = [states[gid]] if gid in states else []
        if gid in active:
            extra.append('mg-active')
        return f'<g id="{gid}" class="{" ".join([kind] + extra)}">'

    out = re.sub(r'<g id="([^"]*)" class="(node|edge|cluster)">', cls, _inline_svg(svg))
    out = re.sub(r'<svg\b([^>]*)>', lambda m: f'<svg{m.group(1).replace("class=", "data-class=")} '
                 f'class="mg-stepper mg-{fr["mode"]}">', out, count=1)
    if cur is None:
        line = f"{fr['mode']}: frame 0 / {len(fr['frames'])}, nothing computed yet"
    else:
        what = fr['nodes'][cur['node']].get('label', cur['node'])
        val = cur.get('grad' if fr['mode'] == 'backward' else 'data')
        line = f"{fr['mode']}: frame {p} / {len(fr['frames'])}: {what}" + (f" = {val!r}" if val is not None else '')
    out = _hide_unknown(out, fr['mode'])
    style = f'<style>{_static("stepper.css")}</style>'
    vb = re.search(r'viewBox="[\d.\-]+ [\d.\-]+ [\d.]+ ([\d.]+)"', out)
    y = float(vb.group(1)) - 4 if vb else 16      # the bottom line, clear of the title at the top
    text = f'<text x="8" y="{y:.1f}" style="font: bold 13px sans-serif; fill: #b03a2e">{html.escape(line)}</text>'
    end = out.rindex('</svg>')
    return out[:out.index('>') + 1] + style + out[out.index('>') + 1:end] + text + out[end:]


def _hide_unknown(svg, mode):
    """Texts of values not yet computed, as the player shows them: 'grad ?' (backward:
    nodes not yet final; forward: every grad) and 'data ?' (forward: nodes not yet reached)."""
    parts = svg.split('<g id="')
    state = None
    for k in range(1, len(parts)):
        head = parts[k]
        if not head.startswith('a_'):       # a top-level group; 'a_...' are its tooltip links
            m = re.match(r'[^"]*" class="([^"]*)"', head)
            state = m.group(1) if m else None
        if not state or not state.startswith('node'):
            continue
        pending = 'mg-pending' in state
        if mode == 'forward' or pending:
            head = re.sub(r'>grad [^<]*<', '>grad ?<', head)
        if mode == 'forward' and pending:
            head = re.sub(r'>data [^<]*<', '>data ?<', head)
        parts[k] = head
    return '<g id="'.join(parts)


def write_frames(tour, get_trace, folder, *, renderer='auto', timeout=60.0, write=None):
    """Numbered SVGs stopK-frameNNN.svg (and .png when rsvg-convert is present) per stop
    and position. Returns the paths written. `write(path, bytes)`: the atomic writer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    traces = stop_traces(tour, get_trace)
    converter = shutil.which('rsvg-convert')
    paths = []
    for k, stop in enumerate(tour.stops, 1):
        _, svg, fr, _ = build_stop(traces[stop.doc or tour.doc], stop, renderer=renderer, timeout=timeout)
        if fr is None:
            positions, fr = [None], None
        else:
            first, last = stop.frames or (0, len(fr['frames']))
            positions = range(min(first, len(fr['frames'])), min(last, len(fr['frames'])) + 1)
        for p in positions:
            text = _inline_svg(svg) if fr is None else frame_svg(svg, fr, p, stop.caption)
            path = folder / f'stop{k:02d}-frame{(p or 0):03d}.svg'
            write(path, text.encode('utf-8'))
            paths.append(path)
            if converter:
                png = subprocess.run([converter, '-f', 'png'], input=text.encode('utf-8'), capture_output=True,
                                     check=True, timeout=timeout).stdout
                write(path.with_suffix('.png'), png)
                paths.append(path.with_suffix('.png'))
    return paths
