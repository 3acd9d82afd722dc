"""The explorer page's files: served one by one (server.py) or inlined into one document (a host
with no server: the notebook widget, graphviz_export/web/notebook).

Both read the same fixed list: every file of static/ beside this module, and the SHARED files
of other packages (the step-through player, escape and number format, shared with the tours),
so the page a notebook shows is the page the server serves, byte for byte, but for where its
requests go (static/transport.js decides that at run time).
"""

import re
from importlib.resources import files

TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
         '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png',
         '.txt': 'text/plain; charset=utf-8'}

# the step-through player, escape and number format are shared with the tours (graphviz_export/web/static):
# served from there, not copied
SHARED = {'graphviz_export.web': ('format.js', 'stepper.js', 'stepper.css', 'viewbox.js')}

# how index.html names its scripts and styles (the page's own markup: one tag per file)
_REFS = re.compile(r'<script src="/static/([\w.-]+\.js)"></script>|<link rel="stylesheet" href="/static/([\w.-]+\.css)">')


def assets():
    """{'/static/explorer.js': (bytes, type)}: every file of the asset folder and the SHARED
    files of other packages, read once (a fixed list: no request path is ever joined); '/' is the page."""
    folder = files(__package__) / 'static'
    out = {}
    for item in folder.iterdir():
        name = item.name
        ext = name[name.rfind('.'):] if '.' in name else ''
        if item.is_file() and ext in TYPES:
            out['/static/' + name] = (item.read_bytes(), TYPES[ext])
    for package, names in SHARED.items():
        for name in names:
            out['/static/' + name] = ((files(package) / 'static' / name).read_bytes(), TYPES[name[name.rfind('.'):]])
    out['/'] = out['/static/index.html']
    return out


def inline_page():
    """index.html with each script and stylesheet it names put inline: one self-contained document
    (for a srcdoc iframe: no request leaves it)."""
    found = assets()

    def inline(m):
        name = m[1] or m[2]
        text = found['/static/' + name][0].decode('utf-8')
        if '</script' in text.lower() or '</style' in text.lower():
            raise ValueError(f"{name} holds a closing tag and cannot be inlined")
        return f'<script>{text}</script>' if m[1] else f'<style>{text}</style>'

    return _REFS.sub(inline, found['/'][0].decode('utf-8'))
