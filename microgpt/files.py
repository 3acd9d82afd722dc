"""The one atomic writer: readers see the old file or the new one, never a part.

Permission policy: a new file gets mode 0o666 less the umask, as `open()` would
give it (checkpoints, traces and pictures alike); replacing a file keeps the
umask's mode too. The data is fsynced before the rename and the directory after.
"""

import contextlib
import os
import secrets

from .errors import InputError, WriteError


def write_atomic(path, data):
    """Replace `path` with `data` (str is written as UTF-8, bytes as they are).

    Writes a hidden temp file in the same directory (so the rename stays on one
    filesystem), fsyncs it, then os.replace()s it over `path`. On any failure the
    temp file is removed, the old file is untouched and WriteError names the path.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        problem = 'is not a directory' if os.path.exists(directory) else 'does not exist'
        raise WriteError(f'cannot write {path}: directory {directory} {problem}')
    tmp = os.path.join(directory, f'.{os.path.basename(path)}.{secrets.token_hex(4)}.tmp')
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    except OSError as exc:
        raise WriteError(f'cannot write {path}: {exc.strerror or exc}') from None
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise WriteError(f'cannot write {path}: {exc.strerror or exc}') from None
        raise
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable (not on every OS)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class OutputPathError(InputError):
    """An output path that cannot be written: no such folder, not writable, a folder."""


def check_output(path):
    """Refuse, before any work, an output path whose folder is missing or not
    writable, or that is a folder itself."""
    path = os.fspath(path)
    parent = os.path.dirname(path) or '.'
    if not os.path.isdir(parent):
        raise OutputPathError(f"folder {parent!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"folder {parent!r} is not writable")
    if os.path.isdir(path):
        raise OutputPathError(f"{path!r} is a folder")
    return path
