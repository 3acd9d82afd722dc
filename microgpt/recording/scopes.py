"""Scopes: where in the model a node was made, interned once as a small int.

A scope is a tuple (pos, layer, block, head, role); a field the model did not set
is None. Blocks: `embed`, `attn`, `mlp`, `lm_head`, `loss`, and `params` for the
parameter leaves. Roles: `embed`, `rmsnorm`, `q`, `k`, `v`, `attn_logits`,
`attn_weights`, `head_out`, `attn_out`, `residual`, `fc1`, `relu`, `fc2`,
`logits`, `probs`, `loss`, and a parameter's matrix name under `params`.
"""

from typing import NamedTuple


class Scope(NamedTuple):
    """Where a node was made; a field the model did not set is None. Still a
    tuple: cheap to intern, written to JSON as a list."""
    pos: int | None = None
    layer: int | None = None
    block: str | None = None
    head: int | None = None
    role: str | None = None


FIELDS = Scope._fields
ROOT = Scope()


def scope_path(s):
    """'pos3/layer0/attn/head2/attn_logits' for (3, 0, 'attn', 2, 'attn_logits')."""
    pos, layer, block, head, role = s
    parts = []
    if pos is not None:
        parts.append(f"pos{pos}")
    if layer is not None:
        parts.append(f"layer{layer}")
    if block is not None:
        parts.append(block)
    if head is not None:
        parts.append(f"head{head}")
    if role is not None:
        parts.append(role)
    return '/'.join(parts) or '(root)'


class ScopeTable:
    """Interns scope tuples: `intern(tuple) -> id`, `table[id] -> tuple`."""

    def __init__(self):
        self.scopes = []
        self._ids = {}
        self._children = {}  # (parent id, fields items) -> child id
        self.root = self.intern(ROOT)

    def __getitem__(self, sid):
        return self.scopes[sid]

    def __len__(self):
        return len(self.scopes)

    def intern(self, s):
        sid = self._ids.get(s)
        if sid is None:
            sid = self._ids[s] = len(self.scopes)
            self.scopes.append(s)
        return sid

    def child(self, parent, fields):
        """The id of scope `parent` with `fields` (a dict of FIELDS) set."""
        key = (parent, tuple(fields.items()))
        sid = self._children.get(key)
        if sid is None:
            unknown = set(fields) - set(FIELDS)
            if unknown:
                raise ValueError(f"unknown scope field(s) {sorted(unknown)}; allowed: {', '.join(FIELDS)}")
            sid = self._children[key] = self.intern(self.scopes[parent]._replace(**fields))
        return sid
