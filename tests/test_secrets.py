"""Passwords never reach a repr or a log line, even at DEBUG where kafka-python logs its whole config."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from consumer.backends import ClientConfig
from consumer.backends.kafka_python.config import client_options
from consumer.backends.secret import Secret
from consumer.settings import CONNECTION, add_settings, client_config

PASSWORD = "pa55-w0rd-never-logged"
REPO = Path(__file__).resolve().parent.parent


def test_a_secret_shows_only_stars_until_revealed():
    secret = Secret(PASSWORD)
    assert PASSWORD not in f"{secret!r} {secret} {secret:>30} {[secret]} { ({'p': secret}) }"
    assert secret.reveal() == PASSWORD
    assert secret == Secret(PASSWORD)
    assert secret != Secret("other")


def test_settings_and_config_hide_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEGMENTER_SASL_PASSWORD", PASSWORD)
    parser = argparse.ArgumentParser()
    add_settings(parser, CONNECTION)
    args = parser.parse_args(["--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN"])
    config = client_config(args, "test")
    assert PASSWORD not in repr(args)
    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(config)
    assert client_options(config)["sasl_plain_password"] == PASSWORD, "revealed where the client is built"


@pytest.mark.kafka
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_kafka_python_debug_logs_never_show_the_password(kafka, log_format):
    """The admin client kafka-python builds for `ensure_topics` logs its configuration at DEBUG."""
    script = textwrap.dedent(
        f"""
        import logging
        from kafka import KafkaAdminClient
        from consumer.backends import ClientConfig
        from consumer.backends.kafka_python.config import client_options
        from deploy.cli import configure_logging

        configure_logging("DEBUG", {log_format!r})
        config = ClientConfig({kafka.bootstrap_servers!r}, security_protocol="SASL_PLAINTEXT",
                              sasl_mechanism="PLAIN", sasl_username="svc", sasl_password={PASSWORD!r},
                              connect_timeout_s=1)
        logging.getLogger("segmenter.test").info("config %r", config)
        # What kafka-python's protocol parser logs when it sends a SASL PLAIN authentication.
        logging.getLogger("kafka.protocol.parser").debug("%s Send: %r", "node=0",
                                                         b"\\x00svc\\x00" + {PASSWORD.encode()!r})
        try:
            KafkaAdminClient(**client_options(config))  # a PLAINTEXT broker refuses the SASL handshake
        except Exception as exc:
            logging.getLogger("segmenter.test").error("admin client failed", exc_info=exc)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Starting KafkaAdminClient with configuration" in done.stderr, "kafka-python logged its config"
    assert "sasl_plain_password" in done.stderr
    assert "Send: " in done.stderr
    assert PASSWORD not in done.stderr, [line for line in done.stderr.splitlines() if PASSWORD in line]


def test_keyed_passwords_are_masked_even_when_never_configured():
    from consumer.backends.secret import redact

    line = "{'sasl_plain_password': 'xyz-unknown', 'ssl_password': None} sasl.password=abc123 x=1"
    assert redact(line) == "{'sasl_plain_password': '***', 'ssl_password': None} sasl.password=*** x=1"


def test_a_config_built_from_a_plain_string_holds_a_secret():
    config = ClientConfig("h:1", "SASL_SSL", "PLAIN", "svc", PASSWORD)
    assert isinstance(config.sasl_password, Secret)
    assert config == ClientConfig("h:1", "SASL_SSL", "PLAIN", "svc", Secret(PASSWORD))
