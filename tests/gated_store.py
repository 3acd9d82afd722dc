"""`explore` (any command) whose use-record build, the first part of a step's store into the user cache
(stepcache.store), waits after its first matrix until the file $GATE exists: a test then asks what it
likes while the store runs, for as long as it likes (test_background_store.py). Nothing else changes:
the real build runs, its progress told as it is."""

import os
import sys
import time
from pathlib import Path

import microgpt.recording.uses as uses

real = uses.use_records
gate = Path(os.environ['GATE'])


def gated(trace, progress=None):
    def say(done, total):
        if progress is not None:
            progress(done, total)
        while done == 1 and not gate.exists():
            time.sleep(0.05)
    return real(trace, say)


uses.use_records = gated            # with_uses looks it up when it runs

if __name__ == '__main__':
    from microgpt_graph.cli import main
    sys.argv[0] = 'microgpt-graph'
    main()
