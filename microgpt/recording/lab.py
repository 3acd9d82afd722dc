"""The backprop lab: one document's backward done wrongly on purpose, on its recorded graph.

The forward pass is the port's, recorded as usual (same ops, same ids, same floats);
only the backward pass runs differently, so the wrong trace has the correct one's
graph and the two can be drawn as one picture of differences (graphviz_export.steps.diff):

    recursive  the naive recursive backward learners write first (micrograd #21 #64 #68 #91 #96):
                   def backward(v): for child: child.grad += local * v.grad; backward(child) once
               a node passes its grad on as soon as its first user calls it, before its other
               uses have added theirs, and never again
    twice      loss.backward() called twice without zeroing (micrograd #53 #102): the second pass
               starts from the grads the first one left, so the loss's inputs get 2x, theirs 3x, ...
    assign     `child.grad = local * v.grad` instead of `+=` (micrograd #72, nn-zero-to-hero #52):
               a node used several times keeps only the last contribution
    a fault    (microgpt.checks.faults, `gradcheck --list-faults`): one op's local derivative
               bent while recording; the caller passes the fault's context (`inject`), because
               the checks import the recording package, not the other way round

    lab = lab_step(params, config, tokenizer, 'emma', 'recursive')
    lab.first, lab.cause, lab.lines      # the first node (in the correct backward order) whose
                                         # grad differs, the node that sent it, and why, in words

Every wrong backward here is iterative (an explicit stack where the learner's code
recurses), so a 44,000-node step never meets Python's recursion limit, and
simulates the recursion's order exactly: children left to right, depth first.
"""

import math
from typing import NamedTuple

from .. import engine
from ..engine import gc_paused
from ..errors import InputError
from ..model import doc_loss, flat_params
from .step import record_step
from .tape import record

MODES = ('recursive', 'twice', 'assign')   # the wrong backwards of this module; faults come from outside


class LabError(InputError):
    """A lab mode that does not exist."""


def assign_accumulate(topo):
    """engine.accumulate with the bug: `=` where it must be `+=` (also the 'accumulate-overwrite'
    fault of microgpt.checks.faults, which installs this)."""
    for v in reversed(topo):
        g = v.grad
        for child, local_grad in zip(v._children, v._local_grads):
            child.grad = local_grad * g


def recursive_backward(root):
    """The naive recursive backward, run with a stack in its exact order:

        def backward(v):
            visited.add(v)
            for child, local in zip(v._children, v._local_grads):
                child.grad += local * v.grad
                if child not in visited:
                    backward(child)

    Returns {Value: (grad it passed on, uses arrived by then)} for every node that passed
    its grad on (the uses are counted as they add into it)."""
    arrived = {}          # Value -> contributions added so far
    sent = {}
    root.grad = 1
    visited = {root}
    sent[root] = (root.grad, 0)
    stack = [(root, iter(zip(root._children, root._local_grads)))]
    while stack:
        node, edges = stack[-1]
        for child, local in edges:
            child.grad += local * node.grad
            arrived[child] = arrived.get(child, 0) + 1
            if child not in visited:
                visited.add(child)
                sent[child] = (child.grad, arrived[child])
                stack.append((child, iter(zip(child._children, child._local_grads))))
                break
        else:
            stack.pop()
    return sent


class Lab(NamedTuple):
    mode: str
    correct: object      # the Trace of the correct backward
    wrong: object        # the Trace of the same graph with the wrong backward
    first: int           # the first node, in the correct backward order, whose grad differs (None: none)
    cause: int           # the node whose wrong sending made it differ (None: none)
    lines: list          # what happened, in words (names as every surface says them)


def lab_step(params, config, tokenizer, doc, mode, *, inject=None, correct=None):
    """`doc`'s step recorded with the `mode` backward (MODES), or under `inject` (a context
    manager: a fault of microgpt.checks.faults; `mode` is then its name), beside the correct
    recording (`correct`, if the caller has it). Parameter grads are left as the correct
    backward leaves them."""
    if inject is None and mode not in MODES:
        raise LabError(f"lab {mode!r} is not one of: {', '.join(MODES)} (or a fault of gradcheck --list-faults)")
    if correct is None:
        correct = record_step(params, config, tokenizer, doc)
    if inject is not None:
        with inject:
            wrong = record_step(params, config, tokenizer, doc)
    else:
        wrong = _wrong_step(params, config, tokenizer, doc, correct, mode)
    for p, g in zip(flat_params(params), correct.grad):    # parameters are the first nodes
        p.grad = g
    first = first_divergence(correct, wrong)
    cause, lines = _explain(correct, wrong, first, mode, sent=wrong.meta.pop('lab_sent', None))
    return Lab(mode, correct, wrong, first, cause, lines)


def _wrong_step(params, config, tokenizer, doc, correct, mode):
    """record_step's forward, then the wrong backward on the recorded Values."""
    tokens = correct.meta['tokens']
    for p in flat_params(params):
        p.grad = 0
    sent = None
    with record(params) as tape:
        loss, losses = doc_loss(params, config, tokens)
        if mode == 'twice':
            loss.backward()
            loss.backward()
        else:
            topo = engine.topological_order(loss)
            tape.backward_order = topo     # the correct order: frames and ranks read it
            if mode == 'assign':
                loss.grad = 1
                assign_accumulate(topo)
            else:
                sent = recursive_backward(loss)
    tape.meta.update({k: v for k, v in correct.meta.items() if k not in ('loss_id', 'position_loss_ids')},
                     position_loss_values=losses, lab=mode)
    with gc_paused():
        trace = tape.to_trace(loss)
    if sent is not None:
        ids = {tape.node_id(v): s for v, s in sent.items()}
        trace.meta['lab_sent'] = ids
    return trace


def _differs(a, b):
    return a != b and not (math.isnan(a) and math.isnan(b))


def first_divergence(correct, wrong):
    """The first node in the correct backward order (the loss first) whose grad differs, or None."""
    cg, wg = correct.grad, wrong.grad
    for i in correct.backward_order:
        if _differs(cg[i], wg[i]):
            return i
    return None


def _explain(correct, wrong, first, mode, sent=None):
    """(cause node id, lines): who sent the wrong grad into `first`, and why, in words."""
    if first is None:
        return None, [f"lab {mode}: every grad equals the correct backward's"]
    name = correct.name
    right, got = correct.grad[first], wrong.grad[first]
    head = f"first wrong grad: {name(first)} (#{first}): {got:.6g} instead of {right:.6g}"
    parents = [p for p, _, _ in correct.uses(first)]
    if mode == 'recursive':
        for p in parents:
            grad_sent, arrived = sent.get(p, (None, 0))
            if grad_sent is not None and _differs(grad_sent, correct.grad[p]):
                n = len(correct.parents(p)) if p != correct.meta['loss_id'] else 0
                return p, [head, f"{name(p)} (#{p}) passed its grad on when {arrived} of its {n} uses had "
                                 f"arrived: it sent {grad_sent:.6g}, its grad is {correct.grad[p]:.6g}; "
                                 f"backward must wait for all uses (a topological order)"]
        return None, [head]
    if mode == 'twice':
        ratio = got / right if right else math.nan
        return first, [head, f"backward() ran twice without zeroing: the second pass adds to what the first "
                             f"left ({ratio:.3g}x here); one level further down 3x, and so on"]
    if mode != 'assign':    # a fault: the op whose local derivative differs
        for p in correct.backward_order:
            a, b = correct.local_grads(p), wrong.local_grads(p)
            if any(_differs(x, y) for x, y in zip(a, b)):
                return p, [head, f"{name(p)} (#{p}, {correct.op_name(p)}) has the wrong local derivative: "
                                 f"{', '.join(f'{y:.6g}' for y in b)} instead of "
                                 f"{', '.join(f'{x:.6g}' for x in a)}"]
    # `=` for `+=` (lab assign, or the accumulate-overwrite fault: no local derivative differs)
    uses = correct.uses(first)
    last = uses[-1] if uses else None
    text = f"{name(first)} is used by {len(uses)} ops; with = only the last contribution stays"
    if last is not None:
        text += f" ({name(last[0])}: {last[2]:.6g}) instead of their sum"
    return first, [head, text]
