"""How the loss gradient reaches the token embedding.

'emma' has the letter 'm' at positions 1 and 2, so the embedding row wte['m']
is used at both: cell wte[m][0] has two uses, each adding its contribution to
the cell's grad, and the picture follows them two ops downstream.

    python examples/03_loss_to_wte.py [OUT_DIR]
"""
import sys
from pathlib import Path

from graphviz_export import build_view, render_view
from microgpt.recording import record_step
from microgpt.train import fresh_model


def main(out_dir=Path(__file__).resolve().parent):
    params, config, tok = fresh_model(seed=42)
    trace = record_step(params, config, tok, 'emma')
    m = tok.encode('m')[1]
    cell = f'wte[{m}][0]'
    view = build_view(trace, param=cell, depth=2, edge_grads=True)
    render_view(view, 'svg', path=Path(out_dir) / '03_loss_to_wte.svg')
    (i,) = trace.param_nodes(cell)
    uses = trace.uses(i)
    print(f"{cell} ('m'): {len(uses)} uses, contributions "
          f"{' + '.join(f'{c:.6g}' for _, _, c in uses)} = grad {trace.grad[i]:.6g}")


if __name__ == '__main__':
    main(*sys.argv[1:])
