"""The pages: the customer form, its result, and the segments of the model (any model: its fields and
their readable names come from the service)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template, send_file

from deploy.web.charts import bar_chart, diverging_chart, scatter_chart
from deploy.web.forms import form_row
from deploy.web.service import SegmentService

__all__ = ["views"]

REPORT_FILE = "report.html"
SHOWN_PUSHES = 3

views = Blueprint("views", __name__)


def _parts() -> dict[str, Any]:
    return current_app.extensions["segmenter"]


@views.route("/", methods=["GET", "POST"])
def customer_form():
    parts = _parts()
    service: SegmentService = parts["service"]
    form = parts["form_class"]()
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        if status == 400:
            parts["metrics"].rejected.labels("form").inc()
        return render_template("form.html", form=form, service=service), status
    row, errors = service.validate(form_row(form, service.fields, service.date_fields))
    if errors:  # the form's validators and the API's rules agree; this is the backstop
        for error in errors:
            form[error.field].errors = [*form[error.field].errors, error.problem]
        parts["metrics"].rejected.labels("form").inc()
        return render_template("form.html", form=form, service=service), 400
    (assignment,) = service.score([row])
    parts["metrics"].scored.labels(str(assignment.segment_id)).inc()
    return render_template("result.html", **_result_context(service, row, assignment))


def _result_context(service: SegmentService, row: dict, assignment) -> dict[str, Any]:
    model = service.model  # distances are in the order of model.segment_ids
    pairs = zip(model.segment_ids, model.segment_names, assignment.distances, strict=True)
    bars = [(f"{segment}: {name}", d) for segment, name, d in pairs]
    pushes = service.explain(row, assignment)
    used = [f for f in service.fields.values() if f.used]
    return {
        "service": service,
        "row": row,
        "assignment": assignment,
        "profile": service.profile(assignment.segment_id),
        "used_fields": used,
        "ignored": service.ignored(row),
        "pushes": pushes,
        "top_pushes": [p for p in pushes if p.amount > 0][:SHOWN_PUSHES],
        "runner_up_name": _runner_up_name(service, assignment),
        "distance_chart": bar_chart(
            bars, highlight=model.index_of(assignment.segment_id), title="distance to each segment's centre"
        ),
        "push_chart": diverging_chart(
            [(service.title(p.feature), p.amount) for p in pushes],
            title="how much each feature pulled towards this segment (right) or the runner-up (left)",
        ),
    }


def _runner_up_name(service: SegmentService, assignment) -> str | None:
    other = service.runner_up(assignment)
    return None if other is None else service.model.segment_name(other)


@views.get("/segments")
def segments():
    service: SegmentService = _parts()["service"]
    projection = service.projection
    chart = None
    if projection:
        names = projection.get("segment_names") or service.model.segment_names
        title = "training customers in 2-D (PCA of the transformed features)"
        chart = scatter_chart(
            projection["x"], projection["y"], projection["segment"], names,
            ids=service.model.segment_ids, title=title,  # the points are by cluster index
        )  # fmt: skip
    report = (_parts()["model_dir"] / REPORT_FILE).is_file()
    return render_template(
        "segments.html", service=service, segments=service.segments(), projection=projection,
        projection_chart=chart, has_report=report, manifest=service.model.manifest,
    )  # fmt: skip


@views.get("/segments/report")
def training_report():
    path = _parts()["model_dir"] / REPORT_FILE
    if not path.is_file():
        abort(404, description="this model directory has no training report")
    return send_file(path.resolve(), mimetype="text/html")
