"""A stage's results: `results.json` in its output folder, beside its figures: the numbers a person,
the report and the next stage read."""

RESULTS = "results.json"
