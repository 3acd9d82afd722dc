"""The one atomic writer (readers see the old file or the new one, never a part), and
the one strict-JSON helper (json_safe: JSON has no NaN or infinity).

What may be replaced: a regular file, or a path where nothing is yet. A device,
FIFO, socket or folder at the output path is refused (`OutputPathError`), so
`-o /dev/null` never turns the device into a file. A symbolic link is followed:
the file it points to is replaced and the link stays a link (a dangling link
creates its target).

Permission policy: a new file gets mode 0o666 less the umask, as `open()` would
give it (checkpoints, traces and pictures alike); replacing a file keeps the
umask's mode too. The data is fsynced before the rename and the directory after.

The temp file is `.NAME.xxxxxxxx.tmp` beside the target, with NAME shortened so
the temp name never passes the file system's name limit (a legal 255-byte name
works). It is removed on any failure, including KeyboardInterrupt and any other
BaseException a signal handler raises (the CLI turns SIGTERM into one).
"""

import contextlib
import math
import os
import secrets
import stat
import tempfile

from .errors import InputError, WriteError

NAME_MAX = 255   # bytes in one file name, where pathconf cannot say
PATH_MAX = 4096  # bytes in a whole path (Linux)
_TMP_EXTRA = len('.') + len('.') + 8 + len('.tmp')


class OutputPathError(InputError):
    """An output path that cannot be written: no such folder, not writable, a folder,
    a device/FIFO/socket, or a name too long."""


def _name_max(directory):
    try:
        return os.pathconf(directory, 'PC_NAME_MAX')
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _kind(mode):
    for test, name in ((stat.S_ISDIR, 'a folder'), (stat.S_ISCHR, 'a character device'),
                       (stat.S_ISBLK, 'a block device'), (stat.S_ISFIFO, 'a FIFO (named pipe)'),
                       (stat.S_ISSOCK, 'a socket')):
        if test(mode):
            return name
    return 'not a regular file'


def resolve_output(path):
    """The real path that writing `path` replaces (symlinks followed), after checking
    that it is a regular file or nothing, with a name the file system can hold.
    Raises OutputPathError with one line naming the path and what is allowed."""
    path = os.fspath(path)
    if not path or not os.path.basename(path):
        raise OutputPathError(f"{path!r} names no file (give a file name, e.g. out.svg)")
    if '\0' in path:
        raise OutputPathError(f"{path!r} holds a NUL character")
    try:
        encoded = os.fsencode(path)
    except UnicodeError:
        raise OutputPathError(f"{path!r} cannot be encoded as a file name") from None
    if len(encoded) >= PATH_MAX:
        raise OutputPathError(f"path is {len(encoded)} bytes long; the limit is {PATH_MAX - 1}")
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    name = os.path.basename(target)
    limit = _name_max(directory) if os.path.isdir(directory) else NAME_MAX
    if len(os.fsencode(name)) > limit:
        raise OutputPathError(f"file name {name[:40]!r}... is {len(os.fsencode(name))} bytes; "
                              f"the limit is {limit} bytes")
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        shown = path if target == os.path.abspath(path) else f"{path} (-> {target})"
        raise OutputPathError(f"refusing to write {shown}: it is {_kind(st.st_mode)}; "
                              f"outputs go to a regular file or a new path")
    return target


def _tmp_name(directory, name):
    """A hidden temp name beside `name` that fits the name limit."""
    room = _name_max(directory) - _TMP_EXTRA
    stem = os.fsencode(name)[:room].decode('utf-8', 'ignore') if room > 0 else ''
    return os.path.join(directory, f'.{stem}.{secrets.token_hex(4)}.tmp')


def write_atomic(path, data):
    """Replace `path` with `data` (str is written as UTF-8, bytes as they are, any other
    iterable as its str or bytes chunks, one at a time: a gigabyte never held whole);
    returns the bytes written.

    Writes a hidden temp file in the target's directory (so the rename stays on
    one filesystem), fsyncs it, then os.replace()s it over the target. On any
    failure the temp file is removed, the old file is untouched and WriteError
    names the path; a path that is not a regular file raises OutputPathError.
    """
    path = os.fspath(path)
    parts = (_bytes(data, path),) if isinstance(data, (str, bytes, bytearray, memoryview)) else data
    target = resolve_output(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        problem = 'is not a directory' if os.path.exists(directory) else 'does not exist'
        raise WriteError(f'cannot write {path}: directory {directory} {problem}')
    tmp = _tmp_name(directory, os.path.basename(target))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    except OSError as exc:
        raise WriteError(f'cannot write {path}: {exc.strerror or exc}') from None
    try:
        size = 0
        with os.fdopen(fd, 'wb') as f:
            for part in parts:
                size += f.write(_bytes(part, path))
            f.flush()
            os.fsync(f.fileno())
        resolve_output(target)  # still a regular file or nothing (a FIFO may have appeared)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f'cannot write {path}: {exc.strerror or exc}') from None
        raise
    _sync_dir(directory)
    return size


def _bytes(data, path):
    if not isinstance(data, str):
        return data
    try:
        return data.encode('utf-8')
    except UnicodeEncodeError as exc:
        bad = data[exc.start]
        raise WriteError(f'cannot write {path}: the text holds U+{ord(bad):04X}, which UTF-8 cannot encode') from None


def _sync_dir(directory):
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable (not on every OS)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_new(directory, prefix, suffix, data):
    """Write `data` to a file name that did not exist before (PREFIXxxxxxxxx SUFFIX in
    `directory`, default the temp folder) and return its path. For the files a
    failure leaves behind (a timed-out layout's DOT, a model that could not be
    saved where asked): they never replace anything."""
    data = _bytes(data, prefix + suffix)
    directory = directory or tempfile.gettempdir()
    try:
        fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    except OSError as exc:
        raise WriteError(f'cannot write a file in {directory}: {exc.strerror or exc}') from None
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, 0o666 & ~_umask())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(exc, OSError):
            raise WriteError(f'cannot write {path}: {exc.strerror or exc}') from None
        raise
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output(path):
    """Refuse, before any work, an output path whose folder is missing or not
    writable, that is a folder, device, FIFO or socket, or whose name is too long."""
    path = os.fspath(path)
    target = resolve_output(path)
    parent = os.path.dirname(target)
    shown = os.path.dirname(path) or '.'
    if not os.path.isdir(parent):
        raise OutputPathError(f"folder {shown!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"folder {shown!r} is not writable")
    return path


def check_output_folder(path):
    """Refuse, before any work, a folder to write files into that is not a folder, cannot be
    written, or whose parent is missing: only the folder itself may be new (it is made then,
    one level; a typo never makes a tree of folders)."""
    path = os.fspath(path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise OutputPathError(f"{path!r} is not a folder")
        where = path
    else:
        where = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(where):
            raise OutputPathError(f"folder {os.path.dirname(path) or '.'!r} does not exist (only the last "
                                  f"folder of the path is made)")
    if not os.access(where, os.W_OK | os.X_OK):
        raise OutputPathError(f"folder {where!r} is not writable")
    return path


def read_capped(path, limit, what, error):
    """The UTF-8 text of `path` (a leading BOM dropped), at most `limit` bytes;
    `error` (an InputError class) for a missing, unreadable, oversized or
    non-UTF-8 file, or a device (/dev/zero). Reads at most limit + 1 bytes
    (a FIFO is read up to the cap)."""
    raw = read_capped_bytes(path, limit, what, error)
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        raise error(f"cannot read {what} {path}: not UTF-8 text (byte {e.start})") from None


def read_capped_bytes(path, limit, what, error):
    """The bytes of `path`, checked as read_capped checks them (but not decoded)."""
    try:
        with open(path, 'rb') as f:
            st = os.fstat(f.fileno())
            mode = st.st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                raise error(f"{what} {path} is {_kind(mode)}, not a file")
            if stat.S_ISREG(mode) and st.st_size > limit:   # refused before reading it
                raise error(f"{what} {path} is larger than {limit // (1024 * 1024)} MiB; refusing to read it")
            if stat.S_ISREG(mode):      # read(n) holds n bytes at first: ask for the file's size
                raw = f.read(st.st_size + 1)
                if len(raw) > st.st_size:       # it grew since: read on, up to the cap
                    raw += f.read(limit + 1 - len(raw))
            else:
                raw = f.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder") from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(raw) > limit:
        raise error(f"{what} {path} is larger than {limit // (1024 * 1024)} MiB; refusing to read it")
    return raw


def json_safe(obj):
    """`obj` ready for strict JSON: a NaN or infinite float becomes its repr ('nan', 'inf',
    '-inf'), everywhere in `obj` (a float, or dicts, lists and tuples of them); finite
    floats stay numbers (JSON writes their shortest round-trip repr). Every surface that
    writes JSON (views, frames, the explorer's answers, --json reports) uses this one."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
