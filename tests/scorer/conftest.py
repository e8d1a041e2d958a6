"""The scorer tests' fixtures live in scorer_fixtures.py, so test modules can import its helpers too."""

from scorer_fixtures import (  # noqa: F401 - pytest finds fixtures by name
    model_dir,
    model_source,
    retrained_model_dir,
    shoppers_model_dir,
    stream,
    table_model_dir,
)
