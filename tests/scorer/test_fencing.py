"""A second scorer with the same --instance-id fences the first: it stops at once with one clear line.

Static membership fences through the group (the broker hands the member name to the newcomer),
exactly-once through the transactional id (the newcomer's ``init_transactions``). Either way the
older scorer exits with code 4 and says which --instance-id is taken, without a traceback.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
from kafka import KafkaAdminClient
from scorer_process import committed_total, replayed, scorer_command
from waiting import wait_for

from consumer.backends import ClientConfig, make_backend
from consumer.settings import default_instance_id
from deploy.cli import command_parser

FENCED_EXIT = 4


def _members(bootstrap: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return len(admin.describe_groups([group])[group]["members"])
    finally:
        admin.close()


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
@pytest.mark.parametrize("mode", ["static-membership", "exactly-once"])
def test_a_second_instance_with_the_same_id_stops_the_first(
    kafka, unique_name, group_id, model_dir, stream, mode, client
):
    bootstrap = kafka.bootstrap_servers
    backend = make_backend("kafka-python", ClientConfig(bootstrap))
    half = len(stream) // 2
    topics = replayed(backend, unique_name, stream[:half])
    instance = f"{unique_name}-x"
    extra = ["--client", client, "--instance-id", instance]
    extra += ["--static-membership"] if mode == "static-membership" else []
    command = scorer_command(bootstrap, model_dir, topics, group_id, mode == "exactly-once", *extra)
    forever = [arg for arg in command if arg != "--exit-when-idle"]
    first = subprocess.Popen(forever, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    second = None
    try:
        wait_for(lambda: committed_total(bootstrap, group_id) > 0, timeout=60, what="a first commit")
        second = subprocess.Popen(forever, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if mode == "exactly-once":  # fenced at its next transaction once the second has started
            started = lambda: first.poll() is not None or _members(bootstrap, group_id) == 2  # noqa: E731
            wait_for(started, timeout=60, what="the second scorer in the group")
            with backend.producer() as producer:
                for key, value in stream[half:]:
                    producer.produce(topics.input, key, value)
                producer.flush()
        stderr = first.communicate(timeout=30)[1].decode()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    assert first.returncode == FENCED_EXIT, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    last_line = stderr.strip().splitlines()[-1]
    assert f"another instance uses --instance-id {instance}" in last_line, stderr[-3000:]


def test_the_default_instance_id_is_derived_from_the_host_name(capsys, monkeypatch):
    monkeypatch.delenv("SEGMENTER_INSTANCE_ID", raising=False)
    parser = command_parser("consume")[1]
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert default_instance_id() == default_instance_id(socket.gethostname())
    assert f"(default: {default_instance_id()}" in shown, shown
    assert "from the host name" in shown, shown
