"""Dates instead of days (deploy/web/dates.py) without a model: specs with and without the features."""

from __future__ import annotations

from datetime import date

from deploy.web.dates import offered_dates, resolve_dates
from deploy.web.fields import customer_fields
from deploy.web.forms import build_form_class
from model.spec import FeatureSpec

TODAY = date(2024, 5, 1)


def _problems(data, offered):
    return {e.field: e.problem for e in resolve_dates(data, offered, today=TODAY)[2]}


def test_a_spec_without_recency_or_tenure_is_offered_no_dates_and_refuses_them():
    table = FeatureSpec("customer_id", numeric=("spend", "visits"))
    assert offered_dates(table.feature_names) == {}
    problems = _problems({"spend": 3.0, "last_purchase": "2024-04-01"}, {})
    assert problems == {"last_purchase": "is not taken by this model (its features have no recency_days)"}
    form = build_form_class(customer_fields(table, used={"spend", "visits"}), {})
    assert not {"last_purchase", "first_seen", "as_of"} & set(vars(form))


def test_no_date_given_leaves_the_data_untouched_and_no_as_of():
    data = {"recency_days": 3.0}
    assert resolve_dates(data, offered_dates(["recency_days"]), today=TODAY) == (data, None, [])


def test_days_are_whole_days_to_as_of_and_as_of_defaults_to_today():
    offered = offered_dates(["recency_days", "tenure_days"])
    features, as_of, errors = resolve_dates({"last_purchase": "2024-04-30", "first_seen": "2023-05-02"},
                                            offered, today=TODAY)  # fmt: skip
    assert (features, as_of, errors) == ({"recency_days": 1, "tenure_days": 365}, TODAY, [])
    explicit = resolve_dates({"last_purchase": "2024-04-30", "as_of": "2024-04-30"}, offered, today=TODAY)
    assert explicit[:2] == ({"recency_days": 0}, date(2024, 4, 30))


def test_a_bad_as_of_is_its_own_error_and_derives_nothing():
    offered = offered_dates(["recency_days"])
    features, as_of, errors = resolve_dates({"last_purchase": "2024-04-30", "as_of": "2024-02-30"}, offered,
                                            today=TODAY)  # fmt: skip
    assert "recency_days" not in features
    assert as_of is None
    assert [(e.field, e.problem) for e in errors] == [("as_of", "is not a calendar date (2024-02-30)")]
