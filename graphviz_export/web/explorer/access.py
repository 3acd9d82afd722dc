"""Who may ask the explorer what: its own page only, and only for checkpoints the user offered.

The explorer records documents, opens checkpoints and trains when its API is asked,
so an API request is served only when it comes from the explorer's own page:

- it carries this server's token: the `X-Explorer-Token` header the page's fetch
  sets, or `api_token=` in the query (the export links the page follows itself;
  curl); not `token=`, which is a view's position.
  The token (secrets.token_urlsafe, 192 bits) is made at start and printed in the
  page's URL fragment, `http://127.0.0.1:PORT/#token=...`, as Jupyter prints its
  token: a fragment never reaches a server or a Referer, another page cannot read it,
  and the page keeps it in its URL, so a reload, back/forward and a copied link work
  for as long as the same server runs. Another user of the machine can connect to
  127.0.0.1 but does not know it.
- a browser that says where the request comes from must say `Sec-Fetch-Site:
  same-origin` and an `Origin` of this server: a page on another port of 127.0.0.1
  is same-site, not same-origin, and is refused like any other site.

Paths: the page names a checkpoint (`ckpt=`, `cmp=ckpt:`), never a path the server
opens as such. The offered ones are the files given on the command line and the
files directly inside folders given there; the page may name one by its file name
or by the path it was offered as, and the server substitutes that path. Anything
else is refused before the file system is touched, with the same words whether
the path exists or not: no existence oracle.
"""

import hmac
import os
import secrets
from urllib.parse import quote, unquote_plus

from .api import ApiError

TOKEN_HEADER = 'X-Explorer-Token'
TOKEN_FIELD = 'api_token'       # in a query string


def new_token():
    return secrets.token_urlsafe(24)


def api_refusal(headers, query, *, token, origins):
    """None when an API request may be served, else (status, one-line message).

    headers: the request's headers; query: its raw query string; origins: the
    'http://host:port' forms this server answers as."""
    site = headers.get('Sec-Fetch-Site')
    if site is not None and site != 'same-origin':
        return 403, (f"the explorer's API answers only its own page; this request comes from another "
                     f"page or site (Sec-Fetch-Site: {site[:40]})")
    origin = headers.get('Origin')
    if origin is not None and origin.lower() not in origins:
        return 403, f"the explorer's API answers only its own page; Origin {origin[:100]!r} is not {origins[0]}"
    given = headers.get(TOKEN_HEADER)
    if given is None:
        given = next((unquote_plus(v) for k, _, v in (p.partition('=') for p in query.split('&'))
                      if unquote_plus(k) == TOKEN_FIELD), None)
    if given is None:
        return 403, ("this request has no explorer token; open the URL `microgpt-graph explore` printed "
                     "(it ends in #token=...)")
    if not hmac.compare_digest(given.encode('utf-8', 'replace'), token.encode('ascii')):
        return 403, ("this request's explorer token is not this server's (a page of an earlier server?); "
                     "open the URL `microgpt-graph explore` printed")
    return None


class Checkpoints:
    """The checkpoints the page may choose among: files and folders named on the command line."""

    def __init__(self, offered=()):
        self.files = {}          # what the page may send -> the path opened (as the user gave it)
        self.folders = []
        for path in offered:
            if path is None:
                continue
            path = os.fspath(path)
            if os.path.isdir(path):
                self.folders.append(path)
            else:
                for name in (path, os.path.basename(path), os.path.abspath(path)):
                    self.files.setdefault(name, path)

    def describe(self):
        names = sorted({os.path.basename(p) for p in self.files.values()})
        names += [os.path.join(f, '*') for f in self.folders]
        return ', '.join(names) if names else 'none (give --checkpoint FILE when starting explore)'

    def resolve(self, field, value):
        """The path to open for the checkpoint the page named; ApiError(400) if it is not offered."""
        if value in self.files:
            return self.files[value]
        for folder in self.folders:
            name = value[len(folder) + 1:] if value.startswith(folder + os.sep) else value
            if name and os.sep not in name and '/' not in name and '\0' not in name and name[0] != '.':
                path = os.path.join(folder, name)
                if os.path.isfile(path):
                    return path
        raise ApiError(400, f"{field} {value[:100]!r} is not a checkpoint this server offers; it offers: "
                            f"{self.describe()}")

    def rewrite(self, query, drop=False):
        """The query with the api_token removed and every checkpoint named replaced by the path it offers.

        Other fields pass through byte for byte (the API parses and validates them). A checkpoint
        not offered is ApiError(400), or with `drop` left out (the query whose nearest view a
        refused link falls back to: a file not offered is never opened, not even to try)."""
        out = []
        for part in query.split('&') if query else ():
            key, eq, value = part.partition('=')
            name = unquote_plus(key)
            if name == TOKEN_FIELD:
                continue
            try:
                if name == 'ckpt' and value:
                    part = f"{key}={quote(self.resolve('ckpt', unquote_plus(value)), safe='/')}"
                elif name == 'cmp':
                    kind, colon, rest = unquote_plus(value).partition(':')
                    if kind == 'ckpt' and colon and rest:
                        part = f"{key}={quote('ckpt:' + self.resolve('cmp checkpoint', rest), safe='/:')}"
            except ApiError:
                if not drop:
                    raise
                continue
            out.append(part)
        return '&'.join(out)
