"""The applications on the pipeline: the local explorer (explorer/) and lecture tours (tour/),
sharing the frame player (static/stepper.js)."""
