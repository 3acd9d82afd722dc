"""Errors of the render step: one line each, fit to show a user."""

from microgpt.errors import InputError

TIMEOUT_HINT = 'try a smaller view (e.g. --level block or a smaller --budget)'


class RenderError(Exception):
    """Rendering failed while working (Graphviz refused the source, crashed, ...)."""


class LayoutTimeout(RenderError):
    """Graphviz's layout ran longer than the allowed time."""


class RenderInputError(RenderError, InputError):
    """A render that cannot be asked for: an unknown format or renderer, or one
    that is not installed here."""
