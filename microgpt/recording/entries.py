"""Writing one entry of the user step cache (stepcache): the step's file, then the folder trimmed. Its own
module so that a step recorded in a process of its own (apart.py) is stored there by the same code.

    store(path, trace, progress)    # its use records built if missing, the file written atomically; path
"""

SUFFIX = '.mgtrace'
OLD_CHAINS = '.chains'  # where entries kept their chains before the binary file held them
MAX_ENTRIES = 32        # a few MB each at the default size: ~100 MB at most
STORING, USE_RECORDS = 'storing the recorded step', 'building the use records'    # the store's phases


def store(path, trace, progress=None):
    """Write the entry (with its chains, when the step has them) atomically, then trim the folder to
    the MAX_ENTRIES most recently used; `path` returned. OSError when it cannot be written. Its use
    records (recording.uses: most of the time at 5 M nodes) are built first, so the trace in memory
    has them too from then on; `progress(phase, done, total)`: 'building the use records' (per
    matrix), then STORING 0 and 1 of 1."""
    tell = progress or (lambda phase, done, total: None)
    trace.indexes(lambda done, total: tell(USE_RECORDS, done, total))
    tell(STORING, 0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    trace.to_binary(path)
    entries = sorted(path.parent.glob(f'*{SUFFIX}'), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    for old in entries[MAX_ENTRIES:]:
        old.unlink(missing_ok=True)
        old.with_suffix(OLD_CHAINS).unlink(missing_ok=True)
    tell(STORING, 1, 1)
    return path
