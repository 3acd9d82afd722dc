"""Fold: a Selection -> the nodes a view shows (scalars, groups, references) to a budget.

    folding.py   fold(), the level chosen, expansions, references for high fan-out
    summary.py   the figures a summary node shows (its values' data and grad ranges, norms)
"""

from .folding import FANOUT_LIMIT, Folded, VEdge, VNode, expanded_ids, fold, node_floor

__all__ = ['fold', 'Folded', 'VNode', 'VEdge', 'FANOUT_LIMIT', 'expanded_ids', 'node_floor']
