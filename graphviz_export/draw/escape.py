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
"""

import re

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


def plain(text):
    """`text` for a plain label, tooltip, cluster or graph label: shown as is."""
    return ''.join(map(_char, str(text)))


_RECORD = {'{': '\\{', '}': '\\}', '|': '\\|', ' ': '\\ '}


def record_field(text):
    """`text` for one field of a record label: also keeps `{ } |` and spaces literal.
    (A record drops a field's leading spaces, escaped or not: those become no-break spaces.)"""
    text = str(text)
    lead = len(text) - len(text.lstrip(' '))
    return '\u00a0' * lead + ''.join(_RECORD.get(ch) or _char(ch) for ch in text[lead:])


def lines(texts):
    """Several lines for a plain label, each left-justified (`\\l` ends each line)."""
    return ''.join(plain(t) + '\\l' for t in texts)


def tooltip(texts):
    """Several lines for a tooltip (an SVG <title>): joined with newlines.

    Graphviz substitutes escapes in a tooltip twice (measured on 2.43 and 16.1:
    `\\\\N` comes out as the node's name), so its backslashes are doubled once more.
    """
    return '&#10;'.join(plain(t).replace('\\', '\\\\') for t in texts)
