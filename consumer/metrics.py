"""Prometheus metrics of the streaming scorer, on an injectable registry.

Every metric is created on the ``CollectorRegistry`` given to ``ScorerMetrics`` (tests build a fresh
one each; the consumer passes ``prometheus_client.REGISTRY`` or its own). Names follow the Prometheus
conventions: prefix ``segmenter_``, base units (seconds), ``_total`` on counters, and no per-customer
labels: segment ids (bounded by k), feature names (bounded by the spec), partitions and fixed result
words are the only label values.

The processor calls a few coarse methods per batch, so its loop stays short::

    metrics.observe_batch(consumed=500, valid=498, invalid={"not_json": 2}, dead_lettered=2)
    metrics.scoring_latency.observe(result.scoring_seconds)  # the processor times its scoring call
    metrics.record_assignments([a.segment_id for a in assignments], changed_flags)
    metrics.observe_end_to_end(event_times_ms, published_at_s=time.time())
    metrics.record_commit("committed")
    metrics.set_drift(drift_monitor.snapshot())
    metrics.set_shadow(shadow_model.snapshot())  # with --shadow-model-dir

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = ScorerMetrics(registry)
>>> metrics.observe_batch(consumed=3, valid=2, invalid={"not_json": 1}, dead_lettered=1)
>>> registry.get_sample_value("segmenter_events_invalid_total", {"reason": "not_json"})
1.0
"""

from __future__ import annotations

import math
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Scoring one batch: sub-millisecond for a few customers up to seconds for a huge batch.
SCORING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Event time -> publish: live traffic lands in the first buckets; a replay of old history in the last.
END_TO_END_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
RESTORE_BUCKETS = (0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
COMMIT_RESULTS = ("committed", "failed")
TRANSACTION_RESULTS = ("committed", "aborted", "failed")
RELOAD_RESULTS = ("loaded", "refused")
# Why an event was dropped as already applied: one word per check (adding a kind is one line here).
# offset: at or below the last offset the customer's state applied; event_id: among its recent event ids
DUPLICATE_KINDS = ("offset", "event_id")
# consumer.model_source: refusal_reason, and "unrelated" (a lineage without the live model)
REFUSAL_REASONS = ("signature", "integrity", "schema", "invalid", "unrelated")


class ScorerMetrics:
    """All scorer metrics, created on ``registry`` (a fresh ``CollectorRegistry`` when None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "segmenter_events_consumed", "Events read from the input topic.", registry=r
        )
        self.events_valid = Counter(
            "segmenter_events_valid", "Events that decoded and validated.", registry=r
        )
        self.events_invalid = Counter(
            "segmenter_events_invalid", "Events rejected, by reason code.", ["reason"], registry=r
        )
        self.events_dead_lettered = Counter(
            "segmenter_events_dead_lettered", "Events written to the dead-letter topic.", registry=r
        )
        self.erasures = Counter("segmenter_erasures", "Customers deleted by erase events.", registry=r)
        self.attributes_unknown = Counter(
            "segmenter_attributes_unknown",
            "Profile attributes that are neither a column of the model nor a demographic (ignored).",
            registry=r,
        )
        self.features_out_of_range = Counter(
            "segmenter_features_out_of_range",
            "Scored feature values outside the feature spec's declared range (scored anyway).",
            ["feature"],
            registry=r,
        )
        self.segment_assignments = Counter(
            "segmenter_segment_assignments",
            "Customers scored, by assigned segment id.",
            ["segment"],
            registry=r,
        )
        self.segment_changes = Counter(
            "segmenter_segment_changes",
            "Customers whose segment changed, by new segment id.",
            ["segment"],
            registry=r,
        )
        self.customers_tracked = Gauge("segmenter_customers_tracked", "Customers held in state.", registry=r)
        self.batch_size = Histogram(
            "segmenter_batch_size_events", "Events per polled batch.", buckets=BATCH_BUCKETS, registry=r
        )
        self.scoring_latency = Histogram(
            "segmenter_scoring_latency_seconds",
            "Time of one vectorised scoring call.",
            buckets=SCORING_BUCKETS,
            registry=r,
        )
        self.end_to_end_latency = Histogram(
            "segmenter_end_to_end_latency_seconds",
            "Event time to publication of the segment update.",
            buckets=END_TO_END_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "segmenter_consumer_lag_records",
            "High watermark minus position.",
            ["topic", "partition"],
            registry=r,
        )
        self.commits = Counter("segmenter_commits", "Offset commits, by result.", ["result"], registry=r)
        self.transactions = Counter(
            "segmenter_transactions", "Kafka transactions, by result.", ["result"], registry=r
        )
        self.restore_duration = Histogram(
            "segmenter_state_restore_duration_seconds",
            "Time to restore assigned partitions' state from the changelog.",
            buckets=RESTORE_BUCKETS,
            registry=r,
        )
        self.restore_records = Counter(
            "segmenter_state_restore_records", "Changelog records read while restoring.", registry=r
        )
        self.restore_invalid = Counter(
            "segmenter_restore_invalid",
            "Changelog entries quarantined at restore (invalid last value or key), by partition.",
            ["partition"],
            registry=r,
        )
        self.events_duplicate = Counter(
            "segmenter_events_duplicate",
            "Events dropped as already applied to the state, by kind of check.",
            ["kind"],
            registry=r,
        )
        self.model_info = Info("segmenter_model", "The model being served.", registry=r)
        self.model_reloads = Counter(
            "segmenter_model_reloads", "Model hot reloads, by result.", ["result"], registry=r
        )
        self.model_refusals = Counter(
            "segmenter_model_refusals",
            "Model artifacts refused at hot reload, by reason (signature, integrity, schema, invalid, "
            "unrelated).",
            ["reason"],
            registry=r,
        )
        self._series: dict[int, set[str]] = {}
        self._init_clock(r)
        self._init_drift(r)
        self._init_shadow(r)
        self._prime()

    def _init_clock(self, r: CollectorRegistry) -> None:
        self.stream_time = Gauge(
            "segmenter_stream_time_seconds",
            "Stream time of an input partition: the largest event time applied (Unix seconds).",
            ["partition"],
            registry=r,
        )
        self.stream_time_lag = Gauge(
            "segmenter_stream_time_lag_seconds",
            "Wall clock minus a partition's stream time: how far behind its customers' ageing is.",
            ["partition"],
            registry=r,
        )
        self.ticks = Counter(
            "segmenter_ticks", "Ageing ticks run (one per partition per boundary).", registry=r
        )
        self.ageing_updates = Counter(
            "segmenter_ageing_updates",
            "Segment updates published by ageing ticks (reason=ageing).",
            registry=r,
        )
        self.state_expired = Counter(
            "segmenter_state_expired", "Customers dropped by --state-ttl at a tick.", registry=r
        )
        self.ageing_customers = Counter(
            "segmenter_ageing_customers",
            "Stored customers ageing ticks re-scored (result=rescored) or skipped because they "
            "provably stayed in their segment (result=skipped).",
            ["result"],
            registry=r,
        )
        self.sweep_pending = Gauge(
            "segmenter_model_sweep_pending_partitions",
            "Owned partitions whose stored segments still come from another model than the live one.",
            registry=r,
        )
        self.swept = Counter(
            "segmenter_model_sweep_customers",
            "Stored customers re-scored because a new model became live.",
            registry=r,
        )
        self.model_change_updates = Counter(
            "segmenter_model_change_updates",
            "Segment updates published by model-change sweeps (reason=model_change).",
            registry=r,
        )

    def set_stream_times(self, stream_seconds: Mapping[int, float], now: float) -> None:
        """Each owned partition's stream time and its gap to ``now``; partitions not given are removed."""
        self._replace(self.stream_time, {str(p): t for p, t in stream_seconds.items()})
        self._replace(self.stream_time_lag, {str(p): now - t for p, t in stream_seconds.items()})

    def record_sweeps(self, customers: int, updates: int, pending_partitions: int) -> None:
        self.swept.inc(customers)
        self.model_change_updates.inc(updates)
        self.sweep_pending.set(pending_partitions)

    def record_ageing(
        self, ticks: int, updates: int, expired: int, rescored: int = 0, skipped: int = 0
    ) -> None:
        self.ticks.inc(ticks)
        self.ageing_customers.labels(result="rescored").inc(rescored)
        self.ageing_customers.labels(result="skipped").inc(skipped)
        self.ageing_updates.inc(updates)
        self.state_expired.inc(expired)

    def _init_drift(self, r: CollectorRegistry) -> None:
        self.drift_psi = Gauge(
            "segmenter_drift_segment_psi", "PSI of live vs training segment shares.", registry=r
        )
        self.drift_js = Gauge(
            "segmenter_drift_segment_js_distance",
            "Jensen-Shannon distance (base 2) of segment shares.",
            registry=r,
        )
        self.drift_linf = Gauge(
            "segmenter_drift_segment_linf", "Largest change of one segment's share.", registry=r
        )
        self.drift_feature_psi = Gauge(
            "segmenter_drift_feature_psi", "PSI of a feature on its baseline bins.", ["feature"], registry=r
        )
        self.drift_feature_wasserstein = Gauge(
            "segmenter_drift_feature_wasserstein",
            "Normalised Wasserstein distance, numeric features.",
            ["feature"],
            registry=r,
        )
        self.drift_state = Gauge("segmenter_drift_state", "Drift state: 0 ok, 1 warn, 2 alert.", registry=r)
        self.drift_samples = Gauge(
            "segmenter_drift_window_samples", "Assignments in the drift window.", registry=r
        )
        self.segment_share = Gauge(
            "segmenter_segment_share", "Share of the drift window per segment.", ["segment"], registry=r
        )
        self.segment_expected_share = Gauge(
            "segmenter_segment_expected_share", "Training share per segment.", ["segment"], registry=r
        )

    def _init_shadow(self, r: CollectorRegistry) -> None:
        """The candidate of ``--shadow-model-dir`` against the live model (NaN, no info, without one)."""
        self.shadow_info = Gauge(
            "segmenter_shadow_info", "The shadow (candidate) model, 1 while it is scored.", ["model_id"],
            registry=r,
        )  # fmt: skip
        self.shadow_agreement = Gauge(
            "segmenter_shadow_agreement_ratio",
            "Share of the shadow window where the shadow gives the live segment id.",
            registry=r,
        )
        self.shadow_ari = Gauge(
            "segmenter_shadow_adjusted_rand_index",
            "Adjusted Rand index of the live and shadow segmentations over the window.",
            registry=r,
        )
        self.shadow_samples = Gauge(
            "segmenter_shadow_window_samples", "Assignments in the shadow comparison window.", registry=r
        )
        self.shadow_transitions = Gauge(
            "segmenter_shadow_transitions",
            "Assignments of the window per live segment and shadow segment.",
            ["live", "shadow"],
            registry=r,
        )
        self.shadow_drift_psi = Gauge(
            "segmenter_shadow_drift_segment_psi", "PSI of the shadow's segment shares.", registry=r
        )
        self.shadow_drift_js = Gauge(
            "segmenter_shadow_drift_segment_js_distance",
            "Jensen-Shannon distance (base 2) of the shadow's segment shares.",
            registry=r,
        )
        self.shadow_drift_linf = Gauge(
            "segmenter_shadow_drift_segment_linf", "Largest change of one shadow segment's share.", registry=r
        )
        self.shadow_drift_state = Gauge(
            "segmenter_shadow_drift_state", "Shadow drift state: 0 ok, 1 warn, 2 alert.", registry=r
        )
        self.shadow_drift_feature_psi = Gauge(
            "segmenter_shadow_drift_feature_psi",
            "PSI of a feature on the shadow's baseline bins.",
            ["feature"],
            registry=r,
        )

    def _prime(self) -> None:
        """Create the fixed-label series at zero, so rates and alerts see them before the first event."""
        for result in COMMIT_RESULTS:
            self.commits.labels(result=result)
        for result in TRANSACTION_RESULTS:
            self.transactions.labels(result=result)
        for result in RELOAD_RESULTS:
            self.model_reloads.labels(result=result)
        for kind in DUPLICATE_KINDS:
            self.events_duplicate.labels(kind=kind)
        for reason in REFUSAL_REASONS:
            self.model_refusals.labels(reason=reason)
        for gauge in (self.drift_psi, self.drift_js, self.drift_linf):
            gauge.set(math.nan)
        shadow = (self.shadow_agreement, self.shadow_ari, self.shadow_drift_psi, self.shadow_drift_js)
        for gauge in (*shadow, self.shadow_drift_linf, self.shadow_drift_state):
            gauge.set(math.nan)  # no shadow model (yet): not 0, which would read as total disagreement

    def observe_batch(
        self, *, consumed: int, valid: int, invalid: Mapping[str, int] | None = None, dead_lettered: int = 0
    ) -> None:
        """Count one polled batch: events read, valid, invalid by reason code, dead-lettered."""
        self.events_consumed.inc(consumed)
        self.events_valid.inc(valid)
        for reason, count in (invalid or {}).items():
            self.events_invalid.labels(reason=reason).inc(count)
        self.events_dead_lettered.inc(dead_lettered)
        self.batch_size.observe(consumed)

    def observe_admission(
        self, *, erasures: int, out_of_range: Mapping[str, int], attributes_unknown: int = 0
    ) -> None:
        """Count one batch's erasures, out-of-range feature values and unknown profile attributes."""
        self.erasures.inc(erasures)
        self.attributes_unknown.inc(attributes_unknown)
        for feature, count in out_of_range.items():
            self.features_out_of_range.labels(feature=feature).inc(count)

    def record_assignments(self, segment_ids: Iterable[int], changed: Iterable[bool] | None = None) -> None:
        """Count assignments per segment and, where ``changed`` is true, segment changes."""
        segment_ids = list(segment_ids)
        for segment, count in Tally(segment_ids).items():
            self.segment_assignments.labels(segment=str(segment)).inc(count)
        if changed is not None:
            moved = Tally(s for s, c in zip(segment_ids, changed, strict=True) if c)
            for segment, count in moved.items():
                self.segment_changes.labels(segment=str(segment)).inc(count)

    def observe_end_to_end(self, event_times_ms: Iterable[int], published_at_s: float | None = None) -> None:
        """Latency from each update's event time (epoch ms) to its publication (epoch s, default now)."""
        now = time.time() if published_at_s is None else published_at_s
        for ts_ms in event_times_ms:
            self.end_to_end_latency.observe(max(now - ts_ms / 1000.0, 0.0))

    def set_customers_tracked(self, count: int) -> None:
        self.customers_tracked.set(count)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's lag series, so it does not report a stale value forever."""
        try:
            self.consumer_lag.remove(topic, str(partition))
        except KeyError:
            return

    def record_commit(self, result: str) -> None:
        self.commits.labels(result=_checked(result, COMMIT_RESULTS)).inc()

    def record_transaction(self, result: str) -> None:
        self.transactions.labels(result=_checked(result, TRANSACTION_RESULTS)).inc()

    def record_restore(self, seconds: float, records: int) -> None:
        self.restore_duration.observe(seconds)
        self.restore_records.inc(records)

    def record_restore_invalid(self, partition: int, count: int = 1) -> None:
        self.restore_invalid.labels(partition=str(partition)).inc(count)

    def record_duplicates(self, kind: str, count: int) -> None:
        self.events_duplicate.labels(kind=_checked(kind, DUPLICATE_KINDS)).inc(count)

    def set_model(self, model_id: str, k: int, algorithm: str) -> None:
        self.model_info.info({"model_id": str(model_id), "k": str(k), "algorithm": str(algorithm)})

    def record_model_reload(self, result: str, detail: str | None = None) -> None:
        """Count a reload; for ``refused``, ``detail`` is the reason (one of ``REFUSAL_REASONS``)."""
        self.model_reloads.labels(result=_checked(result, RELOAD_RESULTS)).inc()
        if result == "refused":
            reason = detail if detail in REFUSAL_REASONS else "invalid"
            self.model_refusals.labels(reason=reason).inc()

    def set_drift(self, report: Any) -> None:
        """Publish a ``model.monitor.DriftReport`` (duck-typed: the same attribute names)."""
        self.drift_psi.set(report.psi)
        self.drift_js.set(report.js)
        self.drift_linf.set(report.linf)
        self.drift_state.set(report.level)
        self.drift_samples.set(report.samples)
        self._replace(self.drift_feature_psi, report.feature_psi)
        self._replace(self.drift_feature_wasserstein, report.feature_wasserstein)
        ids = getattr(report, "segment_ids", None) or range(len(report.window_shares))  # published ids
        self._replace(self.segment_share, {str(s): v for s, v in zip(ids, report.window_shares, strict=True)})
        self._replace(
            self.segment_expected_share, {str(s): v for s, v in zip(ids, report.expected_shares, strict=True)}
        )

    def set_shadow(self, report: Any) -> None:
        """Publish a ``model.shadow.ShadowReport`` (duck-typed), its drift included."""
        self._replace(self.shadow_info, {str(report.model_id): 1.0})
        self.shadow_agreement.set(report.agreement)
        self.shadow_ari.set(report.adjusted_rand_index)
        self.shadow_samples.set(report.samples)
        cells = {(str(a), str(b)): n for (a, b), n in report.transitions.items()}
        self._replace(self.shadow_transitions, cells)
        drift = report.drift
        self.shadow_drift_psi.set(drift.psi)
        self.shadow_drift_js.set(drift.js)
        self.shadow_drift_linf.set(drift.linf)
        self.shadow_drift_state.set(drift.level)
        self._replace(self.shadow_drift_feature_psi, drift.feature_psi)

    def _replace(self, gauge: Gauge, values: Mapping[Any, float]) -> None:
        """Set one labelled series per key and remove the series whose key vanished (model reload)."""
        stale = self._series.get(id(gauge), set()) - set(values)
        for key, value in values.items():  # a tuple key: one value per label (the shadow transitions)
            gauge.labels(*key if isinstance(key, tuple) else (key,)).set(value)
        for key in stale:
            gauge.remove(*key if isinstance(key, tuple) else (key,))
        self._series[id(gauge)] = set(values)


def _checked(result: str, allowed: tuple[str, ...]) -> str:
    if result not in allowed:
        raise ValueError(f"result {result!r} is not one of {allowed}")
    return result
