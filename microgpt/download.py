"""Fetching one file over HTTP(S), for the names list `train` needs when given none.

Read into memory (the names list is 228 kB), checked against its SHA-256, then
written atomically: a failed, stalled or corrupted download leaves nothing
behind, not even an empty folder. Each read waits at most `timeout` seconds, so
a stalled connection ends with an error instead of hanging.
"""

import hashlib
import http.client
import os
import urllib.error
import urllib.request

from .errors import InputError
from .files import write_atomic

MAX_BYTES = 64 * 2**20  # nothing we fetch is near this; a guard against the wrong URL


class DownloadError(InputError):
    """A download that failed; the message names the URL and what to do instead."""


def download(url, dest, *, sha256=None, timeout=30.0, progress=None, chunk=16384):
    """Fetch `url` into the file `dest` (its folder is created on success only).

    sha256: the expected hex digest; a mismatch raises DownloadError and writes nothing.
    progress(done_bytes, total_bytes_or_None) is called after every chunk.
    Raises DownloadError (one line, naming the URL) on any network failure or stall.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get('Content-Length')
            total = int(length) if length and length.isdigit() else None
            parts, done = [], 0
            if progress is not None:
                progress(0, total)
            while True:
                block = response.read(chunk)
                if not block:
                    break
                parts.append(block)
                done += len(block)
                if done > MAX_BYTES:
                    raise DownloadError(f"{url} sent more than {MAX_BYTES // 2**20} MB; not the file expected")
                if progress is not None:
                    progress(done, total)
    except TimeoutError:
        raise DownloadError(f"download of {url} stalled: no data for {timeout:g} s") from None
    except urllib.error.HTTPError as e:
        raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise DownloadError(f"download of {url} stalled: no answer for {timeout:g} s") from None
        reason = e.reason.strerror if isinstance(e.reason, OSError) and e.reason.strerror else e.reason
        raise DownloadError(f"download of {url} failed: {reason}") from None
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(f"download of {url} failed: {getattr(e, 'strerror', None) or e!r}") from None
    data = b''.join(parts)
    if total is not None and len(data) != total:
        raise DownloadError(f"download of {url} was cut short: {len(data)} of {total} bytes")
    if sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise DownloadError(f"download of {url} has SHA-256 {got}, expected {sha256}; "
                                f"the file changed or was corrupted, so it was not saved")
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the folder {folder} for {url}: {e.strerror or e}") from None
    write_atomic(dest, data)
    return dest
