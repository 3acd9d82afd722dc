"""The resource guard: how big one step's graph will be, known before it is built.

Every op of a step is a Python object (a Value) and, when recorded, a row of the
trace's arrays; a config that is too large for the machine ends in a MemoryError
or runs silently for hours. `estimate_nodes` counts the nodes of one step from
the config and the number of positions, op by op as model.py creates them,
plus 10%: measured 1.02-1.08x the real count on the default, tiny, 1-head,
2-layer and 32-wide configs (python -m benchmarks.bench_budget).
`check_budget` refuses a step above a cap with a message that gives the
estimate and the flag that raises the cap.
"""

from ..errors import InputError

DEFAULT_MAX_NODES = 5_000_000
BYTES_PER_NODE = 420      # peak Python heap per recorded node (tracemalloc: 334-369 B) plus slack
NODES_PER_SECOND = 80_000  # recording speed on one core, roughly (measured 64k-127k)
MAX_NODES_FLAG = '--max-nodes'


class BudgetError(InputError):
    """A step whose graph would be larger than the allowed number of nodes."""


def estimate_nodes(config, n_positions):
    """The number of nodes of one recorded step of `n_positions` positions
    (at most config.block_size), parameters included."""
    C, H, L, V = config.n_embd, config.n_head, config.n_layer, config.vocab_size
    n = max(1, min(int(n_positions), config.block_size))
    total = 2 * V * C + config.block_size * C + L * 12 * C * C          # parameter nodes
    for p in range(n):
        t = p + 1                                                      # keys seen at this position
        per_layer = 24 * C * C + t * (4 * C + 5 * H) + 12 * C + 6      # q k v o: 8C^2, MLP: 16C^2
        total += L * per_layer + 3 * C + 3 + 2 * C * V + 4 * V + 2     # embed, lm_head, softmax, loss
    total += n + 2                                                     # the mean loss
    return int(total * 1.1)                                            # the count is within 10%, under


def describe(nodes):
    """'1,234,567 nodes (~520 MB, ~18 s)'"""
    mb = nodes * BYTES_PER_NODE / 1e6
    size = f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"
    secs = nodes / NODES_PER_SECOND
    time = f"{secs / 60:.0f} min" if secs >= 120 else f"{secs:.0f} s"
    return f"{nodes:,} nodes (~{size}, ~{time})"


def check_budget(config, n_positions, max_nodes=DEFAULT_MAX_NODES, what='one step'):
    """The estimated node count; BudgetError when it is above `max_nodes` (None: no cap)."""
    nodes = estimate_nodes(config, n_positions)
    if max_nodes is not None and nodes > max_nodes:
        c = config
        raise BudgetError(f"{what} (n_layer {c.n_layer}, n_embd {c.n_embd}, n_head {c.n_head}, "
                          f"vocab {c.vocab_size}, {min(n_positions, c.block_size)} positions) needs about "
                          f"{describe(nodes)}; the limit is {max_nodes:,} nodes. Use a smaller model or a "
                          f"shorter document, or raise the limit with {MAX_NODES_FLAG} {nodes}")
    return nodes
