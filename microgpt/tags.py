"""The port's only hook for recording: `scope(...)` tags the nodes a block makes.

    with scope(pos=t, layer=l, block='attn', head=h, role='q'):
        q = linear(x, wq)

Nothing happens unless a recorder listens: `scope()` then returns a shared null
context (one global read). A recorder (microgpt.recording) installs itself with
`listen(fn)`, where `fn(fields)` returns the context manager to use, and removes
itself with `listen(None)`. The port never imports the recorder.
"""

from contextlib import nullcontext

_NULL = nullcontext()
_listener = None  # set by a recorder while it records; None otherwise


def scope(**fields):
    """Tag the Values created inside the block: pos, layer, block, head, role."""
    listener = _listener
    if listener is None:
        return _NULL
    return listener(fields)


def listen(fn):
    """Install `fn(fields) -> context manager` as the listener (None removes it);
    returns the previous listener."""
    global _listener
    previous, _listener = _listener, fn
    return previous
