"""Expected figures computed by the independent transcription (tests/reference_impl.py),
never by the code under test: log lines, samples, a step's loss parts, node counts.

The reference's own line formats are written out here (not imported from
microgpt.train / microgpt.sample) so a wrong format in the port cannot agree with itself.
"""

import hashlib
import json
import sys
from pathlib import Path

from microgpt.data import read_docs
from microgpt.engine import gc_paused as collector_paused  # a switch of the collector: no float of ours
from tests.reference_impl import BareValue, make_reference


def step_line(k, n, loss):
    return f"step {k + 1:4d} / {n:4d} | loss {loss:.4f}"


def sample_line(i, text):
    return f"sample {i + 1:2d}: {text}"


def reference_train_output(docs, steps, *, seed=42, log_every=1, samples=0, temperature=0.5, **sizes):
    """The lines `microgpt-graph train` must print (log lines and samples), computed by
    the reference: the training stream continues into sampling. The garbage collector is paused
    (which changes no float): in a test process holding millions of objects its passes made this
    2-3x slower."""
    with collector_paused():
        ref = make_reference(docs, seed=seed, **sizes)
        lines = []
        for k in range(steps):
            loss = ref.step(k, steps)
            if log_every and ((k + 1) % log_every == 0 or k + 1 == steps):
                lines.append(step_line(k, steps, loss))
        lines += [sample_line(i, ref.sample(temperature)) for i in range(samples)]
    return lines, ref


def reference_with(params, chars, **sizes):
    """A reference whose vocabulary is `chars` (sorted) and whose parameters hold the
    same floats as `params` ({name: matrix of Values}), to recompute a step of ours."""
    ref = make_reference([''.join(chars)], seed=0, **sizes)
    assert ref.uchars == sorted(chars)
    assert list(ref.state_dict) == list(params)
    for name, matrix in params.items():
        for row, ref_row in zip(matrix, ref.state_dict[name], strict=True):
            for v, r in zip(row, ref_row, strict=True):
                r.data = v.data
    return ref


class CountingValue(BareValue):
    """BareValue that counts the Values it makes (constants wrapped from numbers included)."""
    __slots__ = ()
    made = 0

    def __init__(self, *a, **k):
        CountingValue.made += 1
        super().__init__(*a, **k)


def count_step_nodes(chars, doc, **sizes):
    """Nodes one step of `doc` creates in the reference: parameters + every Value the
    forward pass and the loss make (the reference makes none in backward)."""
    import tests.reference_impl as impl
    saved = impl.BareValue
    impl.BareValue = CountingValue
    try:
        CountingValue.made = 0
        ref = make_reference([''.join(chars)], seed=0, **sizes)
        n_params = CountingValue.made
        CountingValue.made = 0
        loss = ref.loss_of(doc)
        made = CountingValue.made
    finally:
        impl.BareValue = saved
    loss.backward()
    return n_params, made


# -- the whole reference run, once ------------------------------------------------------------------
REFERENCE_RUN = Path(__file__).resolve().parent / 'golden' / 'reference_run.json'


def reference_run(docs, steps=1000, samples=20):
    """{'losses': every step's loss, 'samples': the samples after training} of the reference
    run on `docs` (seed 42), by the transcription (~2 minutes: the port's tests compare with
    the file it is kept in rather than run it again; its garbage collector is paused, as the
    port's is, which changes no float)."""
    with collector_paused():
        ref = make_reference(docs, seed=42)
        losses = [ref.step(k, steps) for k in range(steps)]
        return {'losses': losses, 'samples': [ref.sample() for _ in range(samples)]}


def main(argv):
    """python -m tests.reference_figures NAMES_FILE: write tests/golden/reference_run.json."""
    raw = Path(argv[1]).read_bytes()
    run = reference_run(read_docs(argv[1]))
    REFERENCE_RUN.write_text(json.dumps({'names_sha256': hashlib.sha256(raw).hexdigest(), **run}, indent=0) + '\n')
    print(f"wrote {REFERENCE_RUN}: {len(run['losses'])} losses, {len(run['samples'])} samples")


if __name__ == '__main__':
    main(sys.argv)
