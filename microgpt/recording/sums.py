"""Exact sums that say what they are: `fsum(values)` is math.fsum, except that where
math.fsum raises it answers as IEEE arithmetic would.

math.fsum raises ValueError for inf + -inf and OverflowError when a partial sum of
finite values passes the largest double (two grads of 1e308; the squares in a norm of
grads near 1e154). A picture, a panel or a norm of exploding or broken gradients must
show nan or inf then, not fail: `fsum` gives nan for inf + -inf, and on an overflow
sums the values scaled by 2**-64 (exact: a power of two moves only the exponent, and
values small enough to lose bits that way are far below the result's last digit) and
scales back, which is ±inf only when the sum itself is.
"""

import math

SCALE = 64      # the exponent of the scaling used after an overflow


def fsum(values):
    """The correctly rounded sum of `values` (math.fsum); nan for inf + -inf, ±inf past the largest double."""
    xs = values if isinstance(values, (list, tuple)) else list(values)
    try:
        return math.fsum(xs)
    except ValueError:          # -inf + inf
        return math.nan
    except OverflowError:
        pass
    try:
        scaled = math.fsum(math.ldexp(x, -SCALE) for x in xs)
    except ValueError:
        return math.nan
    try:
        return math.ldexp(scaled, SCALE)
    except OverflowError:
        return math.copysign(math.inf, scaled)
