"""How the loss gradient reaches the token embedding.

'emma' has the letter 'm' at positions 1 and 2, so the embedding row wte['m']
is used at both: cell wte[m][0] has two uses, each adding its contribution to
the cell's grad, and the picture follows them two ops downstream.

    python examples/03_loss_to_wte.py [OUT_DIR]     (default out/examples/)
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
    m = tok.encode('m')[1]
    cell = f'wte[{m}][0]'
    view = build_view(trace, param=cell, depth=2, edge_grads=True)
    return [('03_loss_to_wte.svg', view)], trace, cell


def main(argv):
    [(name, view)], trace, cell = views()
    _common.write([(name, view)], _common.out_dir(argv))
    (i,) = trace.param_nodes(cell)
    uses = trace.uses(i)
    print(f"{cell} ('m'): {len(uses)} uses, contributions "
          f"{' + '.join(f'{c:.6g}' for _, _, c in uses)} = grad {trace.grad[i]:.6g}")


if __name__ == '__main__':
    main(sys.argv)
