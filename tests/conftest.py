"""What every test shares: the names data, the native `dot`, the models, and the rules that
let the suite run in parallel (`pytest -n auto`, pytest-xdist) and leave nothing behind:

- every test that writes uses its own tmp_path (never the checkout: the suite's own files,
  pytest's cache, Hypothesis's examples, screenshots, go to the git-ignored out/);
- servers bind 127.0.0.1 on port 0 (a free port), never a fixed one, and are stopped in a
  `finally` (tests/explorer_helpers.py: running_server, stopped_in_the_end); a process a test
  starts gets the signals a terminal gives (explorer_helpers.default_signals), so the SIGINT or
  SIGHUP that stops it reaches it even when pytest runs under `nohup ... &`;
- the user cache folder ($MICROGPT_CACHE: the compiled WebAssembly Graphviz, the downloaded
  names) is one fresh folder per run, shared by the run's workers (every write to it is
  atomic), removed at the end: a test neither reads what the user's cache holds nor adds to it.
"""

import gc
import os
import random
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

from microgpt.cache import CACHE_ENV
from microgpt.data import Tokenizer, data_path_from_env, names_cache_path
from microgpt.model import GPTConfig, init_params

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'out'                  # git-ignored: what the suite keeps (screenshots, caches)
SUITE_MINUTES = 9       # measured: the whole suite in CI (.ci/run, -n auto, fresh clone), 2 cores, load 2-5: 9 min 20 s (README)

AZ = [chr(c) for c in range(ord('a'), ord('z') + 1)]

# Where `microgpt-graph train` keeps the names it downloaded: looked up now, before
# pytest_configure points $MICROGPT_CACHE at the run's own folder.
USER_NAMES_CACHE = names_cache_path()

# Hypothesis keeps its examples and its cache of the constants in our sources under out/ (git-ignored),
# not in a .hypothesis/ folder of the checkout (issue 28: the suite writes nothing into the checkout)
set_hypothesis_home_dir(OUT / '.hypothesis')
settings.register_profile('microgpt-graph', database=DirectoryBasedExampleDatabase(str(OUT / '.hypothesis')))
settings.load_profile('microgpt-graph')


def names_path():
    """The reference names data: $MICROGPT_DATA (alias $MICROGPT_NAMES), else
    ../shared/data/names.txt, else the copy `microgpt-graph train` downloaded
    into the user cache; None when there is none (the tests never download)."""
    named = data_path_from_env()
    candidates = [named[0]] if named else [ROOT.parent / 'shared' / 'data' / 'names.txt', USER_NAMES_CACHE]
    return next((p for p in candidates if p.is_file()), None)


needs_names = pytest.mark.skipif(
    names_path() is None,
    reason="names data not found: set MICROGPT_DATA=/path/to/names.txt, or run `microgpt-graph train` once "
           "(it downloads makemore's names.txt into the user cache)")


# -- the native renderer: decided once, when the tests are collected -------------------------
DOT = shutil.which('dot')   # the one lookup; every native-render test runs with exactly this program
IN_CI = os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')
NO_DOT = 'Graphviz `dot` is not on PATH'
native = pytest.mark.native  # a test that renders with `dot`; or parametrize it with renderer='native'


def pytest_addoption(parser, pluginmanager):
    """pyproject's `cache_dir` keeps pytest's cache in the git-ignored out/ (nothing written into the
    checkout). The option belongs to the cacheprovider plugin: under `-p no:cacheprovider` nobody
    declares it and pytest warns "Unknown config option: cache_dir". Declared here then, for a run
    that keeps no cache at all, so the setting stays where it works and the warning goes."""
    if pluginmanager.is_blocked('cacheprovider'):
        parser.addini('cache_dir', help='unused: the cacheprovider plugin is disabled (-p no:cacheprovider)')


def pytest_configure(config):
    config.addinivalue_line('markers', 'native: needs the Graphviz `dot` program (skipped without it, '
                                       'failed without it when CI is set: .ci/run installs it)')
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started in the background (`nohup pytest ... &`): Ctrl-C is ignored, and every process
        # the tests start would inherit that, their servers deaf to the SIGINT that stops them
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if not hasattr(config, 'workerinput'):      # the main process (xdist's workers inherit its environment)
        config.run_cache = tempfile.mkdtemp(prefix='microgpt-graph-tests-cache-')
        _seed_wasm_cache(Path(config.run_cache))
        os.environ[CACHE_ENV] = config.run_cache
        config.run_bytecode = _shared_bytecode_cache()


def pytest_unconfigure(config):
    for folder in (getattr(config, 'run_cache', None), getattr(config, 'run_bytecode', None)):
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def _shared_bytecode_cache():
    """One bytecode folder for the run (PYTHONPYCACHEPREFIX), shared by the workers and every
    Python process the tests start (the CLI run as a user runs it, servers, examples): each
    module is compiled once per run instead of once per process. In a fresh clone, under
    PYTHONDONTWRITEBYTECODE (set where the suite runs here and in CI), no process could keep
    what it compiled, and each child compiled the project again (`render`: 0.42 s of CPU, 0.26 s
    with the shared folder warm).
    Written outside the checkout and removed at the end: nothing of it lands in the clone, which
    is what PYTHONDONTWRITEBYTECODE kept clean. A test that must see Python as a user's shell
    runs it drops the variable (test_gradcheck_script: a stale .pyc beside the user's script)."""
    folder = tempfile.mkdtemp(prefix='microgpt-graph-tests-bytecode-')
    os.environ['PYTHONPYCACHEPREFIX'] = folder
    os.environ.pop('PYTHONDONTWRITEBYTECODE', None)
    return folder


def _seed_wasm_cache(run_cache):
    """The user's compiled WebAssembly Graphviz, copied in when there is one (a cache of a pure
    function of graphviz.wasm and wasmtime: it spares each run its ~2 s compile per worker; a
    stale or broken copy is recompiled, as the library does with its own cache)."""
    from microgpt.cache import user_cache_dir
    for module in (user_cache_dir() / 'wasm').glob('*.cwasm'):
        (run_cache / 'wasm').mkdir(exist_ok=True)
        shutil.copyfile(module, run_cache / 'wasm' / module.name)


def pytest_report_header(config):
    return (f"microgpt-graph: the whole suite takes about {SUITE_MINUTES} minutes with `-n auto` on a 2-core machine "
            f"(Graphviz dot, Chromium and the names data present); -m 'not slow' leaves out the 1,000-step "
            f"reproduction")


def _wants_native(item):
    callspec = getattr(item, 'callspec', None)
    return item.get_closest_marker('native') is not None or (
        callspec is not None and callspec.params.get('renderer') == 'native')


# The modules whose tests run longest (measured: `pytest -n 2 --durations=60`), run first so that
# with pytest-xdist (`--dist worksteal`, pyproject's addopts) no worker starts a minute-long test
# while the other has nothing left. Whole modules, in order: their module fixtures stay shared.
# test_model.py holds the 1,000-step reproduction (-m slow), the longest test by far (1,166 s at load ~20):
# started last, the whole run would wait for it on one worker.
LONG_FIRST = ('tests/test_model.py', 'tests/test_examples.py', 'tests/test_play.py', 'tests/test_lecture_browser.py',
              'tests/test_explorer_long_work.py', 'tests/test_explorer_play.py', 'tests/test_cli_values.py',
              'tests/test_explorer_browser.py', 'tests/test_compare_panel.py', 'tests/test_cli.py')


def _long_first(item):
    path = item.nodeid.split('::', 1)[0]
    return LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)


def pytest_collection_finish(session):
    """Freeze (gc.freeze) what is alive once the tests are collected: the imported modules and
    pytest's items (~420,000 objects in a worker of the whole suite) live to the end of the run,
    yet every full pass of the cyclic collector walked them all again, and the tests that build
    graphs and traces set off many such passes: in one process running six of those modules
    (test_cli_values, test_call_order, test_why_madeby, ...) the collector took 7.3 of their 24 s
    of CPU, frozen 1.5. Garbage is collected first, so nothing that could be freed is kept; the
    tests' own objects are collected as before."""
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    """The longest modules first (LONG_FIRST; a stable sort, the same on every worker). Skip the
    native-render tests here, at collection, when `dot` was not found; with CI set they are
    kept, and fail (see _native_dot_pinned) instead of silently skipping."""
    items.sort(key=_long_first)
    if DOT is not None or IN_CI:
        return
    for item in items:
        if _wants_native(item):
            item.add_marker(pytest.mark.skip(reason=f'{NO_DOT} (looked up once, at collection)'))


@pytest.fixture(autouse=True)
def _native_dot_pinned(request, monkeypatch):
    """A native-render test runs with the `dot` found at collection, first on PATH, so
    the library's own lookup finds that same program (no second decision mid-run)."""
    if not _wants_native(request.node):
        return
    if DOT is None:
        pytest.fail(f'{NO_DOT}, and CI is set: .ci/run installs Graphviz, so native-render tests must run')
    monkeypatch.setenv('PATH', os.path.dirname(DOT) + os.pathsep + os.environ.get('PATH', ''))


@pytest.fixture
def az_model():
    """(params, config, tokenizer): the default config over a-z, seeded Random(42)."""
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    return init_params(config, random.Random(42)), config, tok


@pytest.fixture(scope='session')
def recorded_christopher():
    """A recorded step of 'christopher' (12 positions) on the a-z model; shared, read-only."""
    from microgpt.recording.step import record_step
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    params = init_params(config, random.Random(42))
    return record_step(params, config, tok, 'christopher')


@pytest.fixture(scope='module')
def tiny():
    """(params, config, tokenizer) of tests/tiny_model.py: n_embd 8, 2 heads, block 8;
    one per test module (tests that change parameters make their own)."""
    from tests.tiny_model import tiny_model
    return tiny_model()


@pytest.fixture(scope='session')
def _chromium():
    """One headless Debian chromium per pytest process (each xdist worker), driven by Playwright
    (never `playwright install`), started when a test first asks for it: a launch (the driver and
    the browser) costs ~1.5 s and ~1 CPU-s, which 20-odd modules used to pay each. Returns a
    function giving the running browser, launched again if a test brought it down.

    While it runs, Playwright's event loop counts as running in this thread: no test may start a
    second `sync_playwright()` (take `browser`) or call `asyncio.run()` in the main thread
    (nbclient, in test_notebook, runs its own loop in a thread when one is running)."""
    from tests.test_explorer_browser import ARGS, CHROMIUM, _missing, _sync_playwright
    if _missing:    # (with CI set, importing test_explorer_browser raised instead: a browser test may not skip)
        pytest.skip(f"browser tests need {' and '.join(_missing)}")
    with _sync_playwright() as p:
        launched = []

        def running():
            if not launched or not launched[-1].is_connected():
                # evil.test: the other site of test_explorer_attacks_browser (no other test names it)
                launched.append(p.chromium.launch(executable_path=CHROMIUM,
                                                  args=ARGS + ['--host-resolver-rules=MAP evil.test 127.0.0.1']))
            return launched[-1]
        try:
            yield running
        finally:
            for b in launched:
                if b.is_connected():
                    b.close()


@pytest.fixture
def browser(_chromium):
    """The worker's chromium (a browser test module skips, or with CI set fails, on its own when
    it is missing). Tests share nothing through it: each opens its own context (cookies, storage,
    cache, permissions are a context's), and whatever context a test left open is closed after it."""
    b = _chromium()
    yield b
    for ctx in b.contexts:
        ctx.close()
