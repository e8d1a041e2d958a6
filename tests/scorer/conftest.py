"""The scorer tests' fixtures live in scorer_fixtures.py, so test modules can import its helpers too."""

from scorer_fixtures import model_dir, model_source, stream, table_model_dir  # noqa: F401 - pytest finds fixtures by name
