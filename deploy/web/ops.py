"""Operations endpoints: ``/healthz`` (the model is loaded and answers) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from deploy.web.metrics import CONTENT_TYPE_LATEST

__all__ = ["ops"]

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz():
    model = current_app.extensions["segmenter"]["service"].model
    return jsonify({"status": "ok", "model_id": model.model_id, "k": model.k})


@ops.get("/metrics")
def metrics():
    body = current_app.extensions["segmenter"]["metrics"].exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)
