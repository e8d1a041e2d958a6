"""The commit protocol of each delivery mode: a batch's state reaches memory only once it is durable.

A committer takes one processed batch (:class:`~consumer.processor.BatchResult`) and makes its
outputs and input offsets durable; only then does it apply the batch's new state entries to the
in-memory store. A batch the broker or the group refuses leaves the store exactly as the changelog
has it, and the consumer is sought back to the batch's first offsets to process it again:

- :class:`AtLeastOnceCommitter` (default): produce updates, dead letters and changelog, ``flush``
  (raises unless all were acknowledged; a broker briefly away is waited out, re-producing lost
  records), then commit the input offsets. A refused commit (the group moved on) redoes the batch;
  the outputs are already durable, so at worst identical updates are published again.
- :class:`ExactlyOnceCommitter`: the same records and the input offsets in one Kafka transaction; an
  aborted transaction, refused offsets or a broker that went away mid-transaction (the abort waits it
  out, up to the retry timeout) abort it and redo the batch, so a ``read_committed`` reader sees each
  event's effect once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from consumer.backends.abstract import Consumer, Producer, Record, TopicPartition
from consumer.backends.errors import BrokerUnavailableError, CommitFailedError, TransactionAbortedError
from consumer.metrics import ScorerMetrics
from consumer.processor import BatchResult, Processor
from consumer.retry import retry_transient

log = logging.getLogger(__name__)


class Committer:
    """Durable first, then in memory; a refused batch is read again (see module docstring)."""

    def __init__(
        self, producer: Producer, processor: Processor, metrics: ScorerMetrics, *, retry_timeout_s: float
    ) -> None:
        self.producer = producer
        self.processor = processor
        self.metrics = metrics
        self.retry_timeout_s = retry_timeout_s  # how long an unreachable broker is waited out

    def commit(self, records: Sequence[Record], result: BatchResult, consumer: Consumer) -> bool:
        """True once the batch is durable and applied; False if refused (the consumer seeks back).

        A member known to be fenced (another instance took its ``--instance-id``) raises
        :class:`InstanceFencedError` before producing anything of the batch.
        """
        consumer.raise_if_fenced()
        if self._durable(result, consumer):
            self.processor.commit_entries(result)
            return True
        # Nothing of the batch was applied in memory: read it again and redo it. Partitions the group
        # took away meanwhile are restored from the changelog by whoever owns them next.
        assigned = set(consumer.assignment())
        consumer.seek({tp: o for tp, o in first_offsets(records).items() if tp in assigned})
        return False

    def _durable(self, result: BatchResult, consumer: Consumer) -> bool:
        raise NotImplementedError

    def _produce(self, result: BatchResult) -> None:
        for out in result.outputs:
            self.producer.produce(out.topic, out.key, out.value, out.headers, partition=out.partition)


class AtLeastOnceCommitter(Committer):
    """Outputs flushed, then offsets committed."""

    def _durable(self, result: BatchResult, consumer: Consumer) -> bool:
        self._produce(result)
        # A broker briefly away (restart) is waited out, re-producing lost records (consumer/retry.py);
        # a longer outage raises, and as nothing was committed a restart re-reads the batch.
        timeout_s = self.retry_timeout_s
        reproduce = functools.partial(self._produce, result)
        retry_transient("flushing outputs", self.producer.flush, timeout_s=timeout_s, on_lost=reproduce)
        try:
            if result.offsets:  # a wall-clock tick between polls has outputs but no input offsets
                retry_transient(
                    "committing offsets", lambda: consumer.commit(result.offsets), timeout_s=timeout_s
                )
        except CommitFailedError as error:
            # The group moved on (a broker restart outlasting the session, a rebalance): the outputs are
            # durable but the offsets are not, so the batch is redone; at-least-once allows the repeats.
            self.metrics.record_commit("failed")
            log.warning("offset commit refused, the batch will be processed again: %s", error)
            return False
        self.metrics.record_commit("committed")
        return True


class ExactlyOnceCommitter(Committer):
    """Outputs and offsets in one transaction (``init_transactions`` must have run on the producer)."""

    def _durable(self, result: BatchResult, consumer: Consumer) -> bool:
        producer = self.producer
        producer.begin_transaction()
        try:
            self._produce(result)
            if result.offsets:
                producer.send_offsets_to_transaction(result.offsets, consumer.group_metadata())
            producer.commit_transaction()
        except (TransactionAbortedError, CommitFailedError, BrokerUnavailableError) as error:
            # Aborted by the broker, the offsets refused because the group moved on (a member id the
            # coordinator no longer knows after a broker restart), or the broker away mid-transaction:
            # abort (waiting the broker out) so nothing is visible, and redo the batch.
            log.warning("transaction failed, the batch will be processed again: %s", error)
            retry_transient(
                "aborting the transaction", producer.abort_transaction, timeout_s=self.retry_timeout_s
            )
            self.metrics.record_transaction("aborted")
            return False
        self.metrics.record_transaction("committed")
        return True


def committer_for(
    exactly_once: bool,
    producer: Producer,
    processor: Processor,
    metrics: ScorerMetrics,
    *,
    retry_timeout_s: float,
) -> Committer:
    """The committer of a delivery mode; exactly-once first fences a killed predecessor's transaction."""
    if exactly_once:
        producer.init_transactions()
        return ExactlyOnceCommitter(producer, processor, metrics, retry_timeout_s=retry_timeout_s)
    return AtLeastOnceCommitter(producer, processor, metrics, retry_timeout_s=retry_timeout_s)


def first_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """The earliest offset of each partition in a batch: where to read from to redo it."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        first.setdefault(record.topic_partition, record.offset)
    return first
