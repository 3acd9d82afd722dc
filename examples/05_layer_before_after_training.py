"""Layer 0 at the last position of 'emma', before and after training.

Trains the reference way (seed 42, Adam, one name per step) on the names data
when it is found ($MICROGPT_DATA, ./input.txt, ../shared/data/names.txt), else on
a short built-in list, and draws the same block-level layer view twice: compare
the loss and how the grads (colours) shrink as the model learns.

    python examples/05_layer_before_after_training.py [OUT_DIR] [STEPS]
"""
import os
import sys
from pathlib import Path

from graphviz_export import build_view, render_view
from microgpt.data import read_docs
from microgpt.recording.step import record_step
from microgpt.train import start_run, train

ROOT = Path(__file__).resolve().parent.parent

BUILT_IN = ['emma', 'olivia', 'ava', 'isabella', 'sophia', 'mia', 'charlotte', 'amelia', 'harper', 'evelyn',
            'abigail', 'emily', 'elizabeth', 'sofia', 'avery', 'ella', 'scarlett', 'grace', 'victoria', 'riley',
            'aria', 'lily', 'zoey', 'penelope', 'layla', 'nora', 'hannah', 'quinn', 'jade', 'willow', 'xena']


def docs():
    for p in (os.environ.get('MICROGPT_DATA'), 'input.txt', ROOT.parent / 'shared' / 'data' / 'names.txt'):
        if p and Path(p).exists():
            return read_docs(p)
    return BUILT_IN


def main(out_dir=Path(__file__).resolve().parent, steps=300):
    run = start_run(docs(), seed=42)
    for when in ('before', 'after'):
        if when == 'after':
            train(run, int(steps))
        trace = record_step(run.params, run.config, run.tokenizer, 'emma')
        view = build_view(trace, layer=0, token=4, level='block', notes=[f"{when} training, loss {trace.loss:.4f}"])
        render_view(view, 'svg', path=Path(out_dir) / f'05_layer_{when}_training.svg')
        print(f"{when} training ({len(run.losses)} steps): loss of 'emma' {trace.loss:.4f}")


if __name__ == '__main__':
    main(*sys.argv[1:])
