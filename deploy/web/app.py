"""The app factory: one Flask app over one model directory (the web app's composition root).

``create_app(model_dir)`` loads and verifies the artifact, builds the form from the spec the model
was trained from (any model: event features or a customer table's columns, ``deploy.web.schema``) and
registers the blueprints: the pages (:mod:`deploy.web.views`), the JSON API (:mod:`deploy.web.api`)
and operations (:mod:`deploy.web.ops`). Bootstrap is served from the installed Bootstrap-Flask
package, never from a CDN. CSRF protects every form; the JSON API is exempt (it takes no cookies).

Errors never leak a traceback: bad input is a 400 naming the fields, an oversized body a 413, a wrong
content type a 415; API paths answer JSON, pages answer HTML.

Every answer carries a Content-Security-Policy that allows nothing but this origin (the app has no
inline script or style and loads nothing from elsewhere), ``Referrer-Policy: no-referrer``,
``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, g, request
from flask_bootstrap import Bootstrap5
from flask_wtf.csrf import CSRFError, CSRFProtect
from prometheus_client import CollectorRegistry
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from deploy.cli import configure_logging
from deploy.web.errors import error_response
from deploy.web.forms import build_form_class
from deploy.web.metrics import WebMetrics
from deploy.web.openapi import openapi_document
from deploy.web.service import SegmentService
from model.signing import ModelKey, resolve_model_key

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MAX_BODY", "SECURITY_HEADERS", "create_app", "from_environment"]

DEFAULT_MAX_BODY = 1024 * 1024  # bytes: room for a batch of about 2,000 customers
DEFAULT_MAX_BATCH = 1000
# Bootstrap's CSS draws its form icons from data: URLs; everything else is a file of this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def create_app(
    model_dir: str | os.PathLike,
    *,
    config: Mapping[str, Any] | None = None,
    registry: CollectorRegistry | None = None,
    model_key: ModelKey | None = None,
) -> Flask:
    """The web app over ``model_dir``; ``config`` overrides Flask settings (tests turn CSRF off there).

    With ``model_key`` the artifact is loaded only if its signature matches (checked before unpickling).
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("SEGMENTER_WEB_SECRET_KEY") or secrets.token_hex(32),
        MAX_CONTENT_LENGTH=DEFAULT_MAX_BODY,
        MAX_FORM_MEMORY_SIZE=DEFAULT_MAX_BODY,
        SEGMENTER_MAX_BATCH=DEFAULT_MAX_BATCH,
        BOOTSTRAP_SERVE_LOCAL=True,
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session: forms left open stay usable
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    app.json.sort_keys = False  # keep results in the documented field order
    app.config.update(config or {})
    service = SegmentService.from_directory(model_dir, model_key)
    metrics = WebMetrics(registry)
    model = service.model
    metrics.model_info.labels(model.model_id, str(model.k), model.algorithm).set(1)
    app.extensions["segmenter"] = {
        "service": service,
        "metrics": metrics,
        "form_class": build_form_class(service.fields, service.date_fields),
        "model_dir": Path(model_dir),
        "openapi": openapi_document(service),
    }
    Bootstrap5(app)
    csrf = CSRFProtect(app)
    _register_blueprints(app, csrf)
    _register_hooks(app, metrics)
    _register_errors(app)
    log.info("web app serving model %s (k=%d) from %s", model.model_id, model.k, model_dir)
    return app


def from_environment() -> Flask:
    """The app for gunicorn workers: model directory from ``SEGMENTER_MODEL_DIR``.

    The signing key comes from ``SEGMENTER_MODEL_KEY_FILE`` or ``SEGMENTER_MODEL_KEY`` (``segmenter
    serve`` passes ``--model-key-file`` on as the former), so every worker verifies before unpickling.
    """
    configure_logging(  # JSON when SEGMENTER_LOG_FORMAT=json (``segmenter serve --log-format json``)
        os.environ.get("SEGMENTER_LOG_LEVEL", "INFO"),
        text_format="%(asctime)s %(levelname)s %(process)d %(name)s %(message)s",
    )
    key = resolve_model_key(None, os.environ)
    return create_app(os.environ.get("SEGMENTER_MODEL_DIR", "artifacts/cdnow"), model_key=key)


def _register_blueprints(app: Flask, csrf: CSRFProtect) -> None:
    from deploy.web.api import api
    from deploy.web.ops import ops
    from deploy.web.views import views

    csrf.exempt(api)  # JSON clients send no cookies, so there is no session to forge requests with
    csrf.exempt(ops)
    app.register_blueprint(views)
    app.register_blueprint(api)
    app.register_blueprint(ops)


def _register_hooks(app: Flask, metrics: WebMetrics) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _count(response):
        rule = request.url_rule.rule if request.url_rule is not None else None
        metrics.observe_request(rule, request.method, response.status_code, g.get("started", 0.0))
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return error_response(400, "csrf", f"The form could not be verified ({error.description}). "
                              "Reload the page and submit it again.")  # fmt: skip

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return error_response(413, "request_entity_too_large",
                              f"request body larger than {limit} bytes; send smaller batches")  # fmt: skip

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        code = error.code or 500
        name = (error.name or "error").lower().replace(" ", "_")
        return error_response(code, name, error.description or error.name)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # A bug, not bad input: log it with its traceback, answer without one.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", InternalServerError.description)
