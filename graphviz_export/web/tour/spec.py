"""The tour file: a lecture as a list of view states with captions (TOML).

    title = "Backprop through one step of microgpt"   # optional
    doc = "emma"              # the document recorded (default: microgpt.recording.DEFAULT_DOC, "emma")
    seed = 42                 # the fresh model's seed (default: the reference's, 42)
    checkpoint = "model.json" # optional: a checkpoint instead (relative to the tour file)
    present = true            # optional: the player opens in presentation mode (P toggles it)
    aspect = "16:9"           # optional: every stop's screen shape (a stop may set its own)

    [[stop]]
    caption = "The loss at the last position: its grad is 1 by definition."
    node = "loss"             # any view option (graphviz_export.spec, as `render`'s):
    depth = 2                 #   token layer head param node function line depth
    level = "scalar"          #   direction level budget edge_budget expand edge_grads
    step = "backward"         # "backward" (default), "forward" or "none"
    frames = [0, 12]          # optional: play positions 0..12 of this stop's frames
    update = true             # optional: after the last frame, Adam's update of the
                              #   parameters in view (fresh optimizer, step 1)
    doc = "anna"              # optional: another document for this stop
    lab = "recursive"         # optional: the backprop lab (recursive, twice, assign, or a fault of
                              #   `gradcheck --list-faults`): the stop draws wrong - correct backward,
                              #   the first diverging node outlined and explained; without a view key it
                              #   shows that node's neighbourhood; step defaults to "none" (a still)

Unknown keys, wrong types and impossible ranges are refused with one line that
names the stop, the key and what is allowed; a view key takes the values, limits
and messages of graphviz_export.spec, as the command line and the explorer do.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from microgpt.errors import InputError
from microgpt.files import read_capped
from microgpt.recording import DEFAULT_DOC, SEED

from ...spec import FIELDS, ViewOptionError, check, view_spec

VIEW_KEYS = tuple(FIELDS)   # a stop's view: the ViewSpec's fields, under their own names
STOP_KEYS = {'caption': str, 'title': str, 'step': str, 'frames': list, 'update': bool, 'doc': str, 'lab': str}
SELECTORS = ('token', 'layer', 'head', 'param', 'node', 'function', 'line')   # what a view shows
TOP_KEYS = {'title': str, 'doc': str, 'seed': int, 'checkpoint': str, 'present': bool, 'aspect': str,
            'stop': list}
STEP_MODES = ('backward', 'forward', 'none')
MAX_TOUR_BYTES = 1024 * 1024     # a tour is a page of TOML; a lecture of 100 stops is ~20 KB


class TourError(InputError):
    """A tour file that cannot be read; the message names the stop and key."""


@dataclass
class Stop:
    caption: str
    view: dict                      # build_view keyword arguments (of a checked ViewSpec)
    title: str = ''
    step: str = 'backward'
    frames: tuple = None            # (first, last) position, or None: all
    update: bool = False
    doc: str = None
    lab: str = None                 # a lab mode: the stop draws that wrong backward - the correct one


@dataclass
class Tour:
    title: str
    doc: str
    seed: int
    checkpoint: str                 # resolved path or None
    stops: list = field(default_factory=list)
    present: bool = False           # the player opens in presentation mode


TYPE_NAMES = {int: 'an integer', str: 'a string', bool: 'true or false', list: 'a list'}


def _check(where, key, value, t):
    """A top or stop key's TOML type (a view key is the spec's to check)."""
    if not isinstance(value, t) or (t is int and isinstance(value, bool)):
        raise TourError(f"{where}: {key} must be {TYPE_NAMES[t]}, got {value!r}")


def _labels(where):
    """A view key's name in messages: 'lecture.toml, stop 2: depth'."""
    return lambda key: f"{where}: {key}"


def parse_tour(text, base=Path('.'), name='tour'):
    """A Tour from TOML text; `base`: the folder relative paths start from."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TourError(f"{name} is not valid TOML: {e}") from None
    for key, value in d.items():
        if key not in TOP_KEYS:
            raise TourError(f"{name}: unknown key {key!r}; allowed at the top: {', '.join(TOP_KEYS)}")
        _check(name, key, value, TOP_KEYS[key])
    raw = d.get('stop', [])
    if not raw:
        raise TourError(f"{name} has no stops: add [[stop]] tables with a caption and view options")
    checkpoint = d.get('checkpoint')
    tour = Tour(title=d.get('title', 'microgpt-graph tour'), doc=d.get('doc', DEFAULT_DOC), seed=d.get('seed', SEED),
                checkpoint=str(base / checkpoint) if checkpoint else None, present=d.get('present', False))
    shared = {}         # view keys every stop takes unless it sets its own
    if 'aspect' in d:
        try:
            shared['aspect'] = check('aspect', d['aspect'], f"{name}: aspect")
        except ViewOptionError as e:
            raise TourError(str(e)) from None
    for k, s in enumerate(raw, 1):
        where = f"{name}, stop {k}"
        if not isinstance(s, dict):
            raise TourError(f"{where}: a stop must be a table ([[stop]])")
        for key, value in s.items():
            if key in STOP_KEYS:
                _check(where, key, value, STOP_KEYS[key])
            elif key not in VIEW_KEYS:
                raise TourError(f"{where}: unknown key {key!r}; allowed: "
                                f"{', '.join(list(STOP_KEYS) + list(VIEW_KEYS))}")
        try:
            view = view_spec({**shared, **{k: v for k, v in s.items() if k in VIEW_KEYS}}, label=_labels(where))
        except ViewOptionError as e:
            raise TourError(str(e)) from None
        if 'caption' not in s:
            raise TourError(f"{where}: every stop needs a caption")
        lab = s.get('lab')
        step = s.get('step', 'none' if lab else 'backward')
        if step not in STEP_MODES:
            raise TourError(f"{where}: step {step!r} is not one of: {', '.join(STEP_MODES)}")
        if lab is not None and step != 'none':
            raise TourError(f"{where}: a lab stop is a still picture of differences; step must be 'none'")
        rng = s.get('frames')
        if rng is not None:
            if (len(rng) != 2 or any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in rng)
                    or rng[0] > rng[1]):
                raise TourError(f"{where}: frames must be [first, last] with 0 <= first <= last, got {rng!r}")
            rng = tuple(rng)
        tour.stops.append(Stop(caption=s['caption'], view=view.kwargs(), title=s.get('title', ''), step=step,
                               frames=rng, update=s.get('update', False), doc=s.get('doc'), lab=lab))
    return tour


def load_tour(path):
    """The Tour of a TOML file: at most MAX_TOUR_BYTES of UTF-8 text, never a device (/dev/zero)."""
    path = Path(path)
    text = read_capped(path, MAX_TOUR_BYTES, 'tour file', TourError)
    return parse_tour(text, base=path.parent, name=str(path))
