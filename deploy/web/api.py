"""The JSON API, ``/api/v1``: score one customer or a batch, list the segments, the OpenAPI document.

``POST /api/v1/score`` takes one customer's fields, ``{"recency_days": 12, "frequency": 4, ...}`` for
an event model or the table's columns, ``{"age": 31, "channel": "online", ...}``, for a table model;
or ``{"customers": [{...}, {...}]}`` (a batch, scored in one vectorised call). A batch is all or
nothing: any invalid customer makes the whole request a 400 listing every bad field by its path
(``customers[3].frequency``). ``/api/v1/openapi.yaml`` is the full contract, with the served model's
own columns (``deploy.web.openapi``).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from deploy.web.errors import error_response
from deploy.web.fields import FieldError

__all__ = ["api"]

MAX_REPORTED_ERRORS = 100

api = Blueprint("api", __name__, url_prefix="/api/v1")


def _parts() -> dict[str, Any]:
    return current_app.extensions["segmenter"]


def _read_json() -> tuple[Any, Response | None]:
    """The request body as JSON, or an error response (415 wrong type, 400 unreadable)."""
    if not request.is_json:
        shown = request.mimetype or "none"
        return None, error_response(415, "unsupported_media_type",
                                    f"send Content-Type: application/json (got {shown})")  # fmt: skip
    raw = _read_body()
    try:
        return json.loads(raw.decode("utf-8")), None
    except UnicodeDecodeError as exc:
        return None, _invalid([FieldError("$", f"body is not UTF-8 (byte {exc.start})")])
    except json.JSONDecodeError as exc:
        return None, _invalid([FieldError("$", f"body is not JSON: {exc.msg} at line {exc.lineno} "
                                               f"column {exc.colno}")])  # fmt: skip
    except RecursionError:
        return None, _invalid([FieldError("$", "body is nested too deeply")])


def _read_body() -> bytes:
    """The request body; :class:`RequestEntityTooLarge` (413) beyond ``MAX_CONTENT_LENGTH``.

    werkzeug refuses a ``Content-Length`` over the limit, but a chunked body (no length) it cuts at
    the limit and returns what it read, which then failed as truncated JSON (a 400). So a body that
    fills the limit is checked for one more byte.
    """
    raw = request.get_data(cache=False)  # raises 413 when a Content-Length is over the limit
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    fills_limit = request.content_length is None and limit is not None and len(raw) >= limit
    # One byte more from the stream werkzeug stopped reading at the limit means the body is larger.
    if fills_limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return raw


def _invalid(errors: list[FieldError]) -> Response:
    _parts()["metrics"].rejected.labels("api").inc()
    shown = [e.to_dict() for e in errors[:MAX_REPORTED_ERRORS]]
    message = f"{len(errors)} invalid field(s): " + ", ".join(e.field for e in errors[:5])
    return error_response(400, "invalid_input", message, errors=shown, truncated=len(errors) > len(shown))


def _customers(body: Any) -> tuple[list[Any], bool, list[FieldError]]:
    """``(customers, is_batch, errors about the envelope)``."""
    if not isinstance(body, dict) or "customers" not in body:
        return [body], False, []
    customers, limit = body["customers"], current_app.config["SEGMENTER_MAX_BATCH"]
    beside = "is not allowed beside 'customers'"
    errors = [FieldError(str(k), beside, body[k]) for k in body if k != "customers"]
    if not isinstance(customers, list):
        errors.insert(0, FieldError("customers", "must be a list of customer objects", customers))
    elif not 1 <= len(customers) <= limit:
        errors.insert(0, FieldError("customers", f"must hold 1 to {limit} customers", len(customers)))
    return (customers if not errors else []), True, errors


@api.post("/score")
def score():
    body, failure = _read_json()
    if failure is not None:
        return failure
    service, metrics = _parts()["service"], _parts()["metrics"]
    customers, batch, errors = _customers(body)
    rows = []
    for i, customer in enumerate(customers):
        row, problems = service.validate(customer, prefix=f"customers[{i}]." if batch else "")
        rows.append(row)
        errors.extend(problems)
    if errors:
        return _invalid(errors)
    results = [service.result_dict(a, row) for a, row in zip(service.score(rows), rows, strict=True)]
    for result in results:
        metrics.scored.labels(str(result["segment_id"])).inc()
    model = service.model  # segment_ids: the id of each entry of a result's distances
    head = {
        "model_id": model.model_id,
        "schema_hash": model.spec.schema_hash(),
        "segment_ids": model.segment_ids,
    }
    return jsonify(head | ({"results": results} if batch else {"result": results[0]}))


@api.get("/segments")
def segments():
    service = _parts()["service"]
    model = service.model
    fields = [
        {"name": f.name, "label": f.label, "kind": f.kind, "unit": f.unit, "minimum": f.minimum,
         "maximum": f.maximum, "used": f.used, "nullable": f.nullable, "help": f.help,
         "choices": list(f.choices)}
        for f in service.fields.values()
    ]  # fmt: skip
    return jsonify(
        {
            "model_id": model.model_id,
            "algorithm": model.algorithm,
            "k": model.k,
            "metrics": model.manifest.get("metrics", {}),
            "segments": service.segments(),
            "fields": fields,
            "dropped_features": service.dropped,
        }
    )


@api.get("/openapi.yaml")
def openapi():
    return Response(_parts()["openapi"], mimetype="application/yaml")
