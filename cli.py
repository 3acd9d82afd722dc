"""microgpt-graph: the command line, at the top of the repository.

    python cli.py --help            # the same as `microgpt-graph --help`

The commands live in microgpt_graph/cli.py, their plumbing (one-line errors,
option types, progress) beside them in microgpt_graph/plumbing.py:

    train      train microgpt as the reference does       sample     names from a checkpoint
    render     draw one view of a recorded step           inspect    what a recorded step contains
    export     the whole step as a trace file             gradcheck  check the gradients, name the op
    explore    the step in your browser                   tour       a lecture as one HTML file
    diff       before/after on one layout                 record     the backward() of your own script
"""

from microgpt_graph.cli import main

__all__ = ['main']

if __name__ == '__main__':
    main()
