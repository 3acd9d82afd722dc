"""The same token, with one attention head opened up to every scalar op.

Position 2 of 'emma' at block level, except head 0 of the attention, which is
expanded: its 3 attention logits (q.k / sqrt(4) for the keys of positions 0..2),
their softmax, and the weighted sum of the values, op by op.

    python examples/02_attention_head_scalar.py [OUT_DIR]     (default out/examples/)
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
    view = build_view(trace, token=2, level='block', expand=['pos2/layer0/attn/head0/*'])
    return [('02_attention_head_scalar.svg', view)], trace


def main(argv):
    [(name, view)], trace = views()
    _common.write([(name, view)], _common.out_dir(argv))
    print(f"{view.selection.title}, head 0 expanded: {view.stats['nodes']} nodes")


if __name__ == '__main__':
    main(sys.argv)
