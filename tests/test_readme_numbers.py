"""Every number in README.md is either recomputed here (benchmarks/readme_figures.py) and
found in the README word for word, or listed there as measured (timings, memory) or as
not a figure (versions, names). A README number that drifts from the code fails here;
`python -m benchmarks.readme_figures` prints the fresh value to put back."""

import json
import re

import pytest

from benchmarks.readme_figures import (
    MEASURED,
    NAMES_FIGURES,
    NOT_FIGURES,
    NOT_YET_CHECKED,
    README,
    SLOW_FIGURES,
    figures,
    prose,
)
from tests.conftest import names_path, needs_names
from tests.reference_figures import REFERENCE_RUN, sample_line

TEXT = README.read_text()


def flat(text):
    return ' '.join(text.split())


@pytest.fixture(scope='module')
def fresh():
    return figures(names_path())


def test_every_computed_figure_is_in_the_readme(fresh):
    readme = flat(TEXT)
    missing = [f"{what}: {text}" for what, text in fresh if flat(text) not in readme]
    assert not missing, 'README figures that differ from a fresh computation:\n' + '\n'.join(missing)


@needs_names
def test_the_reproduction_figures_are_recomputed_with_the_names_data(fresh):
    (text,) = [t for what, t in fresh if what == 'first five losses']
    assert text == NAMES_FIGURES['first five losses']


# things with digits that are not numbers a reader takes as a figure: paths and identifiers
# (examples/01_token..., layer0.attn_wq, wq[3][5]), link targets, list numbering
LIST_NUMBERING = re.compile(r'^\d+\. ', re.M)
IDENTIFIERS = re.compile(r'\S*[/_]\S*|[A-Za-z][\w.]*\d\w*|\[\d+\]')
NUMBER = re.compile(r'\d[\d,.]*\d|\d')


def leftover_numbers(text, covered):
    text = flat(LIST_NUMBERING.sub(' ', prose(text)))
    for snippet in sorted(covered, key=len, reverse=True):
        text = text.replace(flat(snippet), ' ')
    text = IDENTIFIERS.sub(' ', text)
    return NUMBER.findall(text)


def covered(fresh):
    return [t for _, t in fresh] + list(SLOW_FIGURES.values()) + list(NAMES_FIGURES.values()) + MEASURED + NOT_FIGURES


def sections(text):
    """{'## heading': its text} in README order; the text before the first ## is '#'."""
    parts = re.split(r'(?m)^(?=## )', text)
    return {(p.splitlines()[0] if p.startswith('## ') else '#'): p for p in parts if p.strip()}


def test_every_number_in_the_prose_is_a_checked_figure_or_listed(fresh):
    left = {h: leftover_numbers(body, covered(fresh)) for h, body in sections(TEXT).items()
            if h not in NOT_YET_CHECKED}
    left = {h: nums for h, nums in left.items() if nums}
    assert not left, f"numbers in README.md that nothing recomputes or lists: {left}"


def test_the_sections_not_yet_checked_still_exist():
    """The exemption list names real sections (a renamed one would exempt nothing and
    leave its old name behind)."""
    assert set(NOT_YET_CHECKED) <= set(sections(TEXT))


def test_the_check_would_see_a_changed_number(fresh):
    """A changed figure is caught: swap one digit of the render line in a copy."""
    (line,) = [t for what, t in fresh if what == 'render line']
    wrong = TEXT.replace(line, line.replace('58 edges', '59 edges'))
    assert wrong != TEXT and flat(line) not in flat(wrong)
    assert '59' in leftover_numbers(wrong, covered(fresh))


def test_the_samples_after_the_whole_run_are_the_reference_runs():
    """The README's samples after the 1,000-step run are the reference run's (as the
    transcription computed them: tests/golden/reference_run.json; tests/test_model.py's slow
    test checks that the port ends the same run with the same samples)."""
    samples = json.loads(REFERENCE_RUN.read_text())['samples']
    text = '(' + ', '.join(f"`{sample_line(i, s)}`" for i, s in enumerate(samples[:3])) + ', …)'
    assert text == SLOW_FIGURES['samples after training'] and flat(text) in flat(TEXT)
