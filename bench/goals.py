"""Issue 15's goals, shared by the console table (``python -m bench``) and the README's
(``bench.readme_table``), and where a run's results are written."""

from pathlib import Path

# Ours at least this many times each peer's rate, by client.
PEER_GOAL = {"kafka-python": 2.0, "confluent": 4.0}
SCORER_GOAL = {"confluent": 60_000}  # events/s end to end, at-least-once
RESTORE_GOAL = {"kafka-python": 100_000, "confluent": 150_000}  # customers/s
PROCESSOR_GOAL = 100_000  # events/s, the processor alone on one core
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
