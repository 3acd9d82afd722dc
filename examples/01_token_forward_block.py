"""One token's forward and backward pass, block by block.

Position 2 of 'emma' (input 'm', target 'm'): embedding, attention, MLP, LM head
and loss as one summary node each, with data and grad summaries.

    python examples/01_token_forward_block.py [OUT_DIR]     (default out/examples/)
"""
import sys

import _common

from graphviz_export import build_view
from microgpt.recording import record_step
from microgpt.train import SEED, fresh_model


def views():
    """([(file name, view)], trace): what this example draws (examples/regenerate.py uses it too)."""
    params, config, tok = fresh_model(seed=SEED)
    trace = record_step(params, config, tok, 'emma')
    view = build_view(trace, token=2, level='block')
    return [('01_token_forward_block.svg', view)], trace


def main(argv):
    [(name, view)], trace = views()
    _common.write([(name, view)], _common.out_dir(argv))
    print(f"{view.selection.title}: {view.stats['nodes']} nodes for {view.stats['ops']} ops")


if __name__ == '__main__':
    main(sys.argv)
