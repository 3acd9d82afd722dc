"""Layer 0 at the last position of 'emma', before and after training: measured, not assumed.

Trains the reference way (seed 42, Adam, one name per step) on the names data
and draws the same block-level layer view twice. Both pictures use the same
fixed colour scale (grad magnitude steps at 1e-6, 1e-4, 1e-2, 1), so colours
compare across them. The script prints each parameter matrix's grad norm for
'emma' before and after, and the loss: whether grads shrink or grow is what
this run measures (after 300 steps they grow: the untrained model is almost
uniform, so its grads are tiny; a trained one is confident and wrong on some
letters of 'emma').

Needs the names data ($MICROGPT_DATA, ../shared/data/names.txt, or the copy
`microgpt-graph train` downloads); exits 2 without it. Training 300 steps takes
about a minute: a progress bar on stderr shows it (when stderr is a terminal).

    python examples/05_layer_before_after_training.py [OUT_DIR] [STEPS]   (default out/examples/, 300)
"""
import math
import sys

import _common

from graphviz_export import build_view
from microgpt.data import read_docs
from microgpt.model import flat_params
from microgpt.recording import record_step
from microgpt.train import start_run, train


def grad_norms(trace):
    """{matrix: L2 norm of its grad} for 'emma'."""
    out = {}
    for name, base in trace.param_base.items():
        rows, cols = trace.param_shapes[name]
        out[name] = math.sqrt(math.fsum(trace.grad[base + k] ** 2 for k in range(rows * cols)))
    return out


def views(steps=300, on_step=None):
    """([(file name, view)] before and after, {when: (loss, grad norms)});
    on_step(step, num_steps, loss) after each training step."""
    run = start_run(read_docs(_common.names_path()), seed=42)
    out, measured = [], {}
    for when in ('before', 'after'):
        if when == 'after':
            train(run, int(steps), on_step=on_step)
        trace = record_step(run.params, run.config, run.tokenizer, 'emma')
        for p in flat_params(run.params):       # recording left 'emma''s grads: training must not add to them
            p.grad = 0
        note = f"{when} training ({len(run.losses)} steps): loss of 'emma' {trace.loss:.4f}; same colour scale in both"
        view = build_view(trace, layer=0, token=4, level='block', notes=[note])
        out.append((f'05_layer_{when}_training.svg', view))
        measured[when] = (trace.loss, grad_norms(trace))
    return out, measured


def main(argv):
    steps = int(argv[2]) if len(argv) > 2 else 300
    with _common.progress('training', steps) as on_step:
        pairs, measured = views(steps, on_step)
    _common.write(pairs, _common.out_dir(argv))
    (lb, gb), (la, ga) = measured['before'], measured['after']
    print(f"loss of 'emma': before {lb:.4f}, after {steps} steps {la:.4f}")
    for name in gb:
        trend = 'grew' if ga[name] > gb[name] else 'shrank'
        print(f"  {name:18s} grad norm {gb[name]:.4g} -> {ga[name]:.4g} ({trend})")


if __name__ == '__main__':
    main(sys.argv)
