"""A fresh clone of the project, for tests that must see it as a newcomer or a packager does:
the files a clone has (tracked, or new and not ignored), without what this checkout has
accumulated (the venv, out/, caches, a names.txt lying about). From an unpacked sdist,
which has no git, its own files are the clone."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# what a checkout accumulates and a clone does not have (the sdist has no .gitignore to ask)
NOT_IN_A_CLONE = {'.git', '.venv', 'out', 'build', 'dist', '__pycache__', '.pytest_cache', '.hypothesis',
                  '.ipynb_checkpoints', 'artifacts'}


def clone_files(root=ROOT):
    """The relative paths (sorted) of the files a fresh clone of `root` has."""
    if (root / '.git').exists() and shutil.which('git'):
        listed = subprocess.run(['git', '-C', str(root), 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                                capture_output=True, check=True).stdout.decode('utf-8').split('\0')
        return sorted({p for p in listed if p and (root / p).is_file()})
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in NOT_IN_A_CLONE and not d.endswith('.egg-info')]
        out += [os.path.relpath(os.path.join(folder, f), root) for f in files if not f.endswith(('.pyc', '.pyo'))]
    return sorted(out + ['out/.gitignore'] * (root / 'out' / '.gitignore').is_file())


def fresh_clone(dest, root=ROOT):
    """Copy the files of a fresh clone of `root` into the folder `dest` (made if needed); returns dest."""
    dest = Path(dest)
    for rel in clone_files(root):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    return dest
