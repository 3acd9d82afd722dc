"""A tour as slides: one SVG (and PNG, with rsvg-convert) per stop and frame position.

A slide is the stop's SVG as the player shows it at that position: the same classes
on the same groups, found by the ids draw gave them (draw/ids.py), the same texts
(each node's fields and each lit edge's label, computed once in steps/frame_texts.py
and placed once in steps/edge_labels.py), the player's CSS inside, and one line at
the bottom saying what the frame does. The SVG is edited as XML (xml.etree), never
as text.
"""

import shutil
import subprocess
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

from microgpt.files import check_output_folder

from ...draw.ids import node_id
from ...render import RenderError
from ...steps.edge_labels import svg_groups
from ...steps.frame_texts import shown_at
from .build import build_stop, stop_lab, stop_time, stop_traces

SVG_NS = 'http://www.w3.org/2000/svg'
XLINK_NS = 'http://www.w3.org/1999/xlink'
SHARED = files('graphviz_export.web') / 'static'


def state(frame, p):
    """The class of a node whose frame is `frame` at position p: as stepper.js sets it."""
    return 'mg-done' if frame < p - 1 else 'mg-current' if frame == p - 1 else 'mg-pending'


def _add_class(el, name):
    if el is not None:
        el.set('class', f"{el.get('class', '')} {name}".strip())


def field_text(g, drawn):
    """The <text> of group `g` that reads `drawn` (a record field as Graphviz drew it), or None."""
    return next((t for t in g.iter(f'{{{SVG_NS}}}text') if t.text == drawn), None)


def frame_svg(svg, fr, p, caption=''):
    """The SVG text of position p (0..count) of frames `fr` (computed with this `svg`)."""
    ET.register_namespace('', SVG_NS)           # keep the usual prefixes when writing it back
    ET.register_namespace('xlink', XLINK_NS)
    root, groups = svg_groups(svg)
    mode = fr['mode']
    for name, info in fr['nodes'].items():
        for part in info.get('parts', ()):         # a heat-map's grad column: hidden until its frame
            if mode == 'forward' or info['frame'] > p - 1:
                _add_class(groups.get(part), 'mg-hidden')
        g = groups.get(node_id(name))
        if g is None:
            continue
        _add_class(g, state(info['frame'], p))
        for field in info.get('fields', ()):
            el = field_text(g, field['drawn'])
            if el is None:
                continue
            shown = shown_at(field, p)
            el.text = shown[0]
            if len(shown) > 1:
                el.set('font-size', repr(float(el.get('font-size')) * shown[1]))     # as stepper.js
    lit = {}                                        # an edge's own label: hidden until its contribution flows
    for f in fr['frames']:
        for e in f['edges']:
            lit.setdefault(e['svg'], f['frame'])
    for svg_id, frame in lit.items():
        if mode == 'forward' or frame > p - 1:
            _add_class(groups.get(svg_id), 'mg-pending')
    cur = fr['frames'][p - 1] if p > 0 else None
    if cur is not None:
        graph = next(g for g in root.iter(f'{{{SVG_NS}}}g') if g.get('class') == 'graph')
        overlay = ET.SubElement(graph, f'{{{SVG_NS}}}g', {'class': 'mg-overlay'})
        for e in cur['edges']:
            _add_class(groups.get(e['svg']), 'mg-active')
            if 'via' in e:
                _add_class(groups.get(e['via']), 'mg-active')
            if mode == 'backward' and e.get('text') and e.get('at'):
                t = ET.SubElement(overlay, f'{{{SVG_NS}}}text',
                                  {'class': 'mg-edge-label', 'x': str(e['at'][0]), 'y': str(e['at'][1])})
                t.text = e['text']
    root.set('class', f'mg-stepper mg-{mode}')
    style = ET.Element(f'{{{SVG_NS}}}style')
    style.text = (SHARED / 'stepper.css').read_text(encoding='utf-8')
    root.insert(0, style)
    count = len(fr['frames'])
    if cur is None:
        line = f"{mode}: frame 0 / {count}, nothing computed yet"
    else:
        what = fr['nodes'][cur['node']].get('label', cur['node'])
        val = cur.get('grad' if mode == 'backward' else 'data')
        line = f"{mode}: frame {p} / {count}: {what}" + (f" = {val!r}" if val is not None else '')
    height = float(root.get('viewBox', '0 0 0 20').split()[3])
    text = ET.SubElement(root, f'{{{SVG_NS}}}text', {'x': '8', 'y': f'{height - 4:.1f}',    # clear of the title
                                                    'style': 'font: bold 13px sans-serif; fill: #b03a2e'})
    text.text = line
    return ET.tostring(root, encoding='unicode')


def write_frames(tour, get_trace, folder, *, renderer='auto', timeout=60.0, write=None, each_stop=None,
                 get_lab=None, png=True):
    """Numbered SVGs stopK-frameNNN.svg (and .png when rsvg-convert is present and `png`) per
    stop and position. Returns the paths written. `write(path, bytes)`: the atomic writer;
    `each_stop`, `get_lab`: as build.build_tour_html's. A PNG costs ~0.5 s a slide (one
    rsvg-convert each), ten times its SVG: `png=False` when only the SVGs are wanted."""
    folder = Path(check_output_folder(folder))
    folder.mkdir(exist_ok=True)     # the last folder only (check_output_folder: its parent exists)
    traces = stop_traces(tour, get_trace)
    converter = shutil.which('rsvg-convert') if png else None
    paths = []
    for k, stop in enumerate(tour.stops, 1):
        trace = traces[stop.doc or tour.doc]
        with stop_time(each_stop, k, timeout) as seconds:
            _, svg, fr, _ = build_stop(trace, stop, renderer=renderer, timeout=seconds,
                                       lab=stop_lab(stop, trace, get_lab))
        if fr is None:
            positions = [None]
        else:
            first, last = stop.frames or (0, len(fr['frames']))
            positions = range(min(first, len(fr['frames'])), min(last, len(fr['frames'])) + 1)
        for p in positions:
            text = svg[svg.index('<svg'):] if fr is None else frame_svg(svg, fr, p, stop.caption)
            path = folder / f'stop{k:02d}-frame{(p or 0):03d}.svg'
            write(path, text.encode('utf-8'))
            paths.append(path)
            if converter:
                write(path.with_suffix('.png'), _png(converter, text, timeout))
                paths.append(path.with_suffix('.png'))
    return paths


def _png(converter, svg, timeout):
    """The PNG of a slide by rsvg-convert; RenderError (one line) when it fails or takes over `timeout` s."""
    try:
        done = subprocess.run([converter, '-f', 'png'], input=svg.encode('utf-8'), capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RenderError(f"rsvg-convert took over {timeout:g} s for one slide") from None
    except OSError as e:
        raise RenderError(f"could not run {converter}: {e.strerror or e}") from None
    if done.returncode != 0:
        first = (done.stderr.decode('utf-8', 'replace').strip().splitlines() or ['no message'])[0]
        raise RenderError(f"rsvg-convert failed on a slide (exit {done.returncode}): {first[:200]}")
    return done.stdout
