"""The error every "bad input" shares.

Each loader and validator raises a subclass of `InputError` (DataError,
CheckpointError, TraceQueryError, TraceFormatError, ...), with a one-line
message that names the bad value and what is allowed. The CLI maps this one
type to exit status 2; any other exception is a failure of the run (exit 1).
It subclasses ValueError so `except ValueError` callers keep working.
"""


class InputError(ValueError):
    """Input the user can fix: a bad file, option, name or query."""


class WriteError(OSError):
    """An output could not be written; the message names the path and why."""
