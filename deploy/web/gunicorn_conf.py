"""gunicorn settings for the web app (``segmenter serve`` passes them as ``python:deploy.web.gunicorn_conf``).

Every value comes from the environment that ``segmenter serve`` prepares (flags -> SEGMENTER_WEB_*,
``--log-format`` -> SEGMENTER_LOG_FORMAT), so ``gunicorn -c python:deploy.web.gunicorn_conf`` with the
same variables runs the same server.
Metrics use prometheus-client's multiprocess mode: the directory in ``PROMETHEUS_MULTIPROC_DIR`` is
emptied when the server starts (stale files would add old counts), and a worker that exits is marked
dead so its live gauges are dropped.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from prometheus_client import multiprocess

log = logging.getLogger("gunicorn.error")

wsgi_app = "deploy.web.app:from_environment()"
bind = [os.environ.get("SEGMENTER_WEB_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("SEGMENTER_WEB_WORKERS", "2"))
# Threads, not one connection per process: a slow client holds one thread, and the headers it does
# not finish are cut after SEGMENTER_WEB_HEADER_TIMEOUT seconds (deploy/web/worker.py).
worker_class = "deploy.web.worker.HeaderDeadlineWorker"
threads = int(os.environ.get("SEGMENTER_WEB_THREADS", "8"))
timeout = int(os.environ.get("SEGMENTER_WEB_TIMEOUT", "30"))  # a worker silent this long is restarted
graceful_timeout = 20  # SIGTERM: requests in flight get this long to finish
keepalive = 5  # an idle kept-alive connection waits in the poller (no thread) this long
preload_app = False  # each worker loads the model itself, after the fork, with its own metric files
accesslog = os.environ.get("SEGMENTER_WEB_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("SEGMENTER_LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms pid=%(p)s "%(a)s"'
if os.environ.get("SEGMENTER_LOG_FORMAT") == "json":  # `segmenter serve --log-format json`
    logger_class = "deploy.web.gunicorn_log.JsonLogger"  # error and access lines as JSON objects
# Heartbeat files on tmpfs: a disk-backed /tmp can stall them and get healthy workers killed.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None
limit_request_line = 4094  # the longest URL the app has is under 100 bytes
limit_request_fields = 50
limit_request_field_size = 8190
# gunicorn >= 25 opens a per-user control socket; one path per user would clash between instances.
control_socket_disable = True


def on_starting(server) -> None:
    """Start from an empty metrics directory."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        log.warning("PROMETHEUS_MULTIPROC_DIR is not set: /metrics will show one worker's counts only")
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics directory when ``segmenter serve`` created it for this run."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.environ.get("SEGMENTER_WEB_OWNS_METRICS_DIR") == "1":
        shutil.rmtree(directory, ignore_errors=True)
