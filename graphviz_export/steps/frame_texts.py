"""What a frame's texts read: each node's data and grad fields, and each lit edge's label.

Computed here once, from the frames' ledgers, and shown as they are by every surface
(the explorer's and the tour's player, stepper.js; the slide writer, web/tour/slides.py),
so a slide reads what the player shows at the same frame.

A node's field (its record's 'data …', 'grad …' or '‖grad‖ …' text, labels.drawn_fields, or
a heat-map's 'right: grad (max |grad| …)' line, as draw recorded it in View.fields: what
Graphviz drew) is given as {'drawn': text, 'shown': [[p, text], [p, text, scale], ...]}:
from position p on (0..count; 0 is before the first frame) the field reads `text`, until
the next entry; `scale` (< 1) shrinks its font. Backward: a grad not yet final reads
'grad ?', or the running sum of the contributions arrived so far, 'grad += 0.2 (1/3)';
a summary's norm and a heat-map's largest |grad| read '?'; from the frame after the
node's own they read as drawn. Forward: every grad figure reads '?', and a value not yet
computed 'data ?'. The data of a backward frame is not listed: it reads as drawn. No
text gives a final grad away before its frame (nor do colours: stepper.css, or a heat-map's
grad column: frames.py lists its rows as the node's 'parts').

A running sum is wider than the drawn 'grad 0.2' its field was sized for. It drops its
count, then its word ('+= 0.2 (1/3)', '+= 0.2'), and shrinks (to 80% at least) until it
fits; widths are counted in characters of the field's own font (a field is as wide as
its drawn text plus a margin of about one character), so every surface picks the same.
"""

from ..draw.heatmap import grad_line
from ..draw.labels import words
from ..draw.style import fmt

FIELD_MARGIN_CHARS = 1.2    # a record field's margin beyond its text: ~6 px at ~5 px a 9-pt character
GE, LE = '\u2265', '\u2264'
MIN_SCALE = 0.8             # a running sum shrinks to 80% of the field's font at most, then drops words


def num(x):
    """A number of the frames JSON as a label shows it (4 significant digits); 'nan'/'inf' as given."""
    return x if isinstance(x, str) else fmt(x)


def edge_text(d):
    """A lit edge's label: 'local × upstream = contribution' (one scalar edge, or a scalar's
    repeated use). A folded edge's contributions may cancel, so its label says a figure that
    cannot: their signed sum where all their signs agree ('Σ of 16 = 0.1053, all ≥ 0'), else
    the norm of what each member received ('‖16‖ = 0.3128, signs mixed'), with the lesson
    where there is one (a softmax's gradients into its logits sum to 0)."""
    if 'local' in d and 'upstream' in d and d['count'] == 1:
        return f"{num(d['local'])} \u00d7 {num(d['upstream'])} = {num(d['contribution'])}"
    if 'local' in d and 'upstream' in d:
        return f"\u03a3 {d['count']}: {num(d['local'])} \u00d7 {num(d['upstream'])} = {num(d['contribution'])}"
    n, signs = d['count'], d.get('signs', 'mixed')
    if signs in ('+', '-'):
        return f"\u03a3 of {n} = {num(d['contribution'])}, all {GE if signs == '+' else LE} 0"
    if signs == '0':
        return f"{n} contributions, all 0"
    why = d.get('note') or ('signs mixed' if signs == 'mixed' else 'not a number')
    return f"\u2016{n} contributions\u2016 = {num(d.get('norm', d['contribution']))}, {why}"


def fitted(variants, drawn):
    """[text] or [text, scale]: the first of `variants` (widest first) that fits the field
    drawn for `drawn` once shrunk to MIN_SCALE; the last one otherwise."""
    room = len(drawn) + FIELD_MARGIN_CHARS
    for k, text in enumerate(variants):
        if len(text) * MIN_SCALE <= room or k == len(variants) - 1:
            return [text] if len(text) <= room else [text, round(room / len(text), 3)]
    raise ValueError('no variants')


def running(word, total, arrived, count, drawn):
    """The field of a grad with `arrived` of its `count` contributions in, summing to `total`."""
    s, part = num(total), f'({arrived}/{count})'
    return fitted([f'{word} += {s} {part}', f'+= {s} {part}', f'+= {s}'], drawn)


def grad_timeline(rows, frame, word, drawn):
    """The 'shown' entries of a grad field in backward mode: `rows` its ledger (frames._running:
    [arrival frame, from, parent, contribution, sum at that arrival or None]; None: a summary
    node, which has none), `frame` the node's own frame."""
    out = []
    if rows:
        count = len(rows)
        for f in sorted({r[0] for r in rows}):
            arrived = sum(1 for r in rows if r[0] <= f)
            total = [r[4] for r in rows if r[0] == f and r[4] is not None][-1]
            out.append([f + 1, *running(word, total, arrived, count, drawn)])
    if not out or out[0][0] > 0:
        out.insert(0, [0, f'{word} ?'])
    out.append([frame + 1, drawn])
    return out


def node_fields(drawn, info, mode, words):
    """The fields of a visible node that a frame rewrites (see the module docstring): `drawn`
    its texts as drawn ({'data', 'grad', 'norm'}, a heat-map {'grad'}: View.fields), `info` its
    frames entry (frame, and ledger for a scalar in backward mode), `words` labels.words of the trace."""
    data_word, grad_word, _ = words
    k = info['frame']
    out = []
    data, grad, norm = drawn.get('data'), drawn.get('grad'), drawn.get('norm')
    if info['kind'] == 'matrix':
        return [{'drawn': grad, 'shown': [[0, grad_line(grad_word, '?')]] + ([[k + 1, grad]] if mode == 'backward' else [])}]
    if mode == 'forward':
        out = [{'drawn': grad, 'shown': [[0, f'{grad_word} ?']]},
               {'drawn': data, 'shown': [[0, f'{data_word} ?'], [k + 1, data]]}]
    else:
        out = [{'drawn': grad, 'shown': grad_timeline(info.get('ledger'), k, grad_word, grad)}]
    if norm is not None:
        unknown = f"{norm.rsplit(' ', 1)[0]} ?"         # labels.norm_text with '?' for its number
        out.append({'drawn': norm, 'shown': [[0, unknown]] + ([[k + 1, norm]] if mode == 'backward' else [])})
    return out


def add_node_fields(trace, drawn, out):
    """Every visible node's 'fields' in the frames dict `out` (frames.frames_of); `drawn`:
    {node name: its texts} as draw drew them (View.fields)."""
    said = words(trace)
    for name, info in out['nodes'].items():
        if name in drawn:
            info['fields'] = node_fields(drawn[name], info, out['mode'], said)
    return out


def shown_at(field, p):
    """[text] or [text, scale]: what `field` reads at position p."""
    got = field['shown'][0]
    for entry in field['shown']:
        if entry[0] > p:
            break
        got = entry
    return got[1:]
