"""Fold: a Selection -> the nodes a view shows (scalars, groups, references) to a budget.

    folding.py   fold(), the level chosen, expansions, references for high fan-out
    expand.py    the ids a view's expand patterns open
    summary.py   the figures a summary node shows (its values' data and grad ranges, norms)
"""

from .expand import expanded_ids
from .folding import FANOUT_LIMIT, Folded, VEdge, VNode, fold, node_floor

__all__ = ['fold', 'Folded', 'VNode', 'VEdge', 'FANOUT_LIMIT', 'expanded_ids', 'node_floor']
