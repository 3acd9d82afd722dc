"""The API's endpoint for a heat-map row's tooltip, beside Api's views (mixed into Api).

    /api/heatrow?view=param&param=wte&row=m0_d3
        {'row': 'm0_d3', 'lines': ["wte[3] data, columns 0..15:", '[3][0] -0.05015883721756799', ...]}

The explorer draws a matrix's heat-map rows as plain boxes and paints their cells in the page
(draw/heatmap.py `cells`): the values of 33,000 cells as tooltips were 1.25 MB of a 4 x 64 model's
matrix view. The page asks for a row's lines when the pointer comes onto it, and shows them as
that row's tooltip: the lines the striped picture's tooltip has (heatmap.row_lines, every digit by
style.full), of the numbers drawn (the view's own trace: a comparison's differences, a played
run's drawing).
"""

import re

from ...draw.heatmap import row_lines
from .answers import ApiError

ROW = re.compile(r'(m\d{1,12})_([dg])(\d{1,9})')


class HeatRows:
    """Mixed into Api (which gives _parse and _entry)."""

    def heatrow(self, query):
        """{'row', 'lines'} of a heat-map row of the state's view (drawn now if not cached)."""
        state, own = self._parse(query, extra=('row',))
        _key, _trace, entry, _cached = self._entry(state)
        view = entry['view']
        matrix = next((n.name for n in view.folded.nodes if n.kind == 'matrix'), None)
        if matrix is None:
            raise ApiError(400, "this view has no heat-map; heat-map rows are in a matrix's view (view=param&param=wte)")
        name = view.selection.matrix
        rows = view.trace.param_shapes[name][0]
        m = ROW.fullmatch(own.get('row', ''))
        if m is None or m[1] != matrix or int(m[3]) >= rows:
            raise ApiError(400, f"row {own.get('row', '')[:40]!r} is not a row of this view's heat-map; its rows are "
                                f"{matrix}_d0..{matrix}_d{rows - 1} (data) and {matrix}_g0..{matrix}_g{rows - 1} (grad)")
        return {'row': m[0], 'lines': row_lines(view.trace, name, m[2], int(m[3]))}
