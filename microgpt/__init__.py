"""microgpt: a faithful, importable port of Karpathy's microgpt whose engine can
record every scalar operation of a training step (see microgpt.record)."""
