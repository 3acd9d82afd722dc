"""A real JupyterLab, or classic Notebook 7, for tests and benchmarks (both in the test extra).
Started on 127.0.0.1 (a free port, a token, its own config and data folders) in a new session, and
killed, with all it started, in the end. Notebook 7 is built from JupyterLab's components: its
notebook page has the same cells, prompts, toolbar (its kernel's name, its execution indicator)
and dialogs, so one driver serves both; only the command and the notebook's address differ."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TOKEN = 'microgpt-graph-test'
KERNEL = 'Python 3 (ipykernel)'   # the display name of this Python's kernel spec
# front end -> (its `jupyter` subcommand and own options, a notebook's address)
FRONT_ENDS = {
    'jupyterlab': (['lab', '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'],
                   '/lab/tree/{name}'),
    'notebook': (['notebook'], '/notebooks/{name}'),
}


def notebook_file(path, cells):
    """Write a notebook of code cells (source strings) to path."""
    nb = {'cells': [{'cell_type': 'code', 'metadata': {}, 'execution_count': None, 'outputs': [], 'id': f'c{k}',
                     'source': src} for k, src in enumerate(cells)],
          'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}},
          'nbformat': 4, 'nbformat_minor': 5}
    Path(path).write_text(json.dumps(nb))


@contextlib.contextmanager
def running_jupyterlab(root, front='jupyterlab'):
    """Yield the base URL of a JupyterLab (or `front`: 'notebook', classic Notebook 7) serving folder
    `root` (its kernels: this Python's)."""
    command = FRONT_ENDS[front][0]
    root = Path(root)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / '.cfg'), JUPYTER_DATA_DIR=str(root / '.data'),
               JUPYTER_RUNTIME_DIR=str(root / '.rt'))
    bindir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [str(bindir / 'jupyter'), command[0], '--no-browser', '--allow-root', f'--port={port}', '--ServerApp.ip=127.0.0.1',
         f'--IdentityProvider.token={TOKEN}', f'--ServerApp.root_dir={root}', *command[1:]],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        end = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter {command[0]} stopped: {proc.stderr.read().decode()[-600:]}")
            try:
                socket.create_connection(('127.0.0.1', port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError(f'jupyter {command[0]} did not listen within 60 s') from None
                time.sleep(0.2)
        yield f'http://127.0.0.1:{port}'
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        proc.stderr.close()


def open_notebook(page, base, name, front='jupyterlab'):
    """Open notebook `name` in JupyterLab (or `front`) and wait for its Python kernel to be idle. A
    page that opens the notebook before it has fetched the kernel specs (a loaded machine) asks
    "Select Kernel" with "No Kernel" as the default: then Python 3 is chosen, as a user would."""
    page.goto(f'{base}{FRONT_ENDS[front][1].format(name=name)}?token={TOKEN}')
    page.wait_for_selector('.jp-Notebook .jp-Cell .cm-content', timeout=60000)
    ready = page.locator('.jp-Toolbar-kernelName', has_text=KERNEL)
    end = time.monotonic() + 90
    while not ready.count():
        dialog = page.locator('.jp-Dialog', has_text='Select Kernel')
        if dialog.count():
            dialog.locator('select').select_option(label=KERNEL)
            dialog.locator('button.jp-mod-accept').click()
        assert time.monotonic() < end, 'the notebook got no Python kernel within 90 s'
        time.sleep(0.3)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60000)


PROMPT = ('([k, done]) => { const c = document.querySelectorAll(".jp-Notebook .jp-Cell")[k];'
          ' const t = c && c.querySelector(".jp-InputPrompt").textContent;'
          ' return done ? /\\[\\d+\\]/.test(t) : !/\\[ \\]/.test(t); }')


def run_cell(page, k):
    """Run cell k (Shift+Enter in it) and wait until it has run (its prompt shows a count). A kernel
    that has just said idle may still drop the first request: the key is pressed again then."""
    cell = page.locator('.jp-Notebook .jp-Cell').nth(k)
    for _ in range(5):
        dialog = page.locator('.jp-Dialog')
        if dialog.count():
            raise AssertionError('JupyterLab shows a dialog: ' + ' | '.join(dialog.first.inner_text().split('\n')))
        cell.locator('.cm-content').click()
        page.keyboard.press('Shift+Enter')
        try:
            page.wait_for_function(PROMPT, arg=[k, False], timeout=3000)      # queued or running
            break
        except Exception:  # noqa: BLE001 -- Playwright's TimeoutError: not taken yet, press again
            continue
    page.wait_for_function(PROMPT, arg=[k, True], timeout=120000)
    return cell
