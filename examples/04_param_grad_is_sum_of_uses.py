"""One parameter's grad is the sum of what flowed back along each of its uses.

layer0.attn_wq[3][5] multiplies x[5] once per position when q[3] is computed:
for 'emma' that is 5 uses. Each edge is labelled with its local derivative
(the x[5] it multiplied) and its contribution (local x upstream grad); the
contributions add up to the grad, exactly, in the order backward added them.

    python examples/04_param_grad_is_sum_of_uses.py [OUT_DIR]     (default out/examples/)
"""
import sys

import _common

from graphviz_export import build_view
from microgpt.recording import record_step
from microgpt.train import SEED, fresh_model


def views():
    """([(file name, view)], trace, cell): what this example draws (examples/regenerate.py uses it too)."""
    params, config, tok = fresh_model(seed=SEED)
    trace = record_step(params, config, tok, 'emma')
    cell = 'layer0.attn_wq[3][5]'
    view = build_view(trace, param=cell, edge_grads=True)
    return [('04_param_grad_is_sum_of_uses.svg', view)], trace, cell


def main(argv):
    [(name, view)], trace, cell = views()
    _common.write([(name, view)], _common.out_dir(argv))
    (i,) = trace.param_nodes(cell)
    total = 0.0
    for parent, local, contrib in trace.uses(i):
        total += contrib
        print(f"  use at {trace.scope_path(parent):24s} local {local:+.6f}  contribution {contrib:+.3e}")
    print(f"  sum {total:+.3e} == grad {trace.grad[i]:+.3e}: {total == trace.grad[i]}")


if __name__ == '__main__':
    main(sys.argv)
