"""The update table: what Adam does to the parameters in view, as HTML, for every page.

One implementation for the explorer (its /api/update answer carries it; the page
inserts it and keeps only the clicks on its controls) and the tour (inlined, with no
controls: it works offline). Why Python HTML rather than JS rendering from the update
JSON: the server already computes every figure; formatting here uses the pictures'
own number formats (draw/style.py: 4 significant digits shown, every digit in the
cell's title and data-v) and one escape (html.escape); the tour needs no script for
it; and it is tested without a browser.

    update_html(upd, rows, matrices, count=..., matched=..., paging=..., recording=...)

`upd`: steps.update.adam_update's answer (floats); `rows`: the rows of this page;
`matrices`: update.matrix_summary of every row; `paging`: {'matrix', 'sort', 'offset',
'limit'} for the explorer's controls, or None (the tour: the first rows and a count).
"""

from html import escape

from ..draw.style import fmt, full
from ..steps.update import first_step

# the table's columns: m and v ride in the titles of m̂ and v̂ (m̂ = m / (1 - β1^t): the same figure
# scaled), so the five columns are readable in the side panel of a 1024 px screen
COLUMNS = (('delta', '\u0394value'), ('grad', 'grad'), ('m_hat', 'm\u0302'), ('v_hat', 'v\u0302'))
BEHIND = {'m_hat': 'm', 'v_hat': 'v'}      # a column: the moment it is the bias-corrected form of
CARD = (('delta', '\u0394value'), ('grad', 'grad'), ('m', 'm'), ('v', 'v'), ('m_hat', 'm\u0302'),
        ('v_hat', 'v\u0302'), ('data', 'value'), ('new', 'new value'))
CARDS_UP_TO = 3             # this many cells or fewer: one card each, every digit
ROWS = object()             # update_html's `first` not given: first_step of upd['rows']


def _cell(key, x, row=None):
    """A number cell: 4 digits shown, every digit in data-v and the title (with the moment behind
    a bias-corrected one, from `row`)."""
    behind = BEHIND.get(key) if row is not None else None
    title = full(x) + (f'; {behind} = {full(row[behind])}' if behind else '')
    return f'<td data-k="{key}" data-v="{full(x)}" title="{title}">{fmt(x)}</td>'


def _head(upd, count, recording, first):
    step = upd['step']
    return (f"<p>Adam on the <b>{count}</b> parameters that feed this view ({escape(upd['source'])}; "
            f"grads of {escape(recording)}).</p>"
            f"<p class=\"mono\">lr_t = {upd['lr']!r} \u00d7 (1 \u2212 {step}/{upd['num_steps']}) = "
            f"<b id=\"upd-lrt\">{full(upd['lr_t'])}</b><br>"
            f"m = \u03b21\u00b7m + (1\u2212\u03b21)\u00b7grad, v = \u03b22\u00b7v + (1\u2212\u03b22)\u00b7grad\u00b2, "
            f"m\u0302 = m/(1\u2212\u03b21^{step + 1}), v\u0302 = v/(1\u2212\u03b22^{step + 1})<br>"
            f"\u0394value = \u2212lr_t \u00b7 m\u0302 / (\u221av\u0302 + \u03b5) \u00b7 \u03b21 {upd['beta1']!r}, "
            f"\u03b22 {upd['beta2']!r}, \u03b5 {upd['eps']!r}</p>" + _lesson(first))


def _lesson(first):
    """Adam's first step in one sentence, with this update's figures (steps.update.first_step)."""
    if first is None:
        return ''
    still = (f" The {first['still']} whose grad is 0 do not move." if first['still'] else '')
    return (f'<p class="lesson" id="upd-lesson"><b>The first step moves every cell by lr_t.</b> With m = v = 0 '
            f'before it, m\u0302 = grad and v\u0302 = grad\u00b2, so m\u0302 / \u221av\u0302 = \u00b11: each '
            f'\u0394value is \u2212lr_t \u00b7 sign(grad) = \u00b1{fmt(first["lr_t"])}, whatever the size of its '
            f'grad (\u03b5 changes it by at most {fmt(first["off"])} here). {first["moved"]} cells move by '
            f'\u00b1{fmt(first["lr_t"])}.{still}</p>')


def _cards(rows, lr_t):
    h = '<table class="mg-card" id="updtable">'
    for r in rows:
        h += (f'<tbody data-id="{r["id"]}"><tr><th colspan="2">{escape(r["name"])}</th></tr>'
              + ''.join(f'<tr><td>{title}</td><td class="num" data-k="{k}" data-v="{full(r[k])}">{full(r[k])}</td></tr>'
                        for k, title in CARD)
              + f'<tr><td>lr_t</td><td class="num">{full(lr_t)}</td></tr></tbody>')
    return h + '</table>'


def _summary(matrices, chosen):
    h = ('<div class="sumwrap"><table class="mg-update" id="updsum"><tr><th>matrix</th>'
         '<th title="cells in this view / in the matrix">cells</th><th title="sqrt(\u03a3 \u0394value\u00b2)">'
         '\u2016\u0394w\u2016</th><th>max |\u0394w|</th><th>largest change</th>'
         '<th title="sqrt(\u03a3 grad\u00b2)">\u2016grad\u2016</th></tr>')
    for m in matrices:
        name = escape(m['name'])
        cells = f"{m['cells']}" + ('' if m['cells'] == m['size'] else f" / {m['size']}")
        h += (f'<tr data-matrix="{name}" class="{"on" if m["name"] == chosen else ""}" '
              f'title="show only {name}\'s rows"><td>{name}</td><td data-k="cells" data-v="{m["cells"]}">{cells}</td>'
              + _cell('norm_delta', m['norm_delta']) + _cell('max_delta', m['max_delta'])
              + f'<td data-k="largest" data-v="{escape(m["largest"])}" title="\u0394 {full(m["largest_delta"])}">'
                f'{escape(m["largest"][len(m["name"]):])} {fmt(m["largest_delta"])}</td>'
              + _cell('norm_grad', m['norm_grad']) + '</tr>')
    return h + '</table></div>'


def _controls(matrices, paging, shown, matched):
    chosen, sort, offset, limit = paging['matrix'], paging['sort'], paging['offset'], paging['limit']

    def option(value, text, on):
        return f'<option value="{escape(value)}"{" selected" if on else ""}>{escape(text)}</option>'

    first, last = (offset + 1 if matched else 0), offset + shown
    return ('<div id="updctl"><label>rows of <select id="upd-matrix">' + option('', 'every matrix', not chosen)
            + ''.join(option(m['name'], f"{m['name']} ({m['cells']})", m['name'] == chosen) for m in matrices)
            + '</select></label> <label>order <select id="upd-sort">'
            + option('id', 'matrix, row, column', sort == 'id')
            + option('delta', 'largest |\u0394value| first', sort == 'delta') + '</select></label> '
            + f'<button data-page="-1"{"" if offset > 0 else " disabled"} title="previous {limit} rows">\u2039</button>'
            + f'<span id="upd-range">rows {first}\u2013{last} of {matched}</span>'
            + f'<button data-page="1"{"" if last < matched else " disabled"} title="next {limit} rows">\u203a</button>'
            + '</div>')


def update_html(upd, rows, matrices, *, count, matched=None, paging=None, recording='this recording', first=ROWS):
    """The update table (see the module docstring). `count`: parameters in view; `matched`:
    rows of the chosen matrix (default count); `first`: steps.update.first_step's figures when
    the caller has them (the explorer: of its columns), else made of upd['rows']."""
    if not count:
        return '<p>No parameters feed this view: Adam changes nothing here.</p>'
    matched = count if matched is None else matched
    h = _head(upd, count, recording, first_step(upd) if first is ROWS else first)
    if count <= CARDS_UP_TO:
        return h + _cards(rows, upd['lr_t'])
    chosen = paging['matrix'] if paging else None
    h += ('<h4>per matrix' + (' <span class="hint">(click one to list only its rows)</span>' if paging else '')
          + '</h4>' + _summary(matrices, chosen))
    if paging:
        h += _controls(matrices, paging, len(rows), matched)
    else:
        h += f'<p id="upd-range">rows 1\u2013{len(rows)} of {matched}</p>'
    h += ('<div class="updwrap"><table class="mg-update" id="updtable"><tr><th>param</th>'
          + ''.join(f'<th>{title}</th>' for _, title in COLUMNS) + '</tr>')
    for r in rows:
        h += f'<tr data-id="{r["id"]}"><td>{escape(r["name"])}</td>' + ''.join(_cell(k, r[k], r) for k, _ in COLUMNS) + '</tr>'
    return h + '</table></div><p class="hint">every digit: hover a cell</p>'
