"""The explorer as a saved notebook shows it, with no kernel: the view as SVG and an offline stepper.

A live widget needs its kernel; GitHub strips scripts, and nbconvert, nbviewer and a notebook
reopened later replay outputs without one. So the widget's output carries, beside the widget:
- `image/svg+xml`: the view's picture, as the explorer drew it (GitHub shows it);
- `text/html`: the same picture, then the view's backprop frames as a one-stop tour page (the
  tours' player and page: web/tour/build.py's tour_html, fed the explorer's own drawing and
  frames, so nothing is laid out twice) without its picture, deflated and in base64, and
  static/snapshot.js, which inflates it in the browser (DecompressionStream: no request, no
  library), puts the picture back in, and plays it in a frame in place of the picture. Without
  scripts the picture stays.

Size (benchmarks/bench_notebook.py prints it): for the default view of 'emma' (token 4 at block
level, 24 nodes, 24 frames) the SVG is 78 kB, the packed stepper ~27 kB of base64; the cell's
output as saved is ~190 kB, ~45 kB gzip-compressed (the .ipynb on disk is not compressed; git and
an HTTP transfer compress it).
"""

import base64
import html
import json
import zlib
from importlib.resources import files
from urllib.parse import parse_qs

from ..tour.build import tour_html
from ..tour.spec import Stop

HEIGHT = 560        # px of the stepper's frame
CAPTION = ("Backprop through this view, frame by frame: each frame lights the node whose grad has just "
           "become final (a saved copy of the explorer; run the cell for the live one).")


def _deflate(text):
    """Raw deflate (what DecompressionStream('deflate-raw') reads), in base64."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(packer.compress(text.encode('utf-8')) + packer.flush()).decode('ascii')


def _picture(api, query, view):
    """The view's SVG as it shows itself: the page's drawing, or, when it has a heat-map the page
    paints (view['heat']), the export's (its rows striped: the same layout)."""
    return view['svg'] if not view['heat'] else api.export('&'.join(filter(None, [query, 'fmt=svg'])))[0].decode('utf-8')


def snapshot(api, query=''):
    """{'image/svg+xml': svg, 'text/html': the picture + the packed stepper} of the explorer's view
    `query` (a state query string), drawn by `api` (the widget's Api: its cached drawing and frames).
    A comparison (cmp) has no step-through: its picture only."""
    view = api.view(query)
    picture = _picture(api, query, view)
    svg = picture[picture.index('<svg'):]
    still = (f'<div class="mg-still">{svg}<p style="font-size:12px;color:#666">{html.escape(view["title"])} '
             f'\u00b7 a saved copy of the microgpt-graph explorer: run the cell for the live one</p></div>')
    if parse_qs(query).get('cmp'):
        return {'image/svg+xml': svg, 'text/html': f'<div class="microgpt-explorer-static">{still}</div>'}
    frames = api.frames(query)
    stop = Stop(caption=CAPTION, view={}, title=view['title'])
    # tour_html reads a stop's View and Trace only for a missing title and for an update table: neither here
    page = tour_html(f"{view['title']} \u00b7 microgpt-graph", [(stop, None, None, picture, frames, None)])
    # the page around its picture: the picture is in the output once (the still), not packed again
    around = page.split(svg)
    assert len(around) == 2, 'the tour page holds the view\'s picture once'
    loader = (files(__package__) / 'static' / 'snapshot.js').read_text(encoding='utf-8')
    body = (f'<div class="microgpt-explorer-static" data-height="{HEIGHT}">{still}'
            f'<script type="application/x-microgpt-tour">{_deflate(json.dumps(around))}</script>'
            f'<script>{loader}</script></div>')
    return {'image/svg+xml': svg, 'text/html': body}
