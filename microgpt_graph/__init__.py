"""microgpt-graph's command line: `microgpt-graph` runs microgpt_graph.cli:main.

    cli.py        the commands (train, sample, inspect, export, gradcheck, render, tour, diff, explore, record)
    plumbing.py   one-line errors and signals, option types, shared option sets, progress bars
"""
