"""Things computed on a view: backprop frames, the Adam update, before/after, the failure picture."""
