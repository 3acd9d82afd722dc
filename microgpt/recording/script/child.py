"""The child process's entry point: install the recorder, run the user's script.

    python child.py WATCH_FD OUT_DIR STEP TAGS_JSON PARAMS_JSON SCRIPT [ARGS...]

Run by path (never imported by the parent). It imports what it needs from this
package first and forks (lifetime.split): this process stays behind as the
supervisor that watches the recorder through the pipe WATCH_FD and takes the
script and everything it starts down with it; the forked process makes the process look like `python SCRIPT ARGS...`:
sys.argv, sys.path[0] = the script's folder, and this package removed from
sys.modules and sys.path, so a user's own `microgpt.py` imports as theirs. The
script runs with runpy.run_path(run_name='__main__'), so `if __name__ ==
'__main__':` blocks run. The outcome goes to OUT_DIR/status.json:

    {"status": "captured"}                   trace columns in OUT_DIR/trace.bin
    {"status": "raised", "traceback": ...}   the user's traceback, our frames removed
    {"status": "not-found", "why": ...}      no class, or no Nth backward()
    {"status": "bad-input", "why": ...}      --params names nothing usable
    {"status": "error", "why": ...}          the graph could not be written

After a capture the process ends at once (os._exit), so the script stops there.
"""

import json
import os
import runpy
import sys
import traceback

# run by path: make this package importable before anything else of it is imported
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(_HERE)))
if __name__ == '__main__':
    sys.path[0] = _ROOT

from microgpt.recording.script.build import build_columns  # noqa: E402
from microgpt.recording.script.lifetime import split  # noqa: E402
from microgpt.recording.script.params import BadParams  # noqa: E402
from microgpt.recording.script.recorder import Recorder  # noqa: E402
from microgpt.recording.script.transfer import write_columns  # noqa: E402


def main():
    watch, out_dir, step, tags_json, params_json, script, *args = sys.argv[1:]
    split(int(watch), out_dir)      # from here on: the script's process (the supervisor never returns)
    params_name = json.loads(params_json)
    here, root = _HERE, _ROOT
    ours = {name for name in sys.modules if name == 'microgpt' or name.startswith('microgpt.')}
    package = os.path.join(root, 'microgpt')
    script = os.path.abspath(script)
    status_path = os.path.join(out_dir, 'status.json')

    def status(**fields):
        with open(status_path, 'w', encoding='utf-8') as f:
            json.dump(fields, f)

    def capture(rec, root_value):
        rec.uninstall()
        try:
            namespace = sys.modules['__main__'].__dict__
            cols = build_columns(rec, root_value, namespace, params_name)
            write_columns(os.path.join(out_dir, 'trace.bin'), cols)
            status(status='captured')
        except BadParams as e:
            status(status='bad-input', why=str(e))
        except Exception as e:  # our failure (or an unreadable graph): say it, do not pretend
            status(status='error', why=f"{type(e).__name__}: {e}",
                   traceback=''.join(traceback.format_exception(e)))
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(0)

    rec = Recorder(script, int(step), json.loads(tags_json), capture, exclude=(package,))
    for name in ours:   # the user's `import microgpt` must find theirs
        sys.modules.pop(name, None)
    sys.path[0] = os.path.dirname(script)
    sys.argv = [script, *args]
    # The script's modules leave no bytecode in its folder: a recording changes nothing there, and
    # leaves no .pyc for the next one to take for its source. Python checks a .pyc by the source's
    # size and mtime in whole seconds, so an engine.py rewritten within the second at the same
    # size (a bent -1.0 made -2.0) ran the old code under the new lines the trace names.
    sys.dont_write_bytecode = True
    rec.install()
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as e:
        rec.uninstall()
        code = e.code if isinstance(e.code, int) or e.code is None else 1
        status(status='not-found', why=rec.diagnosis(), exit_code=code or 0)
        return
    except BaseException as e:
        rec.uninstall()
        status(status='raised', traceback=user_traceback(e, script, here), why=rec.diagnosis())
        return
    rec.uninstall()
    status(status='not-found', why=rec.diagnosis())


def user_traceback(e, script, ours):
    """The traceback as Python would print it for `python SCRIPT`, without our frames
    (this bootstrap, runpy, the recorder's wrappers)."""
    te = traceback.TracebackException.from_exception(e)
    runpy_files = ('<frozen runpy>', os.path.join(os.path.dirname(os.__file__), 'runpy.py'))

    def trim(t):
        t.stack = traceback.StackSummary.from_list(
            [f for f in t.stack if not f.filename.startswith(ours) and f.filename not in runpy_files])
        for sub in (t.__cause__, t.__context__):
            if sub is not None:
                trim(sub)

    trim(te)
    return ''.join(te.format())


if __name__ == '__main__':
    main()
