"""Text that is not ours (the document, token strings, parameter names read from a
JSON trace) turned into DOT attribute text that Graphviz shows verbatim.

Graphviz reads labels and tooltips as escStrings (a backslash starts `\\n`, `\\l`,
`\\N`, ...) and decodes HTML entities in them; record labels also give `{ } | < >`
and spaces a meaning of their own. Entities carry `& < > "` (so no raw quote ever
reaches the DOT quoting), a doubled backslash carries `\\` (quadrupled in
tooltips), and a backslash carries the record metacharacters. Checked on both
renderers by tests/test_export_escape.py, in every place a text can appear.

The WebAssembly Graphviz is built without expat, so HTML-like labels (`<...>`)
are not available: every label here is a plain string or a record.

Length: Graphviz's parser refuses a quoted string longer than 16,384 characters (2.43:
"syntax error ... longer than 16384?"), and a trace can hold a document, a token, a
parameter name or a line of code of any length. So one text is written with at most
MAX_TEXT characters of DOT (cut at a character, never inside an escape, ending in '…'),
and the lines of one label or tooltip with at most MAX_QUOTED together; a record label
has at most five fields, so every string this module makes stays under the limit.
"""

import re

MAX_TEXT = 2000         # characters of DOT text one text becomes (a label line, a record field)
MAX_QUOTED = 12000      # characters of DOT text the lines of one label or tooltip become together
TOOLTIP_SEP = '&#10;'     # a newline in an SVG <title>
_XML_BAD = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_ENTITIES = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\\': '\\\\'}


def _char(ch):
    if ch in _ENTITIES:
        return _ENTITIES[ch]
    if ch < ' ' or ch == '\x7f':
        # a control character cannot be shown (NUL cannot even be in XML): show its code
        return f'\\\\x{ord(ch):02x}'
    if '\ud800' <= ch <= '\udfff' or ch in '\ufffe\uffff':
        # XML 1.0 cannot hold these (a lone surrogate cannot even be UTF-8): show the code
        return f'\\\\u{ord(ch):04x}'
    return ch


def xml_safe(text):
    """The last line of defence, for a whole DOT source: every character XML 1.0
    cannot hold (C0 controls but tab/newline/CR, lone surrogates, U+FFFE, U+FFFF)
    replaced by U+FFFD, so the SVG Graphviz writes always parses."""
    if _XML_BAD.search(text) is None:
        return text
    return _XML_BAD.sub('\ufffd', text)


# the characters _char changes: a text with none of them, and shorter than its budget, is its
# own escape, and a record field's is a translation of `{ } |` and spaces (found in C: a
# view's labels and tooltips are 200,000 characters, each a Python call through _char)
_PLAIN_SPECIAL = re.compile('[&<>"\\\\\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]')


def _capped(text, char, budget, table=None):
    """`text` escaped by `char`, at most `budget` characters of it; past that cut, with '…'.
    `table`: a str.translate table of what `char` does to characters _char keeps (given: `char`
    is that table's, else _char; a character of `table` becomes at most two)."""
    text = str(text)
    if _PLAIN_SPECIAL.search(text) is None and len(text) * (1 if table is None else 2) < budget:
        return text if table is None else text.translate(table)
    if len(text) * 8 <= budget:     # no character escapes to more than 8
        return ''.join(map(char, text))
    out, used = [], 0
    for ch in text:
        e = char(ch)
        used += len(e)
        if used > budget - 1:
            out.append('\u2026')
            break
        out.append(e)
    return ''.join(out)


def plain(text, budget=MAX_TEXT):
    """`text` for a plain label, tooltip, cluster or graph label: shown as is (cut past `budget`)."""
    return _capped(text, _char, budget)


_RECORD = {'{': '\\{', '}': '\\}', '|': '\\|', ' ': '\\ '}
_RECORD_TABLE = str.maketrans(_RECORD)


def record_field(text):
    """`text` for one field of a record label: also keeps `{ } |` and spaces literal.
    (A record drops a field's leading spaces, escaped or not: those become no-break spaces.)"""
    text = str(text)
    lead = min(len(text) - len(text.lstrip(' ')), MAX_TEXT // 2)
    return '\u00a0' * lead + _capped(text[lead:], lambda ch: _RECORD.get(ch) or _char(ch), MAX_TEXT - lead,
                                       _RECORD_TABLE)


def _joined(texts, write, sep):
    """The texts written (write(text, budget)) and joined by `sep`, MAX_QUOTED characters in all:
    the lines past it are left out, and a last '…' says so."""
    out, left = [], MAX_QUOTED
    for t in texts:
        if left < 2 * len(sep) + 2:
            out.append('\u2026')
            break
        line = write(t, min(MAX_TEXT * 4, left - len(sep) - 2))
        out.append(line)
        left -= len(line) + len(sep)
    return sep.join(out)


def lines(texts):
    """Several lines for a plain label, each left-justified (`\\l` ends each line)."""
    texts = list(texts)
    return _joined(texts, plain, '\\l') + ('\\l' if texts else '')


def tooltip(texts):
    """Several lines for a tooltip (an SVG <title>): joined with newlines.

    Graphviz substitutes escapes in a tooltip twice (measured on 2.43 and 16.1:
    `\\\\N` comes out as the node's name), so its backslashes are doubled once more.
    """
    texts = list(map(str, texts))
    if texts and _PLAIN_SPECIAL.search(''.join(texts)) is None:
        # nothing to escape (a heat-map row's 65 numbers: 512 such tooltips a view): when no line
        # can reach its budget below, each line is its own text, as _joined would write it
        total, longest = sum(map(len, texts)) + len(TOOLTIP_SEP) * len(texts), max(map(len, texts))
        if total <= MAX_QUOTED - 2 * len(TOOLTIP_SEP) - 2 and 2 * longest + 2 <= min(MAX_TEXT * 4, MAX_QUOTED - total):
            return TOOLTIP_SEP.join(texts)
    return _joined(texts, lambda t, budget: plain(t, budget // 2).replace('\\', '\\\\'), TOOLTIP_SEP)

