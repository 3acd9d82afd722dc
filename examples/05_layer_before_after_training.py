"""Layer 0 of 'emma' before and after 300 training steps, as ONE picture of differences.

The reference run (seed 42, Adam, one name per step, the learning rate decaying
to 0 over the run's 300 steps: what `microgpt-graph train --steps 300` does)
is recorded on 'emma' before its first step and after its last
(microgpt.recording.session.train_and_record). graphviz_export.steps.diff draws
the differences, after - before, on the layout of the one graph both share and
on one colour scale: every node's Δdata and Δgrad. The numbers that make the
story true are measured, printed, and written on the picture: the loss of
'emma' before and after, and each parameter matrix's grad norm before and
after (they grow: the untrained model is almost uniform, so its grads are tiny;
the trained one is confident, and wrong on some letters of 'emma').

Needs the names data ($MICROGPT_DATA, ../shared/data/names.txt, or the copy
`microgpt-graph train` downloads); exits 2 without it rather than training on
something else. Training 300 steps takes about a minute.

    python examples/05_layer_before_after_training.py [OUT_DIR] [STEPS]   (default out/examples/, 300)
"""
import math
import sys

import _common

from graphviz_export.steps.diff import build_diff
from microgpt.data import read_docs
from microgpt.recording.session import train_and_record
from microgpt.train import SEED

DOC = 'emma'


def grad_norms(trace):
    """{matrix: L2 norm of its grad} for the recorded document."""
    out = {}
    for name, base in trace.param_base.items():
        rows, cols = trace.param_shapes[name]
        out[name] = math.sqrt(math.fsum(trace.grad[base + k] ** 2 for k in range(rows * cols)))
    return out


def measured_lines(before, after, steps):
    """The figures the picture and the terminal both state."""
    gb, ga = grad_norms(before), grad_norms(after)
    lines = [f"'{DOC}' before and after {steps} steps of the reference run (seed {SEED}, lr decaying to 0 over "
             f"{steps} steps): loss {before.loss:.4f} -> {after.loss:.4f}"]
    for name in gb:
        trend = 'grew' if ga[name] > gb[name] else 'shrank'
        lines.append(f"  {name:15s} \u2016grad\u2016 {gb[name]:.4g} -> {ga[name]:.4g} ({trend})")
    return lines


def views(steps=300):
    """([(file name, view)], (before, after) traces): the picture of the differences."""
    docs = read_docs(_common.names_path())
    with _common.progress('training', int(steps)) as on_step:
        before, after, _ = train_and_record(docs, DOC, int(steps), seed=SEED, num_steps=int(steps), on_step=on_step)
    view = build_diff(before, after, ('before', f'after {steps} steps'), layer=0, token=4, level='block',
                      notes=measured_lines(before, after, steps))
    return [('05_layer_before_after_training.svg', view)], (before, after)


def main(argv):
    steps = int(argv[2]) if len(argv) > 2 else 300
    pairs, (before, after) = views(steps)
    _common.write(pairs, _common.out_dir(argv))
    print(f"loss of '{DOC}': before {before.loss:.4f}, after {steps} steps {after.loss:.4f}")
    for line in measured_lines(before, after, steps)[1:]:
        print(line)


if __name__ == '__main__':
    main(sys.argv)
