"""A broker that cannot be reached: a few lines at INFO, the last one saying so, exit 2.

The clients' own connection attempts (about 25 lines from kafka-python, 400 from librdkafka) show
only at DEBUG.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_no_broker_is_one_clear_line_not_the_clients_chatter(model_dir, client):
    command = [
        sys.executable, "-m", "deploy.cli", "consume", "--client", client,
        "--bootstrap-servers", "127.0.0.1:1", "--model-dir", str(model_dir), "--metrics-port", "0",
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, timeout=60, check=False)
    lines = finished.stderr.decode().strip().splitlines()
    assert finished.returncode == 2, lines
    assert len(lines) <= 5, "\n".join(lines)
    assert "the scorer stopped: BrokerUnavailableError" in lines[-1], lines
    assert "no broker answered at 127.0.0.1:1" in lines[-1], lines
