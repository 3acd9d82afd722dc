"""Documents and the character tokenizer.

Documents are the non-empty stripped lines of a text file. The vocabulary is the
sorted set of their characters (ids 0..n-1) plus one id, BOS = n, that marks both
the start and the end of a document.
"""

import os
import urllib.request
from pathlib import Path

from .errors import InputError
from .files import read_capped

NAMES_URL = 'https://raw.githubusercontent.com/karpathy/makemore/refs/heads/master/names.txt'
DATA_ENV = 'MICROGPT_DATA'  # a path to the names file, used when no path is given


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


def default_data_path(cache_dir=None, download=True):
    """Where the reference names data is: $MICROGPT_DATA, ./input.txt (as the
    reference script looks for it), else a cached copy of the makemore names file,
    downloaded once. Raises DataError with what to do when offline."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    if Path('input.txt').exists():
        return Path('input.txt')
    cache = Path(cache_dir or os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'microgpt-graph' / 'names.txt'
    if cache.exists():
        return cache
    if not download:
        raise DataError(f"no names data: set ${DATA_ENV}, put input.txt here, or pass a data file path")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix('.part')
        urllib.request.urlretrieve(NAMES_URL, tmp)
        os.replace(tmp, cache)
    except OSError as e:
        raise DataError(f"could not download the names data from {NAMES_URL} ({e}); "
                        f"pass a data file path or set ${DATA_ENV}") from None
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
