"""Activity recognition per tracked object, and events (numpy and torch kernels, no `pipeline`
imports). The stage wrappers are stages/activity.py and stages/events.py.

- features: per-track sliding-window features, scale-invariant (body heights, seconds).
- rules: the default classifier (thresholds from the YAML) and the label hysteresis.
- temporal: a small causal 1D-conv model over the per-track feature sequence (torch).
- clip: a user's TorchScript clip-level action model over batched track crops.
- events: zones (enter/exit/dwell), counting lines (direction, flicker-proof), activity start/end.
- draw: annotate layers (activity labels, zones, lines with counts, recent events).
- dataset / evaluate / train: labelled feature sequences from generated street scenes run through
  the real stages, `vidpipe eval activity` and `vidpipe train activity`.

Convention: labels are the strings of LABELS; class scores are (N, len(LABELS)) float32 rows
that sum to 1, in LABELS order.
"""

LABELS = ("standing", "walking", "running", "waving", "loitering")
