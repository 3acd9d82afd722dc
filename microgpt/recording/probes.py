"""Probe tables: for a script's own ops (tanh, gelu, sigmoid, ... of its engine), per node and
per input, [x+h, x-h, f(x+h), f(x-h)] from re-running the op (script/build.py), or the reason
it could not be re-run; the node check takes a central difference of them. A probe of a
broken op may hold NaN.
"""

def same_probes(a, b):
    """Probe tables equal, NaN equal to NaN (Trace.__eq__)."""
    if a.keys() != b.keys():
        return False
    for k in a:
        if len(a[k]) != len(b[k]):
            return False
        for x, y in zip(a[k], b[k]):
            if isinstance(x, str) or isinstance(y, str):
                if x != y:
                    return False
            elif any(not (u == v or (u != u and v != v)) for u, v in zip(x, y)):   # noqa: PLR0124
                return False
    return True
