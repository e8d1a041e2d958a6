"""Scorer instances as real ``segmenter consume`` processes in one consumer group, and what the bench
reads back: the group's members and committed offsets, and the output records' timestamps.

Separate processes, not threads: two instances in one Python process would share one GIL and measure
nothing about scaling out. Every process this module starts is stopped by :meth:`ScorerGroup.close`
(SIGTERM, then SIGKILL after a grace period), so a failed run leaves no scorer behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from bench.workload import REPO
from consumer.backends import ClientConfig, TopicPartition, TopicSpec, make_backend
from consumer.processor import Topics

PARTITIONS = 6


class ScorerGroup:
    """Scorer processes of one group over ``name``-in (``PARTITIONS`` partitions), started by id."""

    def __init__(
        self, config: ClientConfig, client: str, model_dir: Path, name: str, *, static: bool = False
    ) -> None:
        self.config, self.client, self.model_dir, self.static = config, client, model_dir, static
        self.group = name
        self.topics = Topics(f"{name}-in", f"{name}-out", f"{name}-dlq", f"{name}-state")
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs = tempfile.TemporaryDirectory(prefix="bench-scale-out-")
        self._admin = AdminClient({"bootstrap.servers": config.bootstrap_servers, "log_level": 4})
        # Created here, once: instances starting together would otherwise race to create them.
        t, compact = self.topics, {"cleanup.policy": "compact"}
        specs = [TopicSpec(t.input, PARTITIONS), TopicSpec(t.dead_letter, PARTITIONS)]
        specs += [TopicSpec(topic, PARTITIONS, config=compact) for topic in (t.output, t.changelog)]
        make_backend("confluent", config).ensure_topics(specs)

    def start(self, instance: str) -> None:
        t = self.topics
        command = [
            sys.executable, "-m", "deploy.cli", "consume", "--client", self.client,
            "--bootstrap-servers", self.config.bootstrap_servers, "--model-dir", str(self.model_dir),
            "--group-id", self.group, "--instance-id", instance, "--metrics-port", "0",
            "--input-topic", t.input, "--output-topic", t.output, "--dlq-topic", t.dead_letter,
            "--changelog-topic", t.changelog, "--partitions", str(PARTITIONS), "--log-level", "WARNING",
        ]  # fmt: skip
        command += ["--static-membership"] if self.static else []
        log = Path(self._logs.name, f"{instance}.log").open("ab")  # noqa: SIM115 - the child holds it
        self.processes[instance] = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log)
        log.close()

    def stop(self, instance: str, timeout_s: float = 60.0) -> None:
        """SIGTERM (the scorer finishes and commits its batch, then closes) and wait for the exit."""
        process = self.processes.pop(instance)
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"scorer {instance} ignored SIGTERM for {timeout_s:.0f}s") from None
        if code != 0:
            raise RuntimeError(f"scorer {instance} exited {code}: {self.log_tail(instance)}")

    def check_alive(self) -> None:
        for instance, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"scorer {instance} died (exit {process.returncode}): {self.log_tail(instance)}"
                )

    def cpu_seconds(self) -> float:
        """User plus system CPU the running instances have used so far (Linux ``/proc``)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for process in self.processes.values():
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
        return total / ticks

    def log_tail(self, instance: str) -> str:
        return Path(self._logs.name, f"{instance}.log").read_text(errors="replace")[-2000:]

    def close(self) -> None:
        """Stop whatever is still running; SIGKILL what does not stop within 30 s."""
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self._logs.cleanup()

    def __enter__(self) -> ScorerGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the group as the broker sees it --------------------------------------------------------------

    def assigned_members(self) -> int:
        """Members of a stable group that hold partitions (0 while it rebalances)."""
        description = self._admin.describe_consumer_groups([self.group])[self.group].result(timeout=10)
        if description.state != ConsumerGroupState.STABLE:
            return 0
        return sum(1 for m in description.members if m.assignment and m.assignment.topic_partitions)

    def committed(self) -> dict[int, int]:
        """Committed next offset per input partition (0 where nothing is committed yet)."""
        request = [ConsumerGroupTopicPartitions(self.group)]
        result = self._admin.list_consumer_group_offsets(request)[self.group].result(timeout=10)
        offsets = {p: 0 for p in range(PARTITIONS)}
        offsets.update({tp.partition: max(tp.offset, 0) for tp in result.topic_partitions})
        return offsets

    def wait(self, done: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
        """Poll ``done`` twice a second (the scorers must stay alive meanwhile) until true or timeout."""
        deadline = time.monotonic() + timeout_s
        while not done():
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")
            time.sleep(0.5)  # a bench polling the broker, not a test: the interval only sets precision

    def output_times(self) -> dict[int, list[int]]:
        """Sorted produce timestamps (ms, the scorer's clock) of every output record, per partition.

        The output is keyed by customer id like the input and has as many partitions, so an output
        partition holds exactly the updates of the input partition with its number.
        """
        backend = make_backend("confluent", self.config)
        partitions = [TopicPartition(self.topics.output, p) for p in range(PARTITIONS)]
        times: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
        for record in backend.read_partitions(partitions, isolation_level="read_uncommitted", timeout_s=120):
            times[record.partition].append(record.timestamp_ms)
        return {p: sorted(ts) for p, ts in times.items()}
