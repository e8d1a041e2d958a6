"""The scorer end to end (poll → decode → aggregate → score → produce outputs and changelog → commit)
on the benchmark topic, in-process, one instance, fresh output topics and group per run.

Like ``raw_consume``, the clock runs from the first batch handed to the processor to the last one
committed, so group join and topic creation are not counted.
"""

from __future__ import annotations

import time

from bench.workload import unique
from consumer.backends import ClientConfig, make_backend
from consumer.processor import Topics
from consumer.runner import RunnerSettings, ScorerRunner


class TimedRunner(ScorerRunner):
    """A ScorerRunner that notes when its first batch started and its last batch was committed."""

    first: float | None = None
    last: float | None = None

    def _handle(self, records, consumer, committer) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        super()._handle(records, consumer, committer)
        self.last = time.perf_counter()


def scorer_rate(
    config: ClientConfig, client: str, topic: str, model, *, exactly_once: bool, batch_size: int = 2000
) -> dict:
    """Run the scorer over ``topic`` until idle; events/s and what it wrote."""
    name = unique("bench-scorer")
    topics = Topics(topic, f"{name}-out", f"{name}-dlq", f"{name}-state")
    settings = RunnerSettings(
        group_id=name,
        topics=topics,
        batch_size=batch_size,
        exactly_once=exactly_once,
        exit_when_idle=True,
        instance_id=name,
        drift_every_s=3600.0,  # drift snapshots are an operations feature, not part of the data path
    )
    runner = TimedRunner(make_backend(client, config), settings, model)
    summary = runner.run()
    seconds = (runner.last or 0.0) - (runner.first or 0.0)
    return {
        "events": summary.events,
        "updates": summary.updates,
        "batches": summary.batches,
        "seconds": round(seconds, 3),
        "events_per_s": summary.events / seconds if seconds else 0.0,
    }
