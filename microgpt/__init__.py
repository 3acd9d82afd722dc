"""microgpt: a faithful, importable port of Karpathy's microgpt.

The port (engine, model, optim, data, train, sample, checkpoint) reads side by
side with the reference and imports nothing else of this project: the model
tags its nodes through `microgpt.tags.scope`, a no-op until a recorder listens.

    microgpt.recording   record one step as a Trace (listens to the tags)
    microgpt.checks      gradient checks on the port and on a recorded step
"""
