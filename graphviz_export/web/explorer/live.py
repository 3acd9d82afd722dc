"""The explorer's live view and backprop lab, as the API uses them (issue 26).

    train=k       the view after k played steps (plays.Plays): the run's one layout, with step k's
                  numbers sent beside it (`live`: steps/live.py's payload) for the page to write in
    /api/play     from train=k, `steps` more optimizer steps: one payload per step, with the
                  step's training loss, the document's loss and the learning rate (play.js draws them)
    lab=MODE      the document's backward done wrongly, drawn as wrong - correct, the first node
                  where they diverge outlined and explained in the note box
    cmp=train:J   (with train=k) steps J and k of the run; cmp=seed:S: step k of the run from seed S

The layout of a played view is made once per view per run: the API keys it by the run
(not the step), so playing, pausing and reloading at any step reuse it (Api.layouts counts).
"""

import math

from microgpt.recording.lab import first_divergence

from ...steps.diff import DiffError, delta_trace, loss_lines
from ...steps.live import drawn_texts, numbers
from .plays import lab_delta
from .recordings import Comparison
from .state import StateError, canonical, compare_of

MAX_PLAY_STEPS = 10     # steps one /api/play request takes (the page asks for one or two at a time)
RECORDING_CMP = ('ckpt', 'steps')     # compare kinds of a recording; 'train' and 'seed' are a played run's


def played(plays, key, state):
    """(run key, Trace of step k) of a state with train=k."""
    rk = plays.run_key(key, state)
    return rk, plays.at(rk, state['train'])


def compared(plays, key, state):
    """The Comparison of a lab or of a played run's cmp, or None (a recording's cmp: recordings.compare)."""
    cmp = compare_of(state)
    if state['lab'] is not None:
        if state['train'] is not None or cmp is not None:
            raise StateError("lab shows the recording's own backward done wrongly; leave train and cmp first")
        lab = plays.lab(key, state['lab'])
        delta, notes = lab_delta(lab)
        return Comparison(lab.correct, lab.wrong, delta, ('correct', f'lab {lab.mode}'), notes, first=lab.first)
    if state['train'] is None:
        if cmp is not None and cmp[0] not in RECORDING_CMP:
            raise StateError(f"cmp {cmp[0]}:{cmp[1]} compares steps of a played run: give train=k too")
        return None
    if cmp is None:
        return None
    if cmp[0] in RECORDING_CMP:
        raise StateError("with train=k, compare with cmp=train:J (step J of this run) or cmp=seed:S "
                         "(the run from seed S)")
    before, after, labels = plays.compare(key, state)
    try:
        delta = delta_trace(before, after)
    except DiffError as e:
        raise StateError(f"cmp: {e}") from None
    first = first_divergence(before, after)
    notes = loss_lines(before, after, labels)
    if first is not None:
        notes.append(f"first diverging grad (backward order): {after.name(first)} (#{first}): "
                     f"{before.grad[first]:.6g} \u2192 {after.grad[first]:.6g}")
    return Comparison(before, after, delta, labels, notes, first=first)


def highlight(comparison):
    """{node id: reason} of a Comparison's first diverging node (outlined red), or None."""
    if comparison is None or comparison.first is None:
        return None
    return {comparison.first: 'first node where the two backwards diverge'}


def live_info(plays, state, run_key, trace, entry):
    """The `live` part of a played view's answer: where the run is, and step k's numbers for the
    run's layout (None when the layout was drawn at step k itself)."""
    play, _ = plays.run(run_key)
    view = entry['view']
    if 'drawn' not in entry:
        entry['drawn'] = drawn_texts(view)
    now = None if trace is entry['trace'] or entry['comparison'] is not None else numbers(view, trace, entry['drawn'])
    k = state['train']
    return {'step': k, 'schedule': play.schedule, 'lr': play.lr, 'tdoc': play.train_doc,
            'drawn': entry['drawn'] if entry['comparison'] is None else None, 'now': now,
            'losses': play.losses[:k], 'doc_losses': {str(s): v for s, v in play.doc_losses.items() if s <= k},
            'baseline': play.baseline(), 'vocab': round(math.exp(play.baseline())) if play.baseline() else None}


def play_steps(api, state, steps):
    """/api/play: `steps` optimizer steps from train=k, one payload each, on the run's layout."""
    if state['train'] is None:
        raise StateError("play needs train=k, the step to play from (0: the fresh model)")
    if state['cmp'] or state['lab']:
        raise StateError("play runs the training itself; leave cmp and lab first")
    if not 1 <= steps <= MAX_PLAY_STEPS:
        raise StateError(f"steps must be in 1..{MAX_PLAY_STEPS}, got {steps}")
    key, _trace, entry, _ = api._entry(state)
    view = entry['view']
    if 'drawn' not in entry:
        entry['drawn'] = drawn_texts(view)
    out = []

    def each(play, trace):
        k = play.step
        out.append({'step': k, 'loss': play.losses[k - 1], 'doc_loss': trace.loss,
                    'lr_t': None if play.lr is None else play.lr * (1 - (k - 1) / play.schedule),
                    'nodes': numbers(view, trace, entry['drawn'])})

    api.plays.advance(key, state['train'], steps, each)
    done = dict(state, train=state['train'] + len(out))
    return {'from': state['train'], 'steps': out, 'url': canonical(done)}
