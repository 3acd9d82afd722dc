"""The exporter's choices and defaults, written once: the library checks them and
the CLI offers them (click.Choice over these tuples, defaults from here)."""

from microgpt.errors import InputError

LEVELS = ('auto', 'scalar', 'vector', 'block')
DEFAULT_LEVEL = 'auto'
DEFAULT_BUDGET = 150        # visible nodes (references included, but those between a vector view's rows) that level auto allows
DEFAULT_EDGE_BUDGET = 400   # drawn edges that level auto allows (edges make `dot` slow)
DIRECTIONS = ('both', 'ancestors', 'descendants')
DEFAULT_TIMEOUT = 60.0      # seconds Graphviz may spend on a layout
# what `render` writes: 'json' is the selected view as data (View.to_json), the rest Graphviz's
FORMATS = ('svg', 'dot', 'json', 'png', 'pdf', 'plain', 'xdot')
RENDERERS = ('auto', 'native', 'wasm')   # auto: native `dot` when on PATH, else WebAssembly
DEFAULT_RENDERER = 'auto'

__all__ = ['LEVELS', 'DEFAULT_LEVEL', 'DEFAULT_BUDGET', 'DEFAULT_EDGE_BUDGET', 'DIRECTIONS', 'DEFAULT_TIMEOUT',
           'FORMATS', 'RENDERERS', 'DEFAULT_RENDERER', 'ViewOptionError', 'check_options']


class ViewOptionError(InputError):
    """A view option outside what is allowed; the message names both."""


def check_options(level, budget, edge_budget):
    if level not in LEVELS:
        raise ViewOptionError(f"level {level!r} is not one of: {', '.join(LEVELS)}")
    for name, value in (('budget', budget), ('edge_budget', edge_budget)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ViewOptionError(f"{name} must be a positive integer, got {value!r}")
