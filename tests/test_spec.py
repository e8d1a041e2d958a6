"""The feature spec is read strictly, and its JSON Schema says the same thing as the parser.

Every bad spec below is refused by ``FeatureSpec.from_dict`` with a message naming the key; the ones
JSON Schema can express are refused by ``model/feature_spec.schema.json`` too, and the others are
accepted by it (so this list stays an honest account of what the schema leaves to the parser).
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest

from model.features import EVENT_FEATURE_SPEC
from model.spec import FeatureRange, FeatureSpec
from model.spec_checks import RANGE_KEYS, SCHEMA_FILE, SPEC_KEYS
from training.sources import read_spec

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_SPECS = sorted((REPO / "training" / "examples").glob("*.spec.json"))
EXAMPLE = json.loads((REPO / "training" / "examples" / "customers.spec.json").read_text())
SCHEMA = json.loads(SCHEMA_FILE.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def edited(**changes) -> dict:
    """The example spec with top-level keys replaced (``None`` removes a key)."""
    spec = copy.deepcopy(EXAMPLE)
    for key, value in changes.items():
        if value is None:
            spec.pop(key)
        else:
            spec[key] = value
    return spec


def with_range(column: str, entry) -> dict:
    return edited(ranges={**EXAMPLE["ranges"], column: entry})


GROUPED = edited(
    labels={"spend_12m": "Spend (12 months)", "plan": "Plan"},
    groups={"activity": ["orders_12m", "spend_12m"], "service": ["support_tickets"]},
)

# (id, spec, words the parser's message holds, whether JSON Schema can express the rule)
BAD_SPECS = [
    (
        "misspelled key",
        edited(categoricals=["plan"]),
        'unknown key "categoricals" (did you mean "categorical"?)',
        True,
    ),
    ("unknown key, nothing close", edited(wibble=1), 'unknown key "wibble" (valid keys: id_column,', True),
    (
        "misspelled range key",
        with_range("spend_12m", {"minimum": 0, "max": 10}),
        'ranges["spend_12m"]: unknown key "max" (did you mean "maximum"?)',
        True,
    ),
    ("not an object", ["account_id"], "must be a JSON object, got ['account_id']", True),
    ("no id_column", edited(id_column=None), 'missing key "id_column"', True),
    (
        "id_column a number",
        edited(id_column=7),
        "id_column must be a column name (a non-empty string), got 7",
        True,
    ),
    (
        "numeric a string",
        edited(numeric="spend_12m"),
        "numeric must be a list of column names, got 'spend_12m'",
        True,
    ),
    (
        "numeric holds a number",
        edited(numeric=["orders_12m", 3]),
        "numeric must be a list of column names",
        True,
    ),
    (
        "an empty column name",
        edited(categorical=["plan", ""]),
        "categorical must be a list of column names",
        True,
    ),
    (
        "a column twice in one list",
        edited(categorical=["plan", "plan"]),
        'categorical lists "plan" more than once',
        True,
    ),
    (
        "no feature columns",
        edited(numeric=[], categorical=[], heavy_tailed=[], ranges={}),
        "declares no feature columns",
        True,
    ),
    ("ranges a list", edited(ranges=[]), "ranges must be an object", True),
    ("a range not an object", with_range("spend_12m", 1000), 'ranges["spend_12m"] must be an object', True),
    (
        "minimum a string",
        with_range("spend_12m", {"minimum": "0"}),
        "ranges[\"spend_12m\"].minimum must be a finite number or null, got '0'",
        True,
    ),
    (
        "maximum a boolean",
        with_range("spend_12m", {"maximum": True}),
        'ranges["spend_12m"].maximum must be a finite number or null, got True',
        True,
    ),
    (
        "unit a number",
        with_range("spend_12m", {"unit": 3}),
        'ranges["spend_12m"].unit must be a string, got 3',
        True,
    ),
    ("a label a number", edited(labels={"plan": 3}), 'labels["plan"] must be a string, got 3', True),
    ("labels a list", edited(labels=["plan"]), "labels must be an object", True),
    ("an empty group", edited(groups={"activity": []}), 'group "activity" has no columns', True),
    (
        "a group a string",
        edited(groups={"activity": "plan"}),
        'groups["activity"] must be a list of column names',
        True,
    ),
    # What JSON Schema cannot say: the parser alone refuses these.
    (
        "minimum > maximum",
        with_range("spend_12m", {"minimum": 1000, "maximum": 10}),
        'ranges["spend_12m"] has minimum 1000 > maximum 10',
        False,
    ),
    (
        "an infinite bound",
        with_range("spend_12m", {"maximum": math.inf}),
        'ranges["spend_12m"].maximum must be a finite number or null, got inf',
        False,
    ),
    (
        "a range for an undeclared column",
        with_range("spend12m", {"minimum": 0}),
        'ranges names "spend12m", which is not a numeric column (did you mean "spend_12m"?)',
        False,
    ),
    (
        "a range for a categorical column",
        with_range("plan", {"minimum": 0}),
        'ranges names "plan", a categorical column: ranges are for numeric ones',
        False,
    ),
    (
        "a column both numeric and categorical",
        edited(categorical=["plan", "orders_12m"]),
        "more than once",
        False,
    ),
    ("heavy_tailed not numeric", edited(heavy_tailed=["plan"]), "heavy_tailed names ['plan']", False),
    (
        "a label for an undeclared column",
        edited(labels={"spend": "Spend"}),
        'labels names "spend", which is not a declared feature column or group (did you mean "spend_12m"?)',
        False,
    ),
    (
        "a group with an undeclared column",
        edited(groups={"activity": ["orders_12m", "orderz"]}),
        'groups["activity"] names "orderz", which is not a declared feature column',
        False,
    ),
    (
        "a column in two groups",
        edited(groups={"activity": ["orders_12m", "spend_12m"], "money": ["spend_12m"]}),
        'column "spend_12m" is in two groups, "activity" and "money"',
        False,
    ),
    (
        "a group named after another column",
        edited(groups={"plan": ["region"]}),
        'group "plan" is named after a column it does not hold',
        False,
    ),
]


@pytest.mark.parametrize(
    ("spec", "words"), [(s, w) for _, s, w, _ in BAD_SPECS], ids=[i for i, *_ in BAD_SPECS]
)
def test_a_bad_spec_is_refused_naming_the_key(spec, words):
    with pytest.raises(ValueError, match=r"^feature spec") as refused:
        FeatureSpec.from_dict(spec)
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("spec", "expressible"), [(s, e) for _, s, _, e in BAD_SPECS], ids=[i for i, *_ in BAD_SPECS]
)
def test_the_schema_refuses_what_it_can_express_and_leaves_the_rest_to_the_parser(spec, expressible):
    assert VALIDATOR.is_valid(spec) is not expressible


@pytest.mark.parametrize("path", EXAMPLE_SPECS, ids=lambda p: p.name)
def test_the_example_specs_are_valid_for_schema_and_parser(path):
    assert EXAMPLE_SPECS, "training/examples/ holds no *.spec.json"
    data = json.loads(path.read_text())
    VALIDATOR.validate(data)
    FeatureSpec.from_dict(data)


def test_the_schema_is_a_valid_draft_2020_12_schema_that_forbids_unknown_keys():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["$defs"]["range"]["additionalProperties"] is False
    assert all(p.get("description") for p in SCHEMA["properties"].values())


def test_the_schema_parser_and_to_dict_know_the_same_keys():
    assert list(SCHEMA["properties"]) == list(SPEC_KEYS)
    assert list(SCHEMA["$defs"]["range"]["properties"]) == list(RANGE_KEYS)
    assert list(FeatureSpec.from_dict(GROUPED).to_dict()) == list(SPEC_KEYS)
    assert list(vars(FeatureRange())) == list(RANGE_KEYS)


def test_the_schema_ships_as_package_data():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "model" in setuptools["packages"]
    assert SCHEMA_FILE.name in setuptools["package-data"]["model"]
    assert SCHEMA_FILE.parent == REPO / "model"


@pytest.mark.parametrize(
    "spec",
    [FeatureSpec.from_dict(EXAMPLE), FeatureSpec.from_dict(GROUPED), EVENT_FEATURE_SPEC],
    ids=["example", "labels-and-groups", "events"],
)
def test_to_dict_and_back_is_the_same_spec_with_its_ranges_labels_and_groups(spec):
    again = FeatureSpec.from_dict(spec.to_dict())
    assert again == spec
    assert (again.ranges, again.labels, again.groups) == (spec.ranges, spec.labels, spec.groups)
    VALIDATOR.validate(spec.to_dict())


def test_a_spec_saved_by_an_older_version_still_loads():
    """Artifacts written before labels and groups, with open-ended ranges (null bounds)."""
    old = {
        "id_column": "customer_id", "numeric": ["spend", "visits"], "categorical": ["country"],
        "heavy_tailed": ["spend"],
        "ranges": {"spend": {"unit": "EUR", "minimum": 0, "maximum": None, "help": ""}},
    }  # fmt: skip
    spec = FeatureSpec.from_dict(old)
    assert spec.ranges["spend"] == FeatureRange("EUR", 0, None, "")
    assert (spec.labels, spec.groups) == ({}, {})


def test_a_spec_built_in_code_is_held_to_the_same_column_rules():
    with pytest.raises(ValueError, match='ranges\\["spend"\\] has minimum 5 > maximum 1'):
        FeatureSpec("id", numeric=("spend",), ranges={"spend": FeatureRange(minimum=5, maximum=1)})
    with pytest.raises(ValueError, match='"spend" is in two groups'):
        FeatureSpec("id", numeric=("spend", "orders"), groups={"a": ("spend",), "b": ("orders", "spend")})


def test_a_spec_file_error_names_the_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(edited(categoricals=["plan"])))
    with pytest.raises(
        ValueError, match="^" + re.escape(f'{path}: feature spec: unknown key "categoricals"')
    ):
        read_spec(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="^" + re.escape(f"feature spec {path} is not JSON")):
        read_spec(path)
