"""One description of a view (graphviz_export.spec), three doors: the command line,
the explorer's URL state and tour files accept the same values of every view field
and refuse the same bad ones, with the same one-line message under each door's
name of the field. The table below is written by hand (not read from the spec), so
a door that drifts, or a limit that moves, fails here."""

import json
import re
from urllib.parse import urlencode

import click
import pytest
from click.testing import CliRunner

import cli
from graphviz_export import spec
from graphviz_export.web.explorer import state as st
from graphviz_export.web.explorer.api import Api, ApiError
from graphviz_export.web.explorer.recordings import Recordings
from graphviz_export.web.tour.spec import TourError, parse_tour
from microgpt.recording import record_step
from tests.tiny_model import tiny_model

# field -> (good values, bad values), as Python values (a TOML file writes the same)
TABLE = {
    'token': ([0, 3, 10**6], [-1, 10**6 + 1, 'x', 1.5]),
    'layer': ([0, 1], [-1, 10**6 + 1, 'one']),
    'head': ([0, 7], [-2, 10**7]),
    'param': (['wte', 'layer0.attn_wq[3][5]'], ['wte[1]', 'x' * 201, 'a b!']),
    'node': (['loss', 0, 12, 10**9], [-1, 10**9 + 1, 'abc', '\u00b2']),
    'function': (['rmsnorm', 'Neuron.__call__'], ['a\x01b', 'f' * 201]),
    'line': ([1, 10**7], [0, 10**7 + 1, 'x']),
    'depth': ([0, 3, 64], [-1, 65, 'deep']),
    'direction': (['both', 'ancestors', 'descendants'], ['up', '']),
    'level': (['auto', 'scalar', 'vector', 'block'], ['fine', 'AUTO']),
    'budget': ([1, 150, 5000], [0, 5001, 'x']),
    'edge_budget': ([1, 20000], [0, 20001]),
    'expand': ([['pos1/*'], ['pos1/layer0/attn/head2/*', 'pos0']],
               [['pos 1'], ['<script>'], [f'pos{i}' for i in range(17)]]),
    'edge_grads': ([True, False], ['yes']),
    'aspect': (['auto', '16:9', '4:3', '3:4'], ['16x9', 'wide', '']),
}
URL = {'direction': 'dir', 'edge_budget': 'ebudget', 'edge_grads': 'grads'}   # the explorer's names
CASES = [(f, v, good) for f, (goods, bads) in TABLE.items() for good, vs in ((True, goods), (False, bads)) for v in vs]


def test_the_table_covers_every_field_of_the_spec():
    assert list(TABLE) == list(spec.FIELDS)


@pytest.fixture(scope='module')
def trace_file(tmp_path_factory):
    params, config, tok = tiny_model()
    path = tmp_path_factory.mktemp('spec') / 'ab.json'
    path.write_text(record_step(params, config, tok, 'ab').to_json())
    return path


@pytest.fixture(scope='module')
def api(trace_file):
    from microgpt.recording import Trace
    return Api(Recordings(trace=Trace.load(trace_file)))


# -- the three doors: each returns None (accepted) or the refusal's one line ------------------------
def cli_door(trace_file, field, value):
    option = '--' + field.replace('_', '-')
    if field == 'edge_grads':
        args = [option] if value else []
    elif isinstance(value, list):
        args = [a for v in value for a in (option, v)]
    else:
        args = [option, str(value)]
    r = CliRunner().invoke(cli.main, ['render', '--trace', str(trace_file), '--format', 'dot', '-o', '-', *args])
    assert 'Traceback' not in r.output
    prefix = f"Error: Invalid value for '{option}': "
    if r.exit_code == 2 and r.output.startswith(prefix):
        assert r.output.count('\n') == 1, r.output
        return r.output[len(prefix):].rstrip('\n').removesuffix(" (see 'main render --help')")
    assert 'No such option' not in r.output, r.output
    assert r.exit_code == 0 and r.output.startswith('digraph') or 'not in this trace' in r.output or \
        'recorded from a script' in r.output or 'matches no scope' in r.output, r.output
    return None     # drawn, or refused by the trace (a token it lacks): not a bad option


def url_door(api, field, value):
    name = URL.get(field, field)
    if isinstance(value, bool):
        pairs = [(name, '1' if value else '0')]
    elif isinstance(value, list):
        pairs = [(name, v) for v in value]
    else:
        pairs = [(name, str(value))]
    query = urlencode(pairs)
    try:
        st.build_kwargs(st.parse(query))
    except st.StateError as e:
        with pytest.raises(ApiError) as answer:     # the API answers 400 with that line
            api.view(query)
        # the line is the spec's; the body also names the nearest view that draws (fallback.py)
        assert answer.value.status == 400 and answer.value.body['error'] == str(e)
        assert set(answer.value.body) <= {'error', 'fallback', 'note'}
        return str(e)
    return None


def toml(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return '[' + ', '.join(map(toml, value)) + ']'
    return json.dumps(value) if isinstance(value, str) else repr(value)


def tour_door(field, value):
    try:
        tour = parse_tour(f'[[stop]]\ncaption = "x"\n{field} = {toml(value)}\n', name='t.toml')
    except TourError as e:
        return str(e)
    got = tour.stops[0].view[field]
    assert got == (tuple(value) if isinstance(value, list) else value)    # what build_view gets
    return None


def unlabelled(message, label):
    """The message with the door's name of the field taken off the front, and the value
    as the door spelled it (text or TOML) off the end."""
    assert message.startswith(label), (message, label)
    return re.sub(r', got .*$', '', message[len(label):])


@pytest.mark.parametrize('field,value,good', CASES, ids=[f'{f}={v!r:.20}' for f, v, _ in CASES])
def test_the_three_doors_agree(trace_file, api, field, value, good):
    if field == 'edge_grads' and not good:
        said = {'url': url_door(api, field, value), 'tour': tour_door(field, value)}   # a flag has no bad CLI value
    else:
        said = {'cli': cli_door(trace_file, field, value), 'url': url_door(api, field, value),
                'tour': tour_door(field, value)}
    if good:
        assert said == dict.fromkeys(said), said
        return
    assert all(said.values()), said
    labels = {'cli': field, 'url': URL.get(field, field), 'tour': f't.toml, stop 1: {field}'}
    texts = {door: unlabelled(message, labels[door]) for door, message in said.items()}
    assert len(set(texts.values())) == 1, said


@pytest.mark.parametrize('field,value,message', [
    ('depth', 65, 'depth must be in 0..64, got 65'),
    ('budget', 5001, 'budget must be in 1..5000, got 5001'),
    ('edge_budget', 0, 'edge_budget must be in 1..20000, got 0'),
    ('node', 'abc', "node must be a node id (a whole number 0..1000000000) or 'loss', got 'abc'"),
    ('level', 'fine', "level 'fine' is not one of: auto, scalar, vector, block"),
    ('expand', ['pos 1'], "expand 'pos 1' is not a scope path like 'pos3/layer0/attn/head2/*' (at most 200 characters)"),
])
def test_a_refusal_names_the_field_the_value_and_what_is_allowed(field, value, message):
    with pytest.raises(spec.ViewOptionError) as e:
        spec.view_spec({field: value})
    assert str(e.value) == message and e.value.field == field


# -- the command line: render and diff offer the same view options ------------------------------------
def options_in_help(command):
    text = CliRunner().invoke(cli.main, [command, '--help'], terminal_width=200).output
    return {line.split()[0]: ' '.join(line.split()[1:]) for line in text.splitlines() if line.startswith('  --')}


def test_diff_offers_every_view_option_of_render_with_the_same_help():
    render, diff = options_in_help('render'), options_in_help('diff')
    view = ['--' + f.replace('_', '-') for f in spec.FIELDS]
    assert len(view) == 15 and set(view) <= set(render)
    for option in view:
        assert option in diff, f"diff lacks {option}"
        assert diff[option] == render[option]           # metavar, help, default and limits


def test_the_cli_takes_its_limits_and_defaults_from_the_spec():
    params = {p.name: p for p in cli.main.commands['render'].params}
    assert (params['depth'].type.min, params['depth'].type.max) == (0, spec.MAX_DEPTH)
    assert (params['budget'].type.max, params['budget'].default) == (spec.MAX_BUDGET, spec.DEFAULT_BUDGET)
    assert tuple(params['level'].type.choices) == spec.LEVELS and params['level'].default == spec.DEFAULT_LEVEL
    assert isinstance(params['edge_grads'], click.Option) and params['edge_grads'].is_flag


def test_diff_draws_the_view_its_options_name(tmp_path):
    """diff's new options reach the picture: --node with --depth and --direction (diff had none of them)."""
    from microgpt.checkpoint import save_checkpoint
    params, config, tok = tiny_model(seed=1)
    save_checkpoint(tmp_path / 'a.json', params, config, tok)
    params, config, tok = tiny_model(seed=2)
    save_checkpoint(tmp_path / 'b.json', params, config, tok)
    r = CliRunner().invoke(cli.main, ['diff', '--doc', 'ab', '--checkpoint', str(tmp_path / 'a.json'),
                                      '--checkpoint-after', str(tmp_path / 'b.json'), '--node', 'loss', '--depth', '1',
                                      '--direction', 'ancestors', '--level', 'scalar', '-o', str(tmp_path / 'd.svg')])
    assert r.exit_code == 0, r.output
    assert 'ancestors, depth 1' in r.output


# -- the explorer: the spec's defaults, but for where the page opens --------------------------------
def test_the_explorer_opens_at_block_and_otherwise_takes_the_spec_defaults():
    state = st.parse('')
    view = st.view_of(state)
    assert state['level'] == st.OPENS_AT == 'block' != spec.DEFAULT_LEVEL
    assert (view.budget, view.edge_budget, view.direction, view.edge_grads) == \
           (spec.DEFAULT_BUDGET, spec.DEFAULT_EDGE_BUDGET, 'both', False)
    # a kind counts its own fields only: the layer view ignores node and depth
    kw = st.build_kwargs(st.parse('view=layer&layer=0&node=5&depth=3'))
    assert kw == {'layer': 0, 'token': None, 'level': 'block', 'budget': 150, 'edge_budget': 400, 'expand': (),
                  'edge_grads': False, 'aspect': 'auto'}
