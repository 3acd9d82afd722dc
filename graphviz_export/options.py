"""How a view is written out, written once: the formats, the renderers and the
layout timeout (the library checks them, the CLI offers them), and the format a
file name asks for. What a view shows and how it is folded is graphviz_export.spec."""

from pathlib import Path

DEFAULT_TIMEOUT = 60.0      # seconds Graphviz may spend on a layout
# what `render` writes: 'json' is the selected view as data (View.to_json), the rest Graphviz's
FORMATS = ('svg', 'dot', 'json', 'png', 'pdf', 'plain', 'xdot')
DEFAULT_FORMAT = 'svg'
RENDERERS = ('auto', 'native', 'wasm')   # auto: native `dot` when on PATH, else WebAssembly
DEFAULT_RENDERER = 'auto'

__all__ = ['DEFAULT_TIMEOUT', 'FORMATS', 'DEFAULT_FORMAT', 'RENDERERS', 'DEFAULT_RENDERER', 'output_format']


def output_format(outfile, format=None):
    """The format to write: `format` when given, else the suffix of `outfile` when it
    is one of FORMATS ('loss.PNG' -> 'png'), else svg (no file, '-' for stdout, or a
    suffix that is no format: 'picture.txt' holds SVG). As graphviz's get_format,
    but an unknown suffix is not an error."""
    if format is not None:
        return format
    suffix = Path(outfile).suffix.lstrip('.').lower() if outfile else ''
    return suffix if suffix in FORMATS else DEFAULT_FORMAT
