"""Two of the script's own ops where the re-run's difference needs care: safe_log at
x = 5e-7, within one probe step (1e-6) of 0, where log(x - h) is -inf (a one-sided
non-finite probe: not measurable, so skipped, not failed nor taken for a kink); and
offset(1e6), whose value is a million and slope 1, so f(x+h) - f(x-h) is two large
numbers' difference, off by their rounding (1e-6 of the slope's 1e-6 tolerance)."""

from engine import Value

x = Value(5e-7)
y = Value(0.3)
loss = x.safe_log() + y.offset(1e6)
loss.backward()
