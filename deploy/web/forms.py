"""The customer form, generated from the feature fields (Flask-WTF: CSRF token included).

Each field gets its readable name (the spec's label) and unit in the label, its range in the help
text, and server-side validators with messages that name the unit. A categorical column the model
uses is a select of the values seen in training. Fields the model does not use are optional and
marked as ignored; the server checks them anyway, so bad input never passes silently.

When the spec has ``recency_days`` / ``tenure_days``, the form also offers ``last_purchase`` /
``first_seen`` and ``as_of`` as dates (``deploy.web.dates``): the feature is then optional here, and
the service requires the feature or its date (not both) and puts any error beside the field concerned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_wtf import FlaskForm
from markupsafe import escape
from wtforms import FloatField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, StopValidation
from wtforms.widgets import TextInput

from deploy.web.dates import AS_OF, parse_date
from deploy.web.fields import MAX_TEXT, CustomerField, plain

__all__ = ["build_form_class", "form_row"]


class _Number(FloatField):
    """A float field in a text input whose parse error names what was typed.

    A text input, not ``type=number``: a number input silently empties what it cannot parse, so the
    person would see "required" instead of what is wrong with what they typed.
    """

    widget = TextInput()

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = float(valuelist[0].replace(",", ""))
        except ValueError:
            self.data = None
            raise ValueError(f"{valuelist[0][:40]!r} is not a number") from None
        if self.data != self.data or self.data in (float("inf"), float("-inf")):
            self.data = None
            raise ValueError("must be a finite number")

    def pre_validate(self, form: FlaskForm) -> None:
        if self.process_errors:  # "not a number" says it all: no range message on top
            raise StopValidation()


def _number_field(field: CustomerField, date_name: str | None = None) -> FloatField:
    unit = f" {field.unit}" if field.unit else ""
    required = field.used and date_name is None  # with a date, the service checks "one of the two"
    validators: list[Any] = [InputRequired("required: enter a value") if required else Optional()]
    if field.minimum is not None or field.maximum is not None:
        low = "" if field.minimum is None else plain(field.minimum)
        high = "" if field.maximum is None else plain(field.maximum)
        validators.append(
            NumberRange(field.minimum, field.maximum, message=f"must be between {low} and {high}{unit}")
        )
    render_kw = {"inputmode": "decimal", "autocomplete": "off"}
    return _Number(_label(field), validators=validators, description=_help(field), render_kw=render_kw)


DATE_HELP = {
    "last_purchase": "Date of the last purchase: recency days = as of − this date. "
    "Give this or recency days, not both.",
    "first_seen": "Date of the customer's first event: tenure days = as of − this date. "
    "Give this or tenure days, not both.",
    AS_OF: "The date the dates above are counted to; empty: today (UTC).",
}


def _check_date(form: FlaskForm, field: StringField) -> None:
    if field.data and field.data.strip():
        problem = parse_date(field.data)[1]
        if problem:
            raise StopValidation(problem)


def _date_field(name: str, used: bool = True) -> StringField:
    render_kw = {"placeholder": "YYYY-MM-DD", "autocomplete": "off", "maxlength": "10"}
    label = name.replace("_", " ") + " (date" + (")" if used else ") — ignored by this model")
    return StringField(label, validators=[_check_date], description=DATE_HELP[name], render_kw=render_kw)


def _checked(field: CustomerField):
    """A validator with the API's own check of ``field`` (e.g. a value not seen in training)."""

    def check(form: FlaskForm, input_field) -> None:
        problem = field.check(input_field.data)[1]
        if problem:
            raise StopValidation(problem)

    return check


def _required(field: CustomerField, message: str):
    return InputRequired(message) if field.used and not field.nullable else Optional()


def _choice_field(field: CustomerField) -> SelectField:
    """A select of the values seen in training; the empty first option is "unknown" where the model
    may be given none, else a prompt that the required check refuses."""
    blank = "— unknown —" if field.nullable or not field.used else "— choose —"
    return SelectField(
        _label(field),
        choices=[SelectChoice("", blank), *(SelectChoice(value) for value in field.choices)],
        validate_choice=False,  # _checked says which values are allowed, as the API does
        validators=[_required(field, "required: choose a value"), _checked(field)],
        description=_help(field),
    )


def _text_field(field: CustomerField) -> StringField | SelectField:
    if field.choices:
        return _choice_field(field)
    validators = [
        _required(field, "required: enter a value"),
        Length(max=MAX_TEXT, message=f"at most {MAX_TEXT} characters"),
    ]
    return StringField(
        _label(field),
        validators=validators,
        description=_help(field),
        render_kw={"maxlength": str(MAX_TEXT)},
    )


def _label(field: CustomerField) -> str:
    return field.label + ("" if field.used else " — optional, ignored by this model")


def _help(field: CustomerField) -> str:
    bounds = ""
    if field.minimum is not None and field.maximum is not None:
        bounds = f" Range {plain(field.minimum)}–{plain(field.maximum)}."
    if field.choices:
        unknown = f" {len(field.choices)} values seen in training."
    else:
        unknown = " Leave empty if unknown." if field.kind == "text" and field.nullable else ""
    text = (field.help[:1].upper() + field.help[1:] + "." if field.help else "") + bounds + unknown
    return str(escape(text.strip()))  # Bootstrap-Flask renders descriptions unescaped


def build_form_class(
    fields: Mapping[str, CustomerField], dates: Mapping[str, str] | None = None
) -> type[FlaskForm]:
    """A FlaskForm subclass with one input per field, model-used fields first, then the ``dates``
    offered (date field -> the feature it gives) and ``as_of`` when there are any."""
    dates = dates or {}
    date_of = {feature: name for name, feature in dates.items()}
    ordered = sorted(fields.values(), key=lambda f: not f.used)
    attrs: dict[str, Any] = {
        f.name: _number_field(f, date_of.get(f.name)) if f.kind == "number" else _text_field(f)
        for f in ordered
    }
    attrs |= {name: _date_field(name, fields[feature].used) for name, feature in dates.items()}
    if dates:
        attrs[AS_OF] = _date_field(AS_OF)
    attrs["submit"] = SubmitField("Find the segment")
    return type("CustomerForm", (FlaskForm,), attrs)


def form_row(
    form: FlaskForm, fields: Mapping[str, CustomerField], dates: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The validated form's values as the service takes them: a feature row (empty = None), plus the
    dates that were filled in; a feature that has a date alternative is left out when empty."""
    dates = dates or {}
    row = {}
    for name in fields:
        value = form[name].data
        row[name] = value.strip() or None if isinstance(value, str) else value
    for feature in dates.values():
        if row[feature] is None:
            del row[feature]
    for name in (*dates, AS_OF) if dates else ():
        value = (form[name].data or "").strip()
        if value:
            row[name] = value
    return row
