"""What every example shares: where pictures go, and where the names data is.

Examples write to an output folder (default out/examples/, git-ignored), never
over the committed pictures in examples/; `examples/regenerate.py` writes those.
An example that trains refuses (exit 2) to run without the names data rather
than telling a different story on a built-in list.
"""
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from graphviz_export import render_view
from microgpt.data import data_path_from_env, names_cache_path
from microgpt.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_OUT = ROOT / 'out' / 'examples'


def out_dir(argv):
    """The output folder: argv[1] if given, else out/examples/ (created)."""
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    path.mkdir(parents=True, exist_ok=True)
    return path


def names_path():
    """The makemore names file: $MICROGPT_DATA (alias $MICROGPT_NAMES) when set, else
    ../shared/data/names.txt, else the copy `microgpt-graph train` downloaded into
    the user cache; exits with status 2 and a one-line message when none exists."""
    named = data_path_from_env()
    tried = [named[0]] if named else [ROOT.parent / 'shared' / 'data' / 'names.txt', names_cache_path()]
    for p in tried:
        if p.is_file():
            return p
    shown = ', '.join(str(p) for p in tried)
    print(f"error: this example needs the names data (the makemore names.txt); not found at {shown}. "
          f"Set MICROGPT_DATA=/path/to/names.txt, or run `microgpt-graph train` once to download it", file=sys.stderr)
    sys.exit(2)


def write(views, where, renderer='auto'):
    """Render each (file name, view) to `where`; also the DOT source beside it ('.dot').
    (A view of differences, graphviz_export.steps.diff, says 'Δdata', 'Δgrad' from its labels.)"""
    for name, view in views:
        write_atomic(Path(where) / name, render_view(view, 'svg', renderer=renderer))
        write_atomic((Path(where) / name).with_suffix('.dot'), view.source)


@contextmanager
def progress(label, total):
    """An on_step(step, num_steps, loss) callback for microgpt.train.train that
    draws a click progress bar on stderr; draws nothing when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield lambda step, num_steps, loss: bar.update(1)
