"""The package as a packager meets it: built from a fresh clone with `python -m build`
(the sdist, then the wheel from the sdist), the sdist holds every file of the clone (its
tests need conftest.py, the helpers, golden/, scripts/, examples/, the README), the wheel
installs only this project's packages, an MIT licence goes with both, and the package
index gets a description whose pictures and links do not point into a repository it
does not have. (.ci/run also unpacks the sdist, installs it and runs its tests.)"""

import email
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tests.clone import ROOT, clone_files, fresh_clone

PACKAGES = {'microgpt', 'graphviz_export', 'microgpt_graph'}


@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    """{'sdist': path, 'wheel': path}, built from a copy of a fresh clone (the build writes
    its egg-info and build/ into the source folder: not into this checkout)."""
    src = fresh_clone(tmp_path_factory.mktemp('clone'))
    out = tmp_path_factory.mktemp('dist')
    r = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(out), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (sdist,), (wheel,) = out.glob('*.tar.gz'), out.glob('*.whl')
    return {'sdist': sdist, 'wheel': wheel}


def sdist_members(sdist):
    with tarfile.open(sdist) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    top = {n.split('/', 1)[0] for n in names}
    assert len(top) == 1, top
    return {n.split('/', 1)[1] for n in names}


def test_the_sdist_holds_every_file_of_a_clone_and_only_those(dist):
    members = sdist_members(dist['sdist'])
    missing = set(clone_files()) - members
    assert not missing, f'files of the repository missing from the sdist: {sorted(missing)[:10]}'
    made_by_the_build = {m for m in members if m in ('PKG-INFO', 'setup.cfg') or '.egg-info/' in m}
    assert members - made_by_the_build == set(clone_files())
    assert {'tests/conftest.py', 'tests/golden/token2.dot', 'examples/_common.py', 'LICENSE', 'NOTICE'} <= members


def test_the_wheel_installs_only_this_projects_packages_and_its_dist_info(dist, tmp_path):
    """`ls site-packages` after installing the wheel: nothing generic (no top-level `cli`)."""
    site = tmp_path / 'site'
    r = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--target', str(site),
                        str(dist['wheel'])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    installed = {p.name for p in site.iterdir()} - {'bin'}     # --target puts the script in bin/
    assert installed == PACKAGES | {'microgpt_graph-0.1.0.dist-info'}
    info = site / 'microgpt_graph-0.1.0.dist-info'
    assert '[console_scripts]\nmicrogpt-graph = microgpt_graph.cli:main' in (info / 'entry_points.txt').read_text()
    for name in ('LICENSE', 'NOTICE'):
        assert (info / 'licenses' / name).read_text() == (ROOT / name).read_text()
    assert (site / 'bin' / 'microgpt-graph').is_file()


def metadata(dist):
    with zipfile.ZipFile(dist['wheel']) as z:
        (name,) = [n for n in z.namelist() if n.endswith('.dist-info/METADATA')]
        return email.message_from_bytes(z.read(name))


def test_the_licence_is_mit_in_the_metadata_and_the_file(dist):
    meta = metadata(dist)
    assert meta['License-Expression'] == 'MIT' and meta.get_all('License-File') == ['LICENSE', 'NOTICE']
    assert (ROOT / 'LICENSE').read_text().startswith('MIT License\n\nCopyright (c) 2026 the microgpt-graph maintainers')
    assert 'karpathy.ai/microgpt.html' in (ROOT / 'NOTICE').read_text()     # where the ported model comes from


def test_the_package_index_description_has_no_repository_links(dist):
    """The README's pictures and links to examples/ and docs/ would break on the package index,
    which has none of the repository's files: its description links only to absolute URLs."""
    relative = re.compile(r'\]\((?!https?://|#)[^)]*\)')
    assert relative.search((ROOT / 'README.md').read_text())     # the README has them: not the description
    meta = metadata(dist)
    description = meta.get_payload()
    assert meta['Description-Content-Type'] == 'text/markdown'
    assert not relative.search(description) and '![' not in description
    assert 'microgpt-graph render -o out/emma-token4.svg' in description


def test_the_description_names_every_command(dist):
    """Its `--help` line lists the commands the CLI has (a renamed or new command shows here)."""
    from microgpt_graph.cli import main
    (line,) = [line for line in metadata(dist).get_payload().splitlines() if line.startswith('microgpt-graph --help')]
    listed = line.split('#')[1].strip().replace(',', '').split()
    assert set(listed) | {'explore'} == set(main.commands)    # explore: on the line above
