"""Write the committed example pictures (examples/*.svg) and their DOT sources (examples/*.dot).

    python examples/regenerate.py [--renderer native|wasm|auto]

tests/test_examples.py builds every example's views afresh and compares their DOT
text with the committed .dot files, so a committed picture that no longer matches
the code cannot go unnoticed. Example 05 trains 300 steps (about a minute) and
needs the names data.
"""
import importlib.util
import sys
from pathlib import Path

import _common  # beside this script: the script's folder is on sys.path

HERE = Path(__file__).resolve().parent

SCRIPTS = sorted(HERE.glob('[0-9][0-9]_*.py'))


def load(script):
    spec = importlib.util.spec_from_file_location(script.stem.replace('-', '_'), script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def example_views(script):
    """[(file name, view)] of one example script."""
    return load(script).views()[0]


def main(argv):
    renderer = argv[argv.index('--renderer') + 1] if '--renderer' in argv else 'auto'
    for script in SCRIPTS:
        pairs = example_views(script)
        _common.write(pairs, HERE, renderer)
        print('wrote', ', '.join(name for name, _ in pairs))


if __name__ == '__main__':
    main(sys.argv)
