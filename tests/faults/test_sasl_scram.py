"""SASL/SCRAM-SHA-512: with the right credentials the scorer works as usual; with wrong ones it stops
with a clear AuthenticationError naming the broker and user, on both clients, instead of timing out."""

from __future__ import annotations

import subprocess
import sys

import pytest
from own_broker import SCRAM_PASSWORD, SCRAM_USER
from scorer_fixtures import reference_run
from scorer_process import changelog_states, read, replayed

from consumer.backends import ClientConfig, make_backend
from consumer.runner import RunnerSettings, ScorerRunner

pytestmark = [pytest.mark.faults, pytest.mark.kafka]

CLIENTS = ["kafka-python", "confluent"]


def scram_config(bootstrap: str, password: str) -> ClientConfig:
    return ClientConfig(
        bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=SCRAM_USER,
        sasl_password=password,
    )


@pytest.mark.parametrize("client", CLIENTS)
def test_the_right_credentials_score_the_stream(own_broker, model_source, stream, unique_name, client):
    backend = make_backend(client, scram_config(own_broker.scram_bootstrap_servers, SCRAM_PASSWORD))
    topics = replayed(backend, unique_name, stream)
    settings = RunnerSettings(group_id=f"g-{unique_name}", topics=topics, batch_size=500, exit_when_idle=True)
    runner = ScorerRunner(backend, settings, model_source)
    runner.run()
    assert runner.summary.events == len(stream)
    assert changelog_states(read(backend, topics.changelog)) == reference_run(model_source, stream)[1]


@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_credentials_stop_the_scorer_with_a_clear_message(own_broker, model_dir, client):
    command = [
        sys.executable, "-m", "deploy.cli", "consume", "--client", client, "--model-dir", str(model_dir),
        "--bootstrap-servers", own_broker.scram_bootstrap_servers, "--metrics-port", "0",
        "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-512",
        "--sasl-username", SCRAM_USER, "--sasl-password", "not-the-password",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "AuthenticationError" in done.stderr, done.stderr[-2000:]
    assert own_broker.scram_bootstrap_servers in done.stderr
    assert "Traceback" not in done.stderr
    assert "not-the-password" not in done.stderr, "the password is never logged"
