"""Gradient checks: is every derivative of a recorded step right, and if not, which op?

    params.py     central finite differences of the loss, per parameter cell
    nodes.py      every recorded node: local derivatives against a finite difference
                  of its op, grads against the sum of what flowed in, d loss/d node by replay
    faults.py     deliberately wrong derivatives to inject (for teaching and for testing the checks)
    health.py     gradient-health report per scope (norms, dead ReLUs, NaN/inf, vanishing/exploding)
    diagnose.py   all of the above in one call, for the CLI

The checks read the port and the recording; they never import the exporter (a
failure reaches a picture as node ids to highlight).
"""
