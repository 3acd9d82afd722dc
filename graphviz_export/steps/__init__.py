"""Things computed on a view: backprop frames (frames.py) and what they read and where their
edge labels go (frame_texts.py, edge_labels.py), the Adam update, before/after, the failure picture."""
