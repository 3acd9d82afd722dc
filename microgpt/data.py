"""Documents and the character tokenizer.

Documents are the non-empty stripped lines of a text file. The vocabulary is the
sorted set of their characters (ids 0..n-1) plus one id, BOS = n, that marks both
the start and the end of a document.
"""

import os
from pathlib import Path

from .cache import user_cache_dir
from .errors import InputError, WriteError
from .files import read_capped

NAMES_URL = 'https://raw.githubusercontent.com/karpathy/makemore/refs/heads/master/names.txt'
# SHA-256 of that file (32,033 names, 228,145 bytes): a changed or corrupted download is refused
NAMES_SHA256 = '0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d'
DEFAULT_DOC = 'emma'        # the document the tools record when none is named: the first name of names.txt
DATA_ENV = 'MICROGPT_DATA'  # the one variable for the names data: CLI, examples and tests
DATA_ENV_ALIASES = ('MICROGPT_NAMES',)  # older name, still honoured


class DataError(InputError):
    """A data set or document that cannot be used; the message says why."""


MAX_DATA_BYTES = 64 * 1024 * 1024   # 64 MiB; the names data is 228 KB


def _refused_char(ch):
    """A character XML 1.0 cannot hold (so no SVG label could show it) or a control
    character that would reach a terminal: C0/C1 controls but tab, DEL, U+FFFE, U+FFFF."""
    o = ord(ch)
    return (o < 0x20 and ch != '\t') or 0x7f <= o <= 0x9f or o in (0xfffe, 0xffff) or 0xd800 <= o <= 0xdfff


def read_docs(path):
    """The non-empty stripped lines of the UTF-8 text file at `path`.

    At most MAX_DATA_BYTES; a leading byte-order mark is dropped (it is not a
    character of the first document); a control character or one XML cannot hold
    (U+FFFE, U+FFFF) is refused with its line and column."""
    text = read_capped(path, MAX_DATA_BYTES, 'data file', DataError)
    docs = []
    for number, line in enumerate(text.split('\n'), 1):
        line = line.strip()
        if not line:
            continue
        for col, ch in enumerate(line, 1):
            if _refused_char(ch):
                raise DataError(f"data file {path}, line {number}, column {col}: character U+{ord(ch):04X} "
                                f"is a control or non-character; documents hold printable text")
        docs.append(line)
    if not docs:
        raise DataError(f"data file {path} has no non-empty lines")
    return docs


def data_path_from_env():
    """The names-data path the environment names: $MICROGPT_DATA, or its older
    alias $MICROGPT_NAMES; None when neither is set."""
    for var in (DATA_ENV,) + DATA_ENV_ALIASES:
        value = os.environ.get(var)
        if value:
            return Path(value), var
    return None


def names_cache_path(cache_dir=None):
    """Where `train` keeps the downloaded makemore names list."""
    return Path(cache_dir) / 'names.txt' if cache_dir is not None else user_cache_dir() / 'names.txt'


def default_data_path(cache_dir=None, download=True, *, log=None, progress=None, timeout=30.0):
    """Where the names data is when no path is given: $MICROGPT_DATA (alias
    $MICROGPT_NAMES), ./input.txt (as the reference script looks for it), else the
    makemore names list in the user cache folder, downloaded once.

    log(message) is told before a download starts (the URL and the cache path);
    progress(done_bytes, total_bytes) follows it. Raises DataError that says how to
    supply the file when the variable names a missing file or the download fails.
    """
    named = data_path_from_env()
    if named is not None:
        path, var = named
        if not path.is_file():
            raise DataError(f"${var} is {path}, which is not a file; point it at the names list "
                            f"(one name per line, e.g. makemore's names.txt from {NAMES_URL})")
        return path
    if Path('input.txt').is_file():
        return Path('input.txt')
    cache = names_cache_path(cache_dir)
    if cache.is_file():
        return cache
    how = (f"download {NAMES_URL} yourself and pass its path (microgpt-graph train names.txt) "
           f"or set ${DATA_ENV}=/path/to/names.txt")
    if not download:
        raise DataError(f"no names data: not in ${DATA_ENV}, ./input.txt or {cache}; {how}")
    if log is not None:
        log(f"downloading the makemore names list from {NAMES_URL} to {cache}")
    from .download import DownloadError  # the network stack only when it downloads
    from .download import download as fetch
    try:
        fetch(NAMES_URL, cache, sha256=NAMES_SHA256, timeout=timeout, progress=progress)
    except (DownloadError, WriteError) as e:
        raise DataError(f"{e}; {how}") from None
    return cache


class Tokenizer:
    """Characters <-> token ids; BOS = len(chars) starts and ends every document."""

    def __init__(self, chars):
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise DataError(f"vocabulary must be distinct single characters, got {chars!r}")
        if chars != sorted(chars):
            raise DataError("vocabulary must be sorted (it is the sorted set of the documents' characters)")
        self.chars = chars
        self.BOS = len(chars)
        self.vocab_size = len(chars) + 1
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_docs(cls, docs):
        return cls(sorted(set(''.join(docs))))

    def encode(self, doc):
        """[BOS] + ids of doc's characters + [BOS]; DataError for an unknown character."""
        if not doc:
            raise DataError("the document is empty; give at least one character")
        ids = [self.BOS]
        for i, ch in enumerate(doc):
            t = self._ids.get(ch)
            if t is None:
                raise DataError(f"character {ch!r} at index {i} of {doc!r} is not in the vocabulary "
                                f"{''.join(self.chars)!r}")
            ids.append(t)
        ids.append(self.BOS)
        return ids

    def decode(self, ids):
        """The characters of ids, BOS shown as nothing."""
        return ''.join(self.chars[t] for t in ids if t != self.BOS)

    def token_str(self, t):
        return '<BOS>' if t == self.BOS else self.chars[t]

    def __eq__(self, other):
        return isinstance(other, Tokenizer) and self.chars == other.chars

    def __repr__(self):
        return f"Tokenizer({''.join(self.chars)!r})"
