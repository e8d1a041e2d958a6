"""The customer form, generated from the feature fields (Flask-WTF: CSRF token included).

Each field gets its unit and range in the label and help text, browser-side ``min``/``max``/``step``
hints, and server-side validators with messages that name the unit. Fields the model does not use
are optional and marked as ignored; the server checks them anyway, so bad input never passes silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_wtf import FlaskForm
from markupsafe import escape
from wtforms import FloatField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, StopValidation
from wtforms.widgets import TextInput

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


def _number_field(field: CustomerField) -> FloatField:
    unit = f" {field.unit}" if field.unit else ""
    validators: list[Any] = [InputRequired("required: enter a value") if field.used else Optional()]
    if field.minimum is not None or field.maximum is not None:
        low = "" if field.minimum is None else plain(field.minimum)
        high = "" if field.maximum is None else plain(field.maximum)
        validators.append(
            NumberRange(field.minimum, field.maximum, message=f"must be between {low} and {high}{unit}")
        )
    render_kw = {"inputmode": "decimal", "autocomplete": "off"}
    return _Number(_label(field), validators=validators, description=_help(field), render_kw=render_kw)


def _text_field(field: CustomerField) -> StringField:
    validators = [Optional(), Length(max=MAX_TEXT, message=f"at most {MAX_TEXT} characters")]
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
    unknown = " Leave empty if unknown." if field.kind == "text" else ""
    text = (field.help[:1].upper() + field.help[1:] + "." if field.help else "") + bounds + unknown
    return str(escape(text))  # Bootstrap-Flask renders descriptions unescaped


def build_form_class(fields: Mapping[str, CustomerField]) -> type[FlaskForm]:
    """A FlaskForm subclass with one input per field, model-used fields first."""
    ordered = sorted(fields.values(), key=lambda f: not f.used)
    attrs: dict[str, Any] = {
        f.name: _number_field(f) if f.kind == "number" else _text_field(f) for f in ordered
    }
    attrs["submit"] = SubmitField("Find the segment")
    return type("CustomerForm", (FlaskForm,), attrs)


def form_row(form: FlaskForm, fields: Mapping[str, CustomerField]) -> dict[str, Any]:
    """The validated form's values as a feature row (empty = None)."""
    row = {}
    for name in fields:
        value = form[name].data
        row[name] = value.strip() or None if isinstance(value, str) else value
    return row
