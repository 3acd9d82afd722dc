"""Names a learner can read against the model code: `q[2]`, `k[1]@pos0`, `attn_w[h2][t1]`, `wte['m'][5]`.

The recording keeps each node's scope (position, layer, block, head, role) but not
its index inside the role's vector. That index follows from the tape order: the
model builds a vector element by element, so a scope's *values* (its non-constant
members used outside the scope, or by nothing) appear in index order. `q[2]` is
the third value of scope pos/layer/attn/q; an op inside the scope that only
computes toward values (a product in a dot product, a softmax's exp) is named by
the nearest value it feeds ("* -> q[2]"); one that feeds several at the same
distance (the rmsnorm scale, a softmax's total) by the role with `[*]`.

Nothing here changes the recording: names are derived from the trace alone.
"""

from collections import deque

from microgpt.recording.ops import OP_CODE

# the variable the model code assigns in each role (model.py)
ROLE_NAME = {
    'embed': 'x', 'rmsnorm': 'x_norm', 'q': 'q', 'k': 'k', 'v': 'v',
    'attn_logits': 'attn_logits', 'attn_weights': 'attn_w', 'head_out': 'head_out',
    'attn_out': 'attn_out', 'residual': 'x_res', 'fc1': 'fc1', 'relu': 'relu', 'fc2': 'fc2',
    'logits': 'logits', 'probs': 'probs', 'loss': 'loss_t',
}
_CONST = OP_CODE['const']


class ElementNames:
    """Per-trace namer; computes a scope's values once, on first use (views touch few scopes)."""

    def __init__(self, trace):
        self.trace = trace
        self._index = {}        # scope id -> {value id: index}
        self._members = None

    # -- the index of a value inside its scope -----------------------------------------
    def _scope_index(self, sid):
        got = self._index.get(sid)
        if got is None:
            if self._members is None:
                self._members = self.trace._scope_nodes()
            t = self.trace
            pptr, parent, _ = t.parents_index()
            scope, op = t.scope, t.op
            values = [i for i in self._members[sid]
                      if op[i] != _CONST and (pptr[i] == pptr[i + 1]
                                              or any(scope[p] != sid for p in parent[pptr[i]:pptr[i + 1]]))]
            got = self._index[sid] = {i: k for k, i in enumerate(values)}
        return got

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

    # -- names -------------------------------------------------------------------------------
    def base(self, i):
        """The element's name without position: 'q[2]', 'attn_w[h2][t1]', 'loss', "wte['m'][5]"."""
        t = self.trace
        cell = t.param_cell(i)
        if cell is not None:
            return param_name(t, *cell)
        pos, _layer, block, head, role = t.scopes[t.scope[i]]
        k, _ = self.element(i)
        if block == 'loss' and role == 'loss' and pos is None:
            return 'loss'
        name = ROLE_NAME.get(role, role or block or 'op')
        if head is not None:
            name += f'[h{head}]'
        if k is None:
            return name
        if role in ('attn_logits', 'attn_weights'):
            return f'{name}[t{k}]'
        if role in ('logits', 'probs'):
            chars = t.meta.get('chars')
            return f'{name}[{char_name(chars, k)}]' if chars is not None and k != '*' else f'{name}[{k}]'
        if role == 'loss':
            return name
        return f'{name}[{k}]'

    def name(self, i, at_pos=True):
        """base + '@pos3' (at_pos: add where the node's position is not obvious from its cluster)."""
        t = self.trace
        text = self.base(i)
        pos = t.scopes[t.scope[i]][0]
        if at_pos and pos is not None:
            text += f'@pos{pos}'
        return text

    def is_value(self, i):
        return self.element(i)[1]


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
