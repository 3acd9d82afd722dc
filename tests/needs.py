"""What a test module needs: skipped without it on a developer's machine, an error with CI set.
.ci/run installs the test extra (anywidget, nbclient, nbconvert, JupyterLab, playwright), Graphviz
and chromium, so a skip there would be a test that never runs."""

import importlib
import os

import pytest

IN_CI = os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')


def module(name, install):
    """Import `name`; without it skip the calling module (say what to install), or, with CI set,
    raise the ImportError (the module errors at collection)."""
    if IN_CI:
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f'{name} is not installed: {install}')


def unless(present, reason):
    """A skip mark for when `present` is false; never skips with CI set (the test then fails)."""
    return pytest.mark.skipif(not present and not IN_CI, reason=reason)
