"""The applications on the pipeline: the local explorer (explorer/) and lecture tours (tour/),
sharing the frame player (static/stepper.js, stepper.css), the pages' one escape and number
format (static/format.js) and the update table (update_table.py)."""
