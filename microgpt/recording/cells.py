"""Parameter names and cells: the one place that reads and checks them.

    parse_param('layer0.attn_wq[3][5]') -> ('layer0.attn_wq', 3, 5)
    parse_param('wte')                  -> ('wte', None, None)
    check_param(spec, shapes)           -> the same, after checking the name and
                                           the cell against {name: (rows, cols)}
"""

import re

from ..errors import InputError

MAX_SPEC = 200  # characters; a longer spec is refused before the regex sees it
_PARAM_RE = re.compile(r'([A-Za-z_][\w.]*)(?:\[(-?\d{1,9})\]\[(-?\d{1,9})\])?')


class TraceQueryError(InputError):
    """A query names something the trace does not have; the message lists what it has."""


def parse_param(text):
    """'layer0.attn_wq[3][5]' -> ('layer0.attn_wq', 3, 5); 'wte' -> ('wte', None, None).

    Spaces are ignored; anything else that is not a name or a cell is refused."""
    if not isinstance(text, str) or len(text) > MAX_SPEC:
        shown = repr(text) if not isinstance(text, str) else repr(text[:40] + '...')
        raise TraceQueryError(f"cannot read parameter {shown}: write a matrix name like 'wte' "
                              f"or a cell like 'layer0.attn_wq[3][5]' (at most {MAX_SPEC} characters)")
    m = _PARAM_RE.fullmatch(''.join(text.split()))
    if not m:
        raise TraceQueryError(f"cannot read parameter {text!r}: write a matrix name like 'wte' "
                              f"or a cell like 'layer0.attn_wq[3][5]'")
    name, r, c = m.groups()
    return name, (int(r) if r is not None else None), (int(c) if c is not None else None)


def check_param(spec, shapes):
    """(name, row, col) of `spec` (text or a tuple), checked against `shapes`
    ({name: (rows, cols)}, in parameter order); row and col are None for a matrix."""
    name, r, c = parse_param(spec) if isinstance(spec, str) else spec
    if name not in shapes:
        raise TraceQueryError(f"unknown parameter {name!r}; parameters: {', '.join(shapes)}")
    rows, cols = shapes[name]
    if r is not None and not (0 <= r < rows and 0 <= c < cols):
        raise TraceQueryError(f"cell [{r}][{c}] is outside {name}, which is {rows}x{cols} "
                              f"(rows 0..{rows - 1}, columns 0..{cols - 1})")
    return name, r, c
