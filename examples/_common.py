"""What every example shares: where pictures go, and where the names data is.

Examples write to an output folder (default out/examples/, git-ignored), never
over the committed pictures in examples/; `examples/regenerate.py` writes those.
An example that trains refuses (exit 2) to run without the names data rather
than telling a different story on a built-in list.
"""
import os
import sys
from pathlib import Path

from graphviz_export import render_view
from graphviz_export.diff import relabel_svg
from microgpt.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_OUT = ROOT / 'out' / 'examples'


def out_dir(argv):
    """The output folder: argv[1] if given, else out/examples/ (created)."""
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    path.mkdir(parents=True, exist_ok=True)
    return path


def names_path():
    """The makemore names file: $MICROGPT_NAMES (or $MICROGPT_DATA) when set, else
    ../shared/data/names.txt; exits with status 2 and a one-line message when none exists."""
    explicit = os.environ.get('MICROGPT_NAMES') or os.environ.get('MICROGPT_DATA')
    tried = [explicit] if explicit else [str(ROOT.parent / 'shared' / 'data' / 'names.txt')]
    for p in tried:
        if p and Path(p).is_file():
            return Path(p)
    shown = ', '.join(p for p in tried if p)
    print(f"error: this example needs the names data (the makemore names.txt); not found at {shown}. "
          f"Set MICROGPT_NAMES=/path/to/names.txt", file=sys.stderr)
    sys.exit(2)


def write(views, where, renderer='auto'):
    """Render each (file name, view) to `where`; also the DOT source beside it ('.dot').
    A view of differences (graphviz_export.diff) has its texts relabelled 'Δdata', 'Δgrad'."""
    for name, view in views:
        svg = render_view(view, 'svg', renderer=renderer)
        if 'diff' in view.trace.meta:
            svg = relabel_svg(svg.decode('utf-8')).encode('utf-8')
        write_atomic(Path(where) / name, svg)
        write_atomic((Path(where) / name).with_suffix('.dot'), view.source)
