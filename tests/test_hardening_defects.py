"""One test per defect of issue 10 ("nothing lost, nothing replaced, no traceback"),
each with the issue's reproduction (FIFOs, symlinks and devices in tmp_path or
/dev; a full disk is os.replace raising ENOSPC)."""

import errno
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import cli
import graphviz_export.render as render_mod
import microgpt.files as files
import microgpt.train
from graphviz_export import build_view, render_view
from microgpt.checkpoint import (
    MAX_WEIGHT,
    CheckpointError,
    UnsavableModel,
    load_checkpoint,
    save_checkpoint,
)
from microgpt.checks.params import check_params
from microgpt.data import DataError, Tokenizer, read_docs
from microgpt.errors import InputError, WriteError
from microgpt.files import OutputPathError, write_atomic
from microgpt.model import ConfigError, GPTConfig, init_params
from microgpt.recording import Trace, TraceFormatError, record_step
from microgpt.recording.budget import BudgetError, check_budget, estimate_nodes
from microgpt_graph import plumbing
from tests.tiny_model import AZ, tiny_model

DOCS = 'emma\nanna\nbob\n'
TINY = ['--n-embd', '8', '--n-head', '2', '--block-size', '8']


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'docs.txt').write_text(DOCS)
    return CliRunner()


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.json'
    params, config, tok = tiny_model()
    save_checkpoint(path, params, config, tok)
    return str(path)


@pytest.fixture(scope='module')
def tiny_trace_dict():
    params, config, tok = tiny_model()
    return json.loads(record_step(params, config, tok, 'ab').to_json())


def error_line(result, code):
    """The one `Error:` line of a run that exited with `code`, no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [ln for ln in result.output.splitlines() if ln.startswith('Error: ')]
    assert len(errors) == 1, result.output
    assert 'Traceback' not in result.output
    return errors[0]


def no_temp_files(folder):
    return [n for n in os.listdir(folder) if n.endswith('.tmp')] == []


def enospc_for(target):
    """An os.replace that fails with ENOSPC when it writes `target` (a full disk)."""
    real = os.replace

    def replace(src, dst, *a, **k):
        if os.path.basename(os.fspath(dst)) == os.path.basename(os.fspath(target)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *a, **k)
    return replace


# -- High: the rename replaced devices, FIFOs and symlinks ---------------------------------------
@pytest.mark.skipif(not os.path.exists('/dev/full'), reason='no /dev/full')
def test_train_out_dev_full_is_refused_and_the_device_stays(runner):
    line = error_line(runner.invoke(cli.main, ['train', 'docs.txt', '--steps', '1', *TINY, '--out', '/dev/full']), 2)
    assert "refusing to write /dev/full: it is a character device" in line
    assert stat.S_ISCHR(os.stat('/dev/full').st_mode)


def test_dev_null_as_output_is_refused(runner):
    line = error_line(runner.invoke(cli.main, ['export', '--doc', 'ab', '-o', '/dev/null']), 2)
    assert 'it is a character device; outputs go to a regular file or a new path' in line
    assert stat.S_ISCHR(os.stat('/dev/null').st_mode)


def test_fifo_output_is_refused(runner, tmp_path):
    os.mkfifo('f.svg')
    line = error_line(runner.invoke(cli.main, ['render', '--doc', 'ab', '-o', 'f.svg']), 2)
    assert line.endswith("refusing to write f.svg: it is a FIFO (named pipe); outputs go to a regular file or a new path")
    assert stat.S_ISFIFO(os.lstat(tmp_path / 'f.svg').st_mode)
    with pytest.raises(OutputPathError, match='FIFO'):
        write_atomic(tmp_path / 'f.svg', b'x')


def test_socket_and_folder_outputs_are_refused(tmp_path):
    import socket
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / 's.svg'))
        with pytest.raises(OutputPathError, match='it is a socket'):
            write_atomic(tmp_path / 's.svg', b'x')
    (tmp_path / 'd.svg').mkdir()
    with pytest.raises(OutputPathError, match='it is a folder'):
        files.check_output(tmp_path / 'd.svg')


def test_symlink_output_is_followed_and_stays_a_link(runner, tmp_path):
    (tmp_path / 't.svg').write_text('old')
    os.symlink('t.svg', 'l.svg')
    r = runner.invoke(cli.main, ['render', '--doc', 'ab', '--checkpoint', make_ckpt(tmp_path), '-o', 'l.svg'])
    assert r.exit_code == 0, r.output
    assert os.path.islink(tmp_path / 'l.svg') and os.readlink(tmp_path / 'l.svg') == 't.svg'
    ET.fromstring((tmp_path / 't.svg').read_bytes())      # the target now holds the picture
    os.symlink('/dev/null', 'n.svg')                      # a link to a device: refused like the device
    line = error_line(runner.invoke(cli.main, ['render', '--doc', 'ab', '-o', 'n.svg']), 2)
    assert 'n.svg (-> /dev/null): it is a character device' in line
    os.symlink('new.svg', 'dangling.svg')                 # a dangling link creates its target
    write_atomic(tmp_path / 'dangling.svg', 'x')
    assert (tmp_path / 'new.svg').read_text() == 'x' and os.path.islink(tmp_path / 'dangling.svg')


def make_ckpt(tmp_path):
    path = tmp_path / 'm.json'
    if not path.exists():
        params, config, tok = tiny_model()
        save_checkpoint(path, params, config, tok)
    return str(path)


# -- High: a failed checkpoint write after training lost the model -----------------------------
def test_train_out_on_a_full_disk_keeps_the_model(runner, tmp_path, monkeypatch):
    fallback = tmp_path / 'fallback'
    fallback.mkdir()
    monkeypatch.setattr('tempfile.tempdir', str(fallback))
    monkeypatch.setattr(os, 'replace', enospc_for('m.json'))
    r = runner.invoke(cli.main, ['train', 'docs.txt', '--steps', '2', *TINY, '--out', 'm.json'])
    line = error_line(r, 1)
    assert line.startswith('Error: cannot write m.json: No space left on device; the trained model was saved to ')
    (saved,) = fallback.glob('microgpt-checkpoint-*.json')
    assert line.endswith(f'saved to {saved} instead')
    params, config, tok, step = load_checkpoint(saved)
    assert step == 2 and config.n_embd == 8 and ''.join(tok.chars) == 'abemno'
    assert not (tmp_path / 'm.json').exists() and no_temp_files(tmp_path)


def test_train_out_folder_removed_mid_run_keeps_the_model(runner, tmp_path, monkeypatch):
    (tmp_path / 'gone').mkdir()
    monkeypatch.setattr('tempfile.tempdir', str(tmp_path))
    real_train_step = microgpt.train.train_step

    def train_step(run, k, n):
        shutil.rmtree(tmp_path / 'gone', ignore_errors=True)
        return real_train_step(run, k, n)
    monkeypatch.setattr(microgpt.train, 'train_step', train_step)     # train's loop is the library's
    line = error_line(runner.invoke(cli.main, ['train', 'docs.txt', '--steps', '1', *TINY, '--out', 'gone/m.json']), 1)
    assert 'cannot write gone/m.json: directory' in line and 'does not exist' in line
    (saved,) = tmp_path.glob('microgpt-checkpoint-*.json')
    assert load_checkpoint(saved)[3] == 1


def test_a_245_character_checkpoint_name_works(runner, tmp_path):
    name = 'm' * 240 + '.json'
    r = runner.invoke(cli.main, ['train', 'docs.txt', '--steps', '1', *TINY, '--out', name])
    assert r.exit_code == 0, r.output
    assert load_checkpoint(tmp_path / name)[1].n_embd == 8 and no_temp_files(tmp_path)


@pytest.mark.parametrize('length', [242, 250, 255])
def test_legal_long_names_work(tmp_path, length):
    name = 'é' * ((length - 4) // 2) + 'x' * ((length - 4) % 2) + '.svg'  # two-byte characters too
    assert len(name.encode()) == length
    write_atomic(tmp_path / name, b'<svg/>')
    assert (tmp_path / name).read_bytes() == b'<svg/>' and os.listdir(tmp_path) == [name]


def test_a_300_character_output_name_is_refused_before_work(runner):
    line = error_line(runner.invoke(cli.main, ['render', '-o', 'x' * 300 + '.svg']), 2)
    assert "is 304 bytes; the limit is 255 bytes" in line


def test_save_checkpoint_refuses_nan_weights_and_train_says_so(tmp_path):
    params, config, tok = tiny_model()
    params['wte'][3][4].data = math.nan
    with pytest.raises(UnsavableModel, match=r'weight wte\[3\]\[4\] is nan'):
        save_checkpoint(tmp_path / 'm.json', params, config, tok)
    assert not (tmp_path / 'm.json').exists()


def test_checkpoints_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        params, config, tok = tiny_model()
        save_checkpoint(tmp_path / 'm.json', params, config, tok)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'm.json').st_mode) == 0o644


# -- Medium: a failed render clobbered a sibling .dot --------------------------------------------
# --timeout covers building the view and its layout (issue 21): the layout gets what the build left,
# so these give the build time enough (60 s) and make the layout itself time out.
def slow_layout(given):
    def slow(source, fmt, *, timeout, **k):
        given.append(timeout)
        raise render_mod.LayoutTimeout(f'Graphviz layout exceeded {timeout:g} seconds')
    return slow


def test_a_timed_out_render_never_replaces_a_sibling_dot(runner, tmp_path, monkeypatch):
    (tmp_path / 'graph.dot').write_text('digraph mine{}\n')
    given = []
    monkeypatch.setattr(render_mod, 'render', slow_layout(given))
    line = error_line(runner.invoke(cli.main, ['render', '--doc', 'ab', '--timeout', '60', '-o', 'graph.svg']), 1)
    assert (tmp_path / 'graph.dot').read_text() == 'digraph mine{}\n'
    (saved,) = tmp_path.glob('graph-*.dot')
    (left,) = given
    assert 0 < left < 60      # what the build left of --timeout
    assert f'did not finish in {left:g} s; DOT source saved to {saved}' in line
    assert '(--timeout 60 s covers building the view and its layout' in line
    assert saved.read_text().startswith('digraph')
    assert not (tmp_path / 'graph.svg').exists()


def test_a_timeout_whose_dot_cannot_be_saved_exits_1_and_keeps_the_timeout(runner, tmp_path, monkeypatch):
    def no_room(*a, **k):
        raise WriteError('cannot write a file in .: No space left on device')
    given = []
    monkeypatch.setattr(render_mod, 'render', slow_layout(given))
    monkeypatch.setattr('graphviz_export.view.write_new', no_room)
    line = error_line(runner.invoke(cli.main, ['render', '--doc', 'ab', '--timeout', '60', '-o', 'g.svg']), 1)
    (left,) = given
    assert (f'did not finish in {left:g} s; the DOT source could not be saved either (cannot write a file in .: '
            'No space left on device)') in line
    assert not list(tmp_path.glob('*.svg'))


# -- Medium: characters XML cannot hold ----------------------------------------------------------
@pytest.mark.parametrize('bad', ['\ufffe', '\uffff', '\x01'])
def test_xml_invalid_characters_in_data_are_refused(tmp_path, bad):
    (tmp_path / 'd.txt').write_text(f'emma\nan{bad}na\n')
    with pytest.raises(DataError, match=rf'line 2, column 3: character U\+{ord(bad):04X} '):
        read_docs(tmp_path / 'd.txt')


@pytest.mark.parametrize('bad', ['\ufffe', '\uffff', '\ud800', '\x1b'])
def test_xml_invalid_characters_in_notes_and_labels_still_give_xml(bad):
    params, config, tok = tiny_model()
    trace = record_step(params, config, tok, 'ab')
    trace.meta['token_strs'] = [f'<{bad}>'] * len(trace.meta['token_strs'])
    trace.meta['doc'] = f'a{bad}b'
    view = build_view(trace, token=1, notes=[f'note {bad} here'])
    assert bad not in view.source
    root = ET.fromstring(render_view(view, 'svg'))
    text = ''.join(root.itertext())
    assert 'note \\u' in text or 'note \\x1b' in text


def test_a_lone_surrogate_in_meta_doc_is_a_format_error(runner, tiny_trace_dict):
    d = json.loads(json.dumps(tiny_trace_dict))
    d['meta']['doc'] = '\ud800'
    with open('t.json', 'w') as f:
        f.write(json.dumps(d))                       # ensure_ascii: the file holds "\ud800"
    line = error_line(runner.invoke(cli.main, ['render', '--trace', 't.json']), 2)
    assert 'meta.doc holds U+D800, which cannot be written as text' in line


# -- Medium: the --trace loader let wrong types through -----------------------------------------
def _set(path, value):
    def mutate(d):
        *head, last = path
        for k in head:
            d = d[k]
        if value is DELETE:
            del d[last]
        else:
            d[last] = value
    return mutate


DELETE = object()
TRACE_MUTATIONS = {
    'huge int data': (_set(['nodes', 5, 'data'], 10 ** 400), None),
    'rows as a string': (_set(['params', 0, 'rows'], '27'), "parameter 'wte': rows must be a whole number"),
    'list as a name': (_set(['params', 0, 'name'], ['wte']), 'params[0].name must be a new non-empty string'),
    'cols 0': (_set(['params', 0, 'cols'], 0), "parameter 'wte': cols must be a whole number 1.."),
    'string pos': (_set(['scopes', 3, 0], '3'), 'scope 3: pos must be a whole number'),
    'int role': (_set(['scopes', 3, 4], 7), 'scope 3: role must be a string or null'),
    'token_strs an int': (_set(['meta', 'token_strs'], 5), 'meta.token_strs must be a list'),
    'token_strs with null': (_set(['meta', 'token_strs'], [None, 'a', 'b', 'c']), 'meta.token_strs holds None'),
    'position_loss_ids out of range': (_set(['meta', 'position_loss_ids'], [10 ** 9]), 'meta.position_loss_ids holds'),
    'missing loss_id': (_set(['meta', 'loss_id'], DELETE), 'meta.loss_id is missing'),
    'empty node list': (_set(['nodes'], []), '"nodes" is empty'),
    'non-string doc': (_set(['meta', 'doc'], 5), 'meta.doc must be a string'),
    'child cycle': (_set(['nodes', 5, 'children'], [5]), None),
    'param node out of its matrix': (_set(['nodes', 0, 'scope'], 0), 'a param node whose scope role'),
}


@pytest.mark.parametrize('name', TRACE_MUTATIONS)
def test_trace_loader_refuses_wrong_types(runner, tiny_trace_dict, name):
    mutate, message = TRACE_MUTATIONS[name]
    d = json.loads(json.dumps(tiny_trace_dict))
    if name == 'child cycle':
        d['nodes'][5]['local_grads'] = [1.0]
    mutate(d)
    text = json.dumps(d)
    if name == 'huge int data':
        trace = Trace.from_json(text)                  # a huge integer reads as inf, as a broken value may be
        assert math.isinf(trace.data[5])
    else:
        with pytest.raises(TraceFormatError) as e:
            Trace.from_json(text)
        assert message is None or message in str(e.value), str(e.value)
    with open('t.json', 'w') as f:
        f.write(text)
    for args in (['render', '--trace', 't.json', '-o', 'x.svg'], ['inspect', '--trace', 't.json']):
        r = runner.invoke(cli.main, args)
        assert r.exit_code in (0, 2) and (r.exception is None or isinstance(r.exception, SystemExit)), r.output


# -- Medium: the checkpoint loader ---------------------------------------------------------------
def test_checkpoint_with_a_10_to_400_weight_is_refused(runner, tiny_ckpt):
    d = json.loads(open(tiny_ckpt).read())
    d['params']['wte'][0][0] = 10 ** 400
    with open('big.json', 'w') as f:
        f.write(json.dumps(d))
    for args in (['sample', '--checkpoint', 'big.json'], ['inspect', '--checkpoint', 'big.json', '--doc', 'ab'],
                 ['render', '--checkpoint', 'big.json', '--doc', 'ab']):
        line = error_line(runner.invoke(cli.main, args), 2)
        assert 'wte holds inf; parameters must be finite numbers' in line


def test_checkpoint_of_1e150_weights_is_refused(tmp_path):
    params, config, tok = tiny_model()
    for m in params.values():
        for row in m:
            for p in row:
                p.data = 1e150
    save_checkpoint(tmp_path / 'm.json', params, config, tok)       # finite: saving is allowed
    with pytest.raises(CheckpointError, match=rf'wte holds 1e\+150; .*\|value\| <= {MAX_WEIGHT:g}'):
        load_checkpoint(tmp_path / 'm.json')


@pytest.mark.parametrize('field,value,message', [
    ('n_embd', '16', 'n_embd must be a whole number 1..4096'),
    ('n_layer', 10 ** 30, 'n_layer must be a whole number 1..256'),
    ('n_head', True, 'n_head must be a whole number'),
])
def test_checkpoint_config_types_and_ranges(tmp_path, tiny_ckpt, field, value, message):
    d = json.loads(open(tiny_ckpt).read())
    d['config'][field] = value
    (tmp_path / 'c.json').write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / 'c.json')


# -- Medium: NaN passed the float options -------------------------------------------------------
@pytest.mark.parametrize('args', [
    ['train', 'docs.txt', '--steps', '1', *TINY, '--temperature', 'nan', '--samples', '2'],
    ['gradcheck', '--eps', 'nan'], ['gradcheck', '--eps', 'inf'], ['gradcheck', '--rtol', 'nan'],
    ['gradcheck', '--atol', '-inf'], ['render', '--timeout', 'inf'], ['render', '--timeout', 'nan'],
    ['sample', '--checkpoint', 'm.json', '--temperature', 'inf'],
])
def test_nan_and_inf_are_refused_before_work(runner, args):
    line = error_line(runner.invoke(cli.main, args), 2)
    assert 'is not a finite number' in line


# -- Medium: no memory guard --------------------------------------------------------------------
def test_a_huge_recording_is_refused_with_the_estimate_and_the_flag():
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=27, n_layer=8, n_embd=64, block_size=64)
    params = {}   # never built: the guard speaks before anything is made
    with pytest.raises(BudgetError) as e:
        check_budget(config, 78, what="recording 'x'")
    msg = str(e.value)
    assert 'nodes (~' in msg and 'the limit is 5,000,000 nodes' in msg and '--max-nodes' in msg
    assert estimate_nodes(config, 78) > 50_000_000
    with pytest.raises(ConfigError):
        record_step(params, config, tok, 'a' * 78)


def test_the_estimate_is_within_ten_percent_over():
    params, config, tok = tiny_model()
    trace = record_step(params, config, tok, 'abcdef')
    assert len(trace) <= estimate_nodes(config, 7) <= 1.2 * len(trace)


def test_train_refuses_a_huge_config_before_training(runner):
    line = error_line(runner.invoke(cli.main, ['train', 'docs.txt', '--n-embd', '4096', '--n-head', '1']), 2)
    assert 'a training step' in line and '--max-nodes' in line and 'the limit is 5,000,000 nodes' in line
    r = runner.invoke(cli.main, ['train', 'docs.txt', '--steps', '1', *TINY, '--max-nodes', '100'])
    assert 'raise the limit with --max-nodes' in error_line(r, 2)


def test_render_refuses_a_recording_above_max_nodes(runner):
    line = error_line(runner.invoke(cli.main, ['render', '--doc', 'emma', '--max-nodes', '1000']), 2)
    assert "recording 'emma'" in line and 'the limit is 1,000 nodes' in line


@pytest.mark.parametrize('what', ['--checkpoint', '--trace'])
def test_dev_zero_inputs_are_refused(runner, what):
    line = error_line(runner.invoke(cli.main, ['inspect', what, '/dev/zero']), 2)
    assert '/dev/zero is a character device, not a file' in line


def test_a_fifo_input_is_read_up_to_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr('microgpt.data.MAX_DATA_BYTES', 1000)
    fifo = tmp_path / 'p'
    os.mkfifo(fifo)
    writer = subprocess.Popen(['sh', '-c', f'yes emma > {fifo}'])
    try:
        with pytest.raises(DataError, match='is larger than 0 MiB'):
            read_docs(fifo)
    finally:
        writer.kill()
        writer.wait()


# -- Low: tracebacks on odd options ---------------------------------------------------------------
@pytest.mark.parametrize('args,fragment', [
    (['train', 'docs.txt', '--steps', '1e26'], "'1e26' is not a valid integer"),
    (['train', 'docs.txt', '--steps', str(10 ** 26)], 'is not in the range 1<=x<=1000000000'),
    (['render', '--node', '²'], "node must be a node id (a whole number 0..1000000000) or 'loss', got '²'"),
    (['render', '--node', '9' * 5000], 'node must be a node id'),
    (['render', '--expand', ''], "expand '' is not a scope path"),
    (['render', '--param', 'wte[' + '9' * 5000 + '][0]'], 'at most 200 characters'),
    (['render', '--param', 'a' + ' ' * 100_000 + '!'], 'at most 200 characters'),
])
def test_odd_options_give_one_line(runner, args, fragment):
    assert fragment in error_line(runner.invoke(cli.main, args), 2)


# -- Low: signals ---------------------------------------------------------------------------------
def test_sigterm_during_a_write_removes_the_temp_file_and_exits_143(runner, tmp_path, monkeypatch):
    (tmp_path / 'out.svg').write_text('old')
    real_fsync = os.fsync

    def fsync_then_term(fd):
        real_fsync(fd)
        os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(os, 'fsync', fsync_then_term)
    line = error_line(runner.invoke(cli.main, ['render', '--doc', 'ab', '-o', 'out.svg']), 143)
    assert line == 'Error: terminated (SIGTERM)'
    assert (tmp_path / 'out.svg').read_text() == 'old' and no_temp_files(tmp_path)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))
    assert signal.getsignal(signal.SIGTERM) is not plumbing._raise_terminated  # restored after the run


def test_ctrl_c_exits_130_with_one_line(runner, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr('microgpt.recording.stepcache.record_step', interrupted)
    assert error_line(runner.invoke(cli.main, ['render', '--doc', 'ab', '--no-cache']), 130) == 'Error: interrupted'


def test_ctrl_c_after_a_note_leaves_no_blank_line_before_the_error(runner, monkeypatch):
    """click meets a KeyboardInterrupt by printing an empty line; after a note on stderr (a step
    reused from the cache) the error came after a blank line instead of being the next line."""
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr('microgpt_graph.cli.build_view', interrupted)
    r = runner.invoke(cli.main, ['render', '--doc', 'ab', '--format', 'dot'])
    r = runner.invoke(cli.main, ['render', '--doc', 'ab', '--format', 'dot'])     # the step reused: a note first
    assert r.exit_code == 130 and r.output.startswith('reused the recorded step from ')
    assert r.output.splitlines()[1:] == ['Error: interrupted'], r.output


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux only')
def test_a_killed_parent_leaves_no_dot_child(tmp_path):
    fake_dot = tmp_path / 'dot'
    fake_dot.write_text('#!/bin/sh\nexec sleep 60\n')
    fake_dot.chmod(0o755)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from graphviz_export.render.native import render_native
        render_native({str(fake_dot)!r}, 'digraph{{a}}', 'svg', 600)
    """)
    parent = subprocess.Popen([sys.executable, '-c', script])
    try:
        child = None
        for _ in range(100):
            time.sleep(0.05)
            kids = open(f'/proc/{parent.pid}/task/{parent.pid}/children').read().split()
            if kids:
                child = int(kids[0])
                break
        assert child is not None
        parent.kill()
        parent.wait()
        for _ in range(100):
            if not _alive(child):
                break
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


# -- Low: terminal output, exit codes, JSON, BOM, API -------------------------------------------
def test_inspect_trace_escapes_terminal_control_characters(runner, tiny_trace_dict):
    d = json.loads(json.dumps(tiny_trace_dict))
    d['meta']['token_strs'] = ['\x1b[31mred\x1b[0m', '\x9b2J', 'b']
    d['meta']['tokens'] = d['meta']['tokens'][:3]
    d['meta']['doc'] = 'a\x1bb'
    with open('t.json', 'w') as f:
        f.write(json.dumps(d))
    r = runner.invoke(cli.main, ['inspect', '--trace', 't.json'])
    assert r.exit_code == 0, r.output
    assert '\x1b' not in r.output and '\x9b' not in r.output and '\\x1b[31mred' in r.output


@pytest.mark.parametrize('command', [['render', '--doc', 'ab', '-o', 'out.svg'], ['export', '--doc', 'ab', '-o', 'out.json']])
def test_a_full_disk_is_exit_1_in_every_command(runner, tmp_path, monkeypatch, command):
    monkeypatch.setattr(os, 'replace', enospc_for(command[-1]))
    line = error_line(runner.invoke(cli.main, command), 1)
    assert line == f'Error: cannot write {command[-1]}: No space left on device'
    assert no_temp_files(tmp_path)


def test_export_trace_without_o_does_not_replace_its_input(runner, tmp_path):
    assert runner.invoke(cli.main, ['export', '--doc', 'ab']).exit_code == 0
    before = (tmp_path / 'trace-ab.json').read_bytes()
    line = error_line(runner.invoke(cli.main, ['export', '--trace', 'trace-ab.json']), 2)
    assert 'is the --trace file itself; give -o' in line
    assert (tmp_path / 'trace-ab.json').read_bytes() == before


def strict_json(text):
    def refuse(name):
        raise ValueError(f'bare {name} in JSON output')
    return json.loads(text, parse_constant=refuse)


def test_inspect_json_has_no_bare_nan(runner, tiny_trace_dict):
    d = json.loads(json.dumps(tiny_trace_dict))
    loss = d['meta']['loss_id']
    for node in d['nodes']:
        node['grad'] = math.nan if node['id'] % 2 else math.inf
    d['nodes'][loss]['data'] = math.nan
    with open('t.json', 'w') as f:
        f.write(json.dumps(d))
    r = runner.invoke(cli.main, ['inspect', '--trace', 't.json', '--json'])
    assert r.exit_code == 0, r.output
    report = strict_json(r.output)
    assert report['loss'] == 'nan'


def test_gradcheck_json_is_strict_json(runner):
    r = runner.invoke(cli.main, ['gradcheck', '--doc', 'ab', '--inject', 'exp-x2', '--sample', '2', '--json'])
    assert r.exit_code == 1
    assert strict_json(r.output)['ok'] is False
    assert plumbing.dumps({'a': [math.nan, -math.inf, 1.5]}) == '{\n "a": [\n  "nan",\n  "-inf",\n  1.5\n ]\n}'


def test_gradcheck_param_with_no_params_exits_2(runner):
    line = error_line(runner.invoke(cli.main, ['gradcheck', '--param', 'nope', '--no-params']), 2)
    assert '--no-params cannot be combined with --param' in line


def test_a_utf8_bom_is_not_a_character(tmp_path):
    (tmp_path / 'd.txt').write_bytes('\ufeffemma\nanna\n'.encode('utf-8'))
    assert read_docs(tmp_path / 'd.txt') == ['emma', 'anna']


def test_api_record_step_with_a_smaller_tokenizer_or_other_params():
    params, config, tok = tiny_model()
    with pytest.raises(ConfigError, match='the tokenizer has 6 tokens but config.vocab_size is 27'):
        record_step(params, config, Tokenizer('abcde'), 'ab')
    other = init_params(GPTConfig(vocab_size=27, n_embd=16), __import__('random').Random(0))
    with pytest.raises(ConfigError, match=r"params\['wte'\] is 27x16; config .* needs 27x8"):
        record_step(other, config, tok, 'ab')
    del other['wpe']
    with pytest.raises(ConfigError, match='params do not match the config: missing wpe'):
        record_step(other, config, tok, 'ab')


@pytest.mark.parametrize('kw,message', [({'eps': 0}, 'eps must be a finite positive number, got 0'),
                                        ({'eps': math.nan}, 'eps must be'), ({'rtol': -1}, 'rtol must be')])
def test_api_check_params_refuses_bad_tolerances(kw, message):
    params, config, tok = tiny_model()
    with pytest.raises(InputError, match=message):
        check_params(params, config, tok, 'ab', sample=1, **kw)


@pytest.mark.parametrize('kw,message', [({'token': 1.0}, 'token must be a whole number, got 1.0'),
                                        ({'param': 5}, "param must be a name like 'wte'"),
                                        ({'node': '3'}, 'node must be a node id')])
def test_api_build_view_refuses_wrong_types(kw, message):
    params, config, tok = tiny_model()
    with pytest.raises(InputError, match=message):
        build_view(record_step(params, config, tok, 'ab'), **kw)
