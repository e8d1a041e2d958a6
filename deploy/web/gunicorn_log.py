"""gunicorn's logger writing JSON lines, for ``segmenter serve --log-format json``.

``deploy.web.gunicorn_conf`` selects it when ``SEGMENTER_LOG_FORMAT=json``. Error-log lines (the
master's and the workers') are formatted by the same :class:`~deploy.cli.JsonFormatter` as every other
``segmenter`` command; an access-log line keeps the configured ``access_log_format`` text as its
``message`` and adds the request's fields: ``remote``, ``method``, ``path``, ``query``, ``status``,
``bytes``, ``duration_ms``, ``user_agent`` and the worker's ``pid``.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from gunicorn.glogging import Logger

from deploy.cli import JsonFormatter

__all__ = ["JsonLogger"]


class JsonLogger(Logger):
    """gunicorn's ``Logger`` with JSON formatters on its handlers and structured access lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        fields = {
            "remote": atoms["h"],
            "method": atoms["m"],
            "path": atoms["U"],
            "query": atoms["q"],
            "status": _status(atoms["s"]),
            "bytes": atoms["B"],
            "duration_ms": atoms["D"] / 1000,
            "user_agent": atoms["a"],
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(self.cfg.access_log_format, self.atoms_wrapper_class(atoms), extra=fields)
        except Exception:
            self.error(traceback.format_exc())


def _status(value: Any) -> int | str:
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)
