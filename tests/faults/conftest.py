"""Fixtures of the fault suite: the scorer tests' model and stream, and a broker of its own.

The broker-restart and SASL/SCRAM tests use ``own_broker`` (see own_broker.py); the other fault
tests use the session ``kafka`` fixture like every Kafka test.
"""

from __future__ import annotations

from own_broker import own_broker  # noqa: F401 - fixtures by name
from scorer_fixtures import model_dir, model_source, stream  # noqa: F401 - fixtures by name
