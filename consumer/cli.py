"""`segmenter consume`: the streaming scorer's composition root (reads settings, wires objects)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading

from consumer.settings import CONSUME, TOPICS, add_settings, build, client_config, min_event_ms, time_settings

log = logging.getLogger(__name__)
FENCED = 4  # exit code: another instance with the same --instance-id took over (see the README)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings(parser, *CONSUME)


def runner_settings(args: argparse.Namespace):
    """The runner's settings: every option of ``CONSUME`` that names a ``RunnerSettings`` field."""
    from consumer.processor import Topics
    from consumer.runner import RunnerSettings

    return build(
        RunnerSettings, args, *CONSUME, topics=build(Topics, args, TOPICS), min_event_ms=args.min_event_ms,
        time=time_settings(args),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from consumer.preflight import consume_problem

    try:
        args.min_event_ms = min_event_ms(args.min_event_time)
        args.time = time_settings(args)
    except ValueError as error:
        log.error("%s", error)
        return 2
    problem = consume_problem(args)  # before any topic, model or port is touched
    if problem:
        log.error("%s", problem)
        return 2
    from consumer.model_source import ModelSource

    wrap = None
    if args.model == "river":
        from model.online import OnlineKMeans

        def wrap(base):
            return OnlineKMeans(base, learning_rate=args.river_learning_rate)

    from consumer.metrics import ScorerMetrics
    from model.errors import ArtifactError, ConfigError
    from model.signing import UNVERIFIED_WARNING, resolve_model_key

    try:
        key = resolve_model_key(args.model_key_file, os.environ)
    except ConfigError as error:
        log.error("cannot start the scorer: %s", error)
        return 2
    if key is None:
        log.warning("%s", UNVERIFIED_WARNING)
    metrics = ScorerMetrics()
    try:
        model = ModelSource(
            args.model_dir,
            wrap=wrap,
            on_reload=metrics.record_model_reload,
            model_key=key,
            allow_unrelated=args.allow_unrelated_model,
        )
    except ArtifactError as error:  # nothing to serve: say why (the message names the file) and stop
        log.error("cannot start the scorer: %s", error)
        return 2
    shadow = None
    if args.shadow_model_dir:
        try:
            shadow = _shadow_source(args, model, key)
        except (ArtifactError, ValueError) as error:  # asked for: a start without it would mislead
            log.error("cannot start the scorer: shadow model: %s", error)
            return 2
    if args.source:
        return _run_files(args, model)
    return _run_kafka(args, model, metrics, shadow)


def _shadow_source(args: argparse.Namespace, live, key):
    """The candidate's ModelSource: the live model's schema and key; any later candidate may replace it.

    A new candidate need not descend from the previous one (it is compared, not published), so its
    reloads skip the lineage check; refusals and reloads are logged, not counted as the live model's.
    """
    from consumer.model_source import ModelSource
    from model.monitor import DriftMonitor

    def logged(result: str, detail: str) -> None:  # ModelSource logs the why of a refusal itself
        log.info("shadow model %s: %s", result, detail)

    def with_references(candidate):  # its own drift needs its training references (a reload too)
        DriftMonitor.from_manifest(candidate.manifest)
        return candidate

    return ModelSource(
        args.shadow_model_dir,
        expected_schema_hash=live.schema_hash,
        wrap=with_references,
        on_reload=logged,
        model_key=key,
        check_lineage=False,
        name="shadow model",
    )


def _run_files(args: argparse.Namespace, model) -> int:
    from consumer.file_mode import run_files

    summary = run_files(
        args.source,
        args.sink,
        model,
        dead_letters=args.dead_letters,
        batch_size=args.batch_size,
        emit_only_on_change=args.emit_only_on_change,
        min_event_ms=args.min_event_ms,
        clock=args.time,
    )
    log.info("file mode done: %s", vars(summary))
    return 0


def _run_kafka(args: argparse.Namespace, model, metrics, shadow=None) -> int:
    from consumer.backends import (
        AuthenticationError,
        BrokerUnavailableError,
        ConfigurationError,
        InstanceFencedError,
        ProducerFencedError,
        make_backend,
    )
    from consumer.dead_letter_limit import InvalidShareExceededError
    from consumer.http import MetricsServer, Readiness
    from consumer.runner import ScorerRunner
    from consumer.shutdown import install_sigterm
    from consumer.state_restore import RestoreRefusedError

    settings = runner_settings(args)
    backend = make_backend(args.client, client_config(args, f"segmenter-{args.instance_id}"))
    readiness = Readiness()
    runner = ScorerRunner(backend, settings, model, metrics=metrics, readiness=readiness, shadow=shadow)
    stop = threading.Event()
    restore_signals = install_sigterm(stop)
    with MetricsServer(metrics.registry, readiness, host=args.metrics_host, port=args.metrics_port) as server:
        log.info(
            "metrics on %s/metrics; model %s; %s",
            server.url,
            model().model_id,
            "exactly-once" if args.exactly_once else "at-least-once",
        )
        try:
            summary = runner.run(stop)
        except (AuthenticationError, BrokerUnavailableError, ConfigurationError) as error:
            # Wrong credentials, no broker, a bad setting: one clear line, not a stack trace.
            log.error("the scorer stopped: %s: %s", type(error).__name__, error)
            return 2
        except RestoreRefusedError as error:  # the stored state stops the start: where, and the way out
            log.error("the scorer refused to start: %s", error)
            return 2
        except InvalidShareExceededError as error:  # most input invalid: a wrong topic or schema
            log.error("the scorer stopped: %s", error)
            return 3
        except (InstanceFencedError, ProducerFencedError) as error:  # a newer instance took over
            log.error(
                "the scorer stopped: another instance uses --instance-id %s and took over (%s: %s)",
                args.instance_id, type(error).__name__, error,
            )  # fmt: skip
            return FENCED
        finally:
            restore_signals()
    json.dump({**vars(summary), "events_per_second": round(summary.events_per_second, 1)}, sys.stdout)
    sys.stdout.write("\n")
    return 0
