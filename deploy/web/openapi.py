"""The OpenAPI document of the served model: ``openapi.yaml``, with a table model's own columns.

``openapi.yaml`` is written for an event model (its customer is the event feature spec, dates
included) and is served as it is for one. For a table model the customer schema, the examples and
the description are generated from the model's fields instead: its columns with their labels, units,
ranges and, for categorical ones, the values seen in training as an ``enum``; the columns the model
uses are ``required``. The document is built once, when the app starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from deploy.web.fields import MAX_TEXT, CustomerField

if TYPE_CHECKING:
    from deploy.web.service import SegmentService

__all__ = ["OPENAPI_FILE", "openapi_document"]

OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")

TABLE_DESCRIPTION = """\
Score customers with the segmentation model the server was started with. It was trained on a customer
table (`segmenter train --table`), and the input is one row of that table: the columns below, the
ones the model uses required. `GET /api/v1/segments` lists them too, with `used`, `choices` and
`nullable`. `{id}` is an optional id, echoed back and never scored.

Numbers must be finite and inside the column's range. A categorical column takes only the values
seen in training (its `enum`): any other value is a 400 listing the allowed ones. `null` means
"unknown" and is accepted only for the columns the training table had gaps in (marked nullable); the
model imputes them as in training. Columns the model dropped in training are optional, validated and
ignored. Unknown field names are rejected.

Every invalid request gets a 4xx with a JSON body; the API never answers 5xx on bad input.
"""


def openapi_document(service: SegmentService) -> str:
    """The YAML text of the document for ``service``'s model."""
    text = OPENAPI_FILE.read_text(encoding="utf-8")
    if service.events:
        return text
    document = yaml.safe_load(text)
    document["info"]["description"] = TABLE_DESCRIPTION.format(id=service.id_column)
    schemas = document["components"]["schemas"]
    schemas["Customer"] = _customer_schema(service)
    result = schemas["Result"]["properties"]
    result.pop("as_of")
    result = {service.id_column: result.pop("customer_id"), **result}
    schemas["Result"]["properties"] = result
    example = _example(service)
    body = document["paths"]["/api/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    body["examples"] = {
        "single": {"value": example},
        "batch": {"value": {"customers": [{service.id_column: "c1", **example}]}},
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


def _customer_schema(service: SegmentService) -> dict[str, Any]:
    properties: dict[str, Any] = {
        service.id_column: {
            "type": "string",
            "maxLength": 256,
            "description": "optional; echoed back, never scored",
        }
    }
    properties |= {
        name: _property(field, service.dropped.get(name)) for name, field in service.fields.items()
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "One row of the training table; the columns the model uses are required.",
        "required": [name for name, field in service.fields.items() if field.used],
        "properties": properties,
    }


def _property(field: CustomerField, dropped: str | None) -> dict[str, Any]:
    kind = "number" if field.kind == "number" else "string"
    schema: dict[str, Any] = {"type": [kind, "null"] if field.nullable or not field.used else kind}
    schema["title"] = field.label
    if field.kind == "number":
        schema |= {k: v for k, v in (("minimum", field.minimum), ("maximum", field.maximum)) if v is not None}
    else:
        schema["maxLength"] = MAX_TEXT
    if field.choices:
        schema["enum"] = [*field.choices, *([None] if field.nullable else [])]
    words = [
        field.help,
        f"unit: {field.unit}" if field.unit else "",
        "null: unknown" if field.nullable else "",
    ]
    if not field.used:
        words.append(f"ignored by this model ({dropped or 'not used'})")
    described = "; ".join(w for w in words if w)
    return schema | ({"description": described} if described else {})


def _example(service: SegmentService) -> dict[str, Any]:
    """The typical customer of the largest segment: its medians and most common values."""
    profiles = service.model.profiles
    profile = max(profiles, key=lambda p: p.get("size") or 0) if profiles else {}
    typical = (profile.get("median") or {}) | (profile.get("mode") or {})
    return {name: typical.get(name) for name, field in service.fields.items() if field.used}
