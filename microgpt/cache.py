"""Where this program keeps what it can rebuild: the downloaded names list and
the compiled WebAssembly Graphviz.

$MICROGPT_CACHE when set; else the platform's user cache folder:
$XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches on macOS,
%LOCALAPPDATA% on Windows; each with a `microgpt-graph` folder inside.
Nothing here creates the folder: callers do, and cope when they cannot.
"""

import os
import sys
from pathlib import Path

CACHE_ENV = 'MICROGPT_CACHE'


def user_cache_dir() -> Path:
    """The folder for this program's cached files (not created here)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    if sys.platform == 'win32':
        base = os.environ.get('LOCALAPPDATA') or Path.home() / 'AppData' / 'Local'
    elif sys.platform == 'darwin':
        base = Path.home() / 'Library' / 'Caches'
    else:
        base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'microgpt-graph'
