"""One name per node, read against the model code and shown by every surface.

The picture, the explorer's panel, search, crumbs and step-through, the view and
frames JSON, tour titles and terminal reports all call `Trace.name(i)`; it is
made here, from the trace alone, and kept on the trace (`Trace.names()`).

    a value of a model role       q[2]@pos3   attn_w[h1][t2]@pos3   probs['m']@pos3
                                  head_out[h0][3]@pos2   x_norm[5]@pos0   loss_t@pos4   loss
    a role both blocks of a       attn.x_norm[5]@pos0   mlp.x_norm[5]@pos0   mlp.x_res[3]@pos1
      layer repeat (rmsnorm, residual) names its block (the embedding's x_norm, before
      the layers, needs none); with more than one layer, a layer's roles name their
      layer: layer1.q[2]@pos3, layer1.attn.x_norm[5]@pos0
    an op computing toward a      the op, an arrow, the nearest value it feeds:
      value                       * → q[2]@pos3   exp → attn_w[h1][t2]@pos3; with [*] when it
                                  feeds several at one distance (an rmsnorm's scale, a
                                  softmax's total): ** -0.5 → attn.x_norm[*]@pos0
    a parameter cell              wte['m'][5] (a token-indexed row by its character),
                                  layer0.attn_wq[3][5]
    a constant                    const 1e-05
    anything else                 mul #4711: no model role (a user script's trace, whose
                                  scopes are its source lines; a leaf): the op and the id

A value's name identifies it on its own in the whole trace (it carries its position).
The ops computing toward one value share its arrow name (the sixteen products of q[2]
are all '* → q[2]@pos3'), and constants of one value share theirs ('const 0'): a list
that shows them side by side gives the id too (`name_id`: '* → q[2]@pos3 #4301').

Which element a value is: the recording keeps each node's scope (position, layer,
block, head, role) but not its index inside the role's vector. That index follows
from the tape order: the model builds a vector element by element, so a scope's
*values* (its non-constant members used outside the scope, or by nothing) appear
in index order. `q[2]` is the third value of scope pos/layer/attn/q. Each scope's
values are found once, on first use (a view touches few scopes), each name once.
"""

import re
from collections import deque
from itertools import chain, compress

from .ops import OP_CODE

# the variable the model code assigns in each role (model.py)
ROLE_NAME = {
    'embed': 'x', 'rmsnorm': 'x_norm', 'q': 'q', 'k': 'k', 'v': 'v',
    'attn_logits': 'attn_logits', 'attn_weights': 'attn_w', 'head_out': 'head_out',
    'attn_out': 'attn_out', 'residual': 'x_res', 'fc1': 'fc1', 'relu': 'relu', 'fc2': 'fc2',
    'logits': 'logits', 'probs': 'probs', 'loss': 'loss_t',
}
# how the picture writes an op ('*', '** -0.5', ...): a name's op and a record's head
OP_TEXT = {'add': '+', 'mul': '*', 'log': 'log', 'exp': 'exp', 'relu': 'relu', 'const': 'const', 'leaf': 'leaf'}
ARROW = '→'
_CONST = OP_CODE['const']
_PARAM = OP_CODE['param']


class ElementNames:
    """The names of one trace's nodes; each scope's values are computed on first use,
    each name once (a drawing asks for the same names several times)."""

    def __init__(self, trace):
        self.trace = trace
        self._index = {}        # scope id -> {value id: index}
        self._names = {}        # node id -> name
        self._qualify = None    # (roles named by their block, whether layers are named)
        self._by_name = None    # (scope name, pos) -> scope id

    # -- the index of a value inside its scope -----------------------------------------
    def _scope_index(self, sid):
        got = self._index.get(sid)
        if got is None:
            # the trace's value column (recording.indexes), picked per run of the scope in C
            value = self.trace.index('value')
            values = chain.from_iterable(compress(range(a, b), value[a:b]) for a, b in self.trace.runs_of_scope()[sid])
            got = self._index[sid] = {i: k for k, i in enumerate(values)}
        return got

    def scope_values(self, sid):
        """The values of scope `sid` (the elements of its role's vector), in index order."""
        return list(self._scope_index(sid))

    def element(self, i):
        """(index or '*' or None, is_value): which element of its role's vector node `i` is or feeds."""
        t = self.trace
        sid = t.scope[i]
        index = self._scope_index(sid)
        if i in index:
            return index[i], True
        if t.op[i] == _CONST:
            return None, False
        pptr, parent, _ = t.parents_index()
        seen, frontier = {i}, deque([i])
        while frontier:     # breadth first, one distance at a time, inside the scope
            found, nxt = set(), deque()
            for n in frontier:
                for p in parent[pptr[n]:pptr[n + 1]]:
                    if p in seen or t.scope[p] != sid:
                        continue
                    seen.add(p)
                    if p in index:
                        found.add(index[p])
                    else:
                        nxt.append(p)
            if found:
                return (found.pop() if len(found) == 1 else '*'), False
            frontier = nxt
        return None, False

    def is_value(self, i):
        """Node i is an element of its role's vector (not an op computing toward one)."""
        return i in self._scope_index(self.trace.scope[i])

    def vector_name(self, i):
        """The vector node i is an element of, or computes toward: 'q', 'attn_w[h1]', 'layer1.q'
        (its name without the index and position); None when no role of the model names it."""
        return self.scope_vector(self.trace.scope[i]) if self.has_role(i) else None

    def scope_vector(self, sid):
        """The vector_name of the nodes of scope `sid` named by a role (one per scope)."""
        return self._scope_name(sid)

    def has_role(self, i):
        """Node i is named by a role of the model (not a parameter, constant or fallback)."""
        t = self.trace
        return t.op[i] not in (_CONST, _PARAM) and t.scopes[t.scope[i]].role in ROLE_NAME

    # -- names -------------------------------------------------------------------------------
    def name(self, i):
        """The node's one name (see the module docstring)."""
        got = self._names.get(i)
        if got is None:
            got = self._names[i] = self._name(i)
        return got

    def _name(self, i):
        t = self.trace
        if t.op[i] == _PARAM:
            return param_name(t, *t.param_cell(i))
        if t.op[i] == _CONST:
            return f'const {t.data[i]:g}'
        if not self.has_role(i):
            return f'{t.op_name(i)} #{i}'
        sid = t.scope[i]
        k, is_value = self.element(i)
        text = self._element_name(sid, k)
        return text if is_value else f'{op_text(t, i)} {ARROW} {text}'

    def name_id(self, i):
        """The name with the node id: '* → q[2]@pos3 #4301', 'mul #4711' (see with_id)."""
        return with_id(self.name(i), i)

    def _element_name(self, sid, k):
        """'q[2]@pos3' for element k of scope sid ('[*]': several; None: no index)."""
        t = self.trace
        pos, _layer, _block, _head, role = t.scopes[sid]
        text = self._scope_name(sid)
        if text != 'loss' and k is not None and role != 'loss':
            if role in ('attn_logits', 'attn_weights'):
                text += f'[t{k}]'
            elif role in ('logits', 'probs') and k != '*' and t.meta.get('chars') is not None:
                text += f"[{char_name(t.meta['chars'], k)}]"
            else:
                text += f'[{k}]'
        return text if pos is None else f'{text}@pos{pos}'

    def _scope_name(self, sid):
        """The vector a scope's values form: 'q', 'attn_w[h1]', 'attn.x_norm', 'layer1.q', 'loss'."""
        t = self.trace
        pos, layer, block, head, role = t.scopes[sid]
        if block == 'loss' and role == 'loss' and pos is None:
            return 'loss'
        if self._qualify is None:
            blocks = {}
            for s in t.scopes:
                if s.role in ROLE_NAME and s.layer is not None:
                    blocks.setdefault(s.role, set()).add(s.block)
            self._qualify = ({r for r, b in blocks.items() if len(b) > 1}, len(t.layers()) > 1)
        repeated, layered = self._qualify
        text = ROLE_NAME[role]
        if role in repeated and layer is not None:
            text = f'{block}.{text}'
        if layered and layer is not None:
            text = f'layer{layer}.{text}'
        return text if head is None else f'{text}[h{head}]'

    # -- from a name back to its nodes (search) ---------------------------------------------
    def find(self, text):
        """Ids of the nodes named `text` (one for a value, a parameter cell or a fallback name;
        all of them for an op toward a value; '->' may stand for the arrow). Constants are
        not found by name (thousands share one): search their id."""
        text = text.strip().replace(' -> ', f' {ARROW} ')
        t = self.trace
        m = re.fullmatch(r'(\S+) #(\d+)', text)
        if m:
            i = int(m.group(2))
            return [i] if i < len(t) and self.name(i) == text else []
        m = re.fullmatch(r'([\w.]+)\[([^\]]+)\]\[(\d+)\]', text)
        if m and m.group(1) in t.param_shapes:
            return self._find_cell(m.group(1), m.group(2), int(m.group(3)), text)
        arrow = f' {ARROW} '
        toward = text.split(arrow, 1)[1] if arrow in text else text
        m = re.fullmatch(r'(.+?)(?:@pos(\d+))?', toward)
        if m is None:
            return []
        pos = int(m.group(2)) if m.group(2) is not None else None
        base = m.group(1)
        keys = {base, base[:base.rfind('[')]} if '[' in base else {base}
        by_name = self._scopes_by_name()
        found = []
        for key in sorted(keys):
            sid = by_name.get((key, pos))
            if sid is None:
                continue
            if arrow in text:
                members = [i for i in t.scope_members(sid) if t.op[i] != _CONST]
            else:
                members = list(self._scope_index(sid))
            found += [i for i in members if self.name(i) == text]
        return sorted(found)

    def _find_cell(self, name, row, col, text):
        rows, cols = self.trace.param_shapes[name]
        if col >= cols:
            return []
        base = self.trace.param_base[name]
        hits = [base + r * cols + col for r in range(rows)]
        return [i for i in hits if self.name(i) == text][:1]

    def _scopes_by_name(self):
        if self._by_name is None:
            self._by_name = {(self._scope_name(sid), s.pos): sid for sid, s in enumerate(self.trace.scopes)
                             if s.role in ROLE_NAME and s.block != 'params'}
        return self._by_name


def with_id(name, i):
    """'q[2]@pos3 #4305': a name and its node id, for lists where names may repeat
    (a fallback name already ends with its id: 'mul #4711')."""
    return name if name.endswith(f' #{i}') else f'{name} #{i}'


def op_text(trace, i):
    """'+', '*', '** -0.5', 'exp': an op as the picture writes it."""
    op = trace.op_name(i)
    if op == 'pow':
        return f'** {trace.pow_exponent.get(i, "?")}'
    return OP_TEXT.get(op, op)


def char_name(chars, k):
    """'m' for token k (chars: the tokenizer's characters; the last id is BOS)."""
    if chars is None:
        return str(k)
    return repr(chars[k]) if 0 <= k < len(chars) else 'BOS'


def param_name(trace, name, r, c):
    """"wte['m'][5]" for a token-indexed matrix row, else 'layer0.attn_wq[3][5]'."""
    if name in ('wte', 'lm_head'):
        chars = trace.meta.get('chars')
        if chars is not None:
            return f'{name}[{char_name(chars, r)}][{c}]'
    return f'{name}[{r}][{c}]'
