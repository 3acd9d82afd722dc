"""One token's forward and backward pass, block by block.

Position 2 of 'emma' (input 'm', target 'm'): embedding, attention, MLP, LM head
and loss as one summary node each, with data and grad summaries.

    python examples/01_token_forward_block.py [OUT_DIR]
"""
import sys
from pathlib import Path

from graphviz_export import build_view, render_view
from microgpt.recording import record_step
from microgpt.train import fresh_model


def main(out_dir=Path(__file__).resolve().parent):
    params, config, tok = fresh_model(seed=42)
    trace = record_step(params, config, tok, 'emma')
    view = build_view(trace, token=2, level='block')
    render_view(view, 'svg', path=Path(out_dir) / '01_token_forward_block.svg')
    print(f"{view.selection.title}: {view.stats['nodes']} nodes for {view.stats['ops']} ops")


if __name__ == '__main__':
    main(*sys.argv[1:])
