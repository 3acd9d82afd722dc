"""`Source`: where in a user's script a recorded node was made (see recording.script).

A trace recorded from a script carries a `sources` table of these and, per node,
an index into it (`Trace.source`); a trace of the port's own step has neither.
"""

from typing import NamedTuple


class Source(NamedTuple):
    file: str       # relative to the script's folder
    line: int       # the call line: the model's line that asked for the op
    funcs: tuple    # enclosing user functions, outermost first
    text: str       # that line's code, stripped
    op_file: str    # where the node itself was built (inside the autograd class or a helper)
    op_line: int
    grad_line: int  # where its local derivative is written (op_line, or a _backward closure's body)

    def where(self):
        """'train.py:42'."""
        return f"{self.file}:{self.line}"
