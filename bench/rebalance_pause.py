"""The pause in the output when the group's membership changes, under a steady offered load.

Two scorer processes share a 6-partition topic while this process produces events at a fixed rate.
Dynamic membership: instance B stops (SIGTERM: it finishes its batch, commits and leaves the group),
and once A serves all six partitions, B starts again and joins. Static membership
(``--static-membership``, fixed instance ids): B stops and is restarted at once; a static member
does not leave on close, and one that rejoins within the session timeout (10 s, the client default in
``consumer/backends/*/config.py``) takes its partitions back without a rebalance.

The pause is read afterwards from the output topic: each update's produce timestamp (the scorer's
clock, same machine). For each change, the longest interval without output that ends between the
change and the next one, over all partitions together ("all": nothing at all came out) and
per partition ("one partition": the longest any partition waited). The steady stretch before the
first change is the baseline.
"""

from __future__ import annotations

import itertools
import threading
import time

from bench.scorer_group import ScorerGroup
from bench.workload import event_pairs, unique
from consumer.backends import ClientConfig

LEAD_S = 5.0  # steady output before the first change: the baseline
HOLD_S = 5.0  # steady output after a change settled: its window ends on normal traffic
MAX_S = 90  # events are generated for at most this many seconds of offered load


class Paced:
    """Produce ``pairs`` at ``rate`` per second in a thread until :meth:`stop`."""

    def __init__(self, config: ClientConfig, topic: str, pairs, rate: float) -> None:
        import confluent_kafka

        self._producer = confluent_kafka.Producer(
            {"bootstrap.servers": config.bootstrap_servers, "linger.ms": 1, "partitioner": "murmur2_random"}
        )
        self.topic, self.pairs, self.rate, self.sent = topic, pairs, rate, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paced-producer")
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        for key, value in self.pairs:
            ahead = started + self.sent / self.rate - time.monotonic()
            if self._stop.wait(max(ahead, 0.0)):  # holding the offered rate is the point
                break
            self._producer.produce(self.topic, value, key)
            self._producer.poll(0)
            self.sent += 1
        self._producer.flush(60)

    def stop(self) -> int:
        """Stop producing; how many events were produced."""
        self._stop.set()
        self._thread.join()
        return self.sent


def longest_gap(times: list[int], start: int, end: int) -> int:
    """The longest interval between consecutive sorted ``times`` that ends in ``(start, end]``.

    By its end: a pause caused by a change ends after the change, however early its last record was.

    >>> longest_gap([0, 10, 20, 500, 510, 2000], 15, 600)
    480
    >>> longest_gap([0, 10], 20, 30)
    0
    """
    return max((b - a for a, b in itertools.pairwise(times) if start < b <= end), default=0)


def gaps(times: dict[int, list[int]], start: float, end: float) -> dict[str, int]:
    """Longest gap in ms over all partitions together and in any one partition, in ``[start, end)`` (s)."""
    lo, hi = int(start * 1000), int(end * 1000)
    merged = sorted(itertools.chain.from_iterable(times.values()))
    return {
        "all_ms": longest_gap(merged, lo, hi),
        "partition_ms": max(longest_gap(ts, lo, hi) for ts in times.values()),
    }


def _wait_flowing(group: ScorerGroup, what: str) -> None:
    """Until every partition committed past where it was now: each has an owner scoring again."""
    before = group.committed()
    group.wait(lambda: all(o > before[p] for p, o in group.committed().items()), what)


def _scenario(config: ClientConfig, client: str, model_dir, rate: float, static: bool) -> dict:
    marks, times, sent = _run(config, client, model_dir, rate, static)
    labels = ["steady", "restart"] if static else ["steady", "leave", "join"]
    bounds = [marks["start"] + 1.0, marks["leave"], *([] if static else [marks["join"]]), marks["end"]]
    windows = zip(labels, bounds[:-1], bounds[1:], strict=True)  # each change until the next one
    result = {label: gaps(times, lo, hi) for label, lo, hi in windows}
    stop_ms = round((marks["stopped"] - marks["leave"]) * 1000)  # SIGTERM to exit, within the pause
    return {**result, "stop_ms": stop_ms, "events": sent, "rate": rate}


def _run(config: ClientConfig, client: str, model_dir, rate: float, static: bool):
    """The scenario: when each change happened (s), the output timestamps, and the events produced."""
    name = unique("bench-rebalance")
    a, b = f"{name}-a", f"{name}-b"
    pairs = event_pairs(int(rate * MAX_S), seed=23)
    with ScorerGroup(config, client, model_dir, name, static=static) as group:
        group.start(a)
        group.start(b)
        group.wait(lambda: group.assigned_members() == 2, "both instances assigned")
        paced = Paced(config, group.topics.input, pairs, rate)
        try:
            marks = {"start": time.time()}
            time.sleep(LEAD_S)
            marks["leave"] = time.time()
            group.stop(b)
            marks["stopped"] = time.time()
            if not static:
                _wait_flowing(group, "A serving B's partitions")
                time.sleep(HOLD_S)
                marks["join"] = time.time()
                group.start(b)
                group.wait(lambda: group.assigned_members() == 2, "B joined")
            else:
                group.start(b)  # at once: back within the session timeout unless start-up is slower
            _wait_flowing(group, "every partition scored again")
            time.sleep(HOLD_S)
            marks["end"] = time.time()
        finally:
            sent = paced.stop()
        if sent == len(pairs):  # the load stopped before the scenario did: later gaps would be idle time
            raise RuntimeError(f"{sent} events offered were too few for the scenario; raise MAX_S")
        group.wait(lambda: sum(group.committed().values()) >= sent, "the offered events scored")
        return marks, group.output_times(), sent


def rebalance_pauses(config: ClientConfig, client: str, model_dir, rate: float = 2000.0) -> dict:
    """Longest output gaps (ms) at each membership change, dynamic and static membership."""
    return {
        "dynamic": _scenario(config, client, model_dir, rate, static=False),
        "static": _scenario(config, client, model_dir, rate, static=True),
    }
