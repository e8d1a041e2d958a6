"""Error answers in the right language: JSON for API and operations paths, an HTML page otherwise."""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template, request

__all__ = ["error_response", "wants_json"]


def wants_json() -> bool:
    """Whether the current request expects a JSON error body."""
    return request.path.startswith("/api/") or request.path in ("/healthz", "/metrics")


def error_response(status: int, error: str, message: str, **extra: Any):
    """``(response, status)``: ``{"error", "message", ...extra}`` or the error page."""
    if wants_json():
        return jsonify({"error": error, "message": message, **extra}), status
    return render_template("error.html", status=status, message=message), status
