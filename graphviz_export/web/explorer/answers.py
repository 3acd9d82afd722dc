"""What the explorer's API answers, whichever door asked (the HTTP server, the notebook widget):
an Answer (status, bytes, type, headers), and ApiError, the one-line JSON error of a request.
"""

import json
from typing import NamedTuple

from microgpt.files import json_safe

JSON_TYPE = 'application/json; charset=utf-8'


class ApiError(Exception):
    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status = status
        self.body = {'error': ' '.join(str(message).split()), **extra}


def bad(e):
    return ApiError(400, str(e))


class Answer(NamedTuple):
    """An endpoint's answer as bytes, whichever door asked (the HTTP server, the notebook widget)."""
    status: int
    body: bytes
    type: str
    headers: dict


def json_answer(status, obj, headers=None):
    """`obj` as strict JSON (NaN and infinity as text: files.json_safe), the one encoder of every
    answer of the API, whichever door asked (the HTTP server's own errors too). Written as it is
    first, json_safe's copy made only when a NaN or infinity makes that fail: the same text (it
    changes nothing else), without a walk over every number of a big answer."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(json_safe(obj), ensure_ascii=False, allow_nan=False)
    return Answer(status, text.encode('utf-8'), JSON_TYPE, headers or {})
