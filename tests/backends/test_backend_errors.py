"""Failures are clear values: bad settings, unreachable brokers, failing callbacks; plus pause/resume."""

from __future__ import annotations

import pytest

from consumer.backends import (
    BrokerUnavailableError,
    ClientConfig,
    ConfigurationError,
    TopicPartition,
    make_backend,
)

UNREACHABLE = "127.0.0.1:1"


@pytest.mark.parametrize("name", ["kafka-python", "confluent"])
@pytest.mark.parametrize("client", ["consumer", "producer"])
def test_unreachable_broker_is_a_clear_error(name, client):
    backend = make_backend(name, ClientConfig(UNREACHABLE, connect_timeout_s=2))
    with pytest.raises(BrokerUnavailableError, match=UNREACHABLE):
        backend.consumer("g-unreachable") if client == "consumer" else backend.producer()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"bootstrap_servers": " "}, "bootstrap_servers"),
        ({"bootstrap_servers": "h:1", "security_protocol": "TLS"}, "security_protocol='TLS'"),
        ({"bootstrap_servers": "h:1", "security_protocol": "SASL_SSL"}, "sasl_mechanism"),
        ({"bootstrap_servers": "h:1", "sasl_mechanism": "MD5"}, "sasl_mechanism='MD5'"),
        ({"bootstrap_servers": "h:1", "connect_timeout_s": 0}, "connect_timeout_s=0"),
    ],
)
def test_bad_settings_name_the_field(settings, named):
    with pytest.raises(ConfigurationError, match=named):
        ClientConfig(**settings)


def test_unknown_backend_and_missing_config_are_named():
    with pytest.raises(ConfigurationError, match="backend='kafka-js'"):
        make_backend("kafka-js", ClientConfig("h:1"))
    with pytest.raises(ConfigurationError, match="needs a ClientConfig"):
        make_backend("confluent")


def test_password_is_not_in_the_config_repr():
    config = ClientConfig("h:1", "SASL_SSL", "SCRAM-SHA-512", "svc", "s3cret")
    assert "s3cret" not in repr(config)
    assert "svc" in repr(config)


def test_a_failing_callback_surfaces_from_poll(clients, new_topic, group_id):
    topic = new_topic(partitions=1)

    def on_assign(partitions):
        raise RuntimeError(f"restore failed for {partitions}")

    consumer = clients.consumer(group_id)
    consumer.subscribe([topic], on_assign=on_assign)
    with pytest.raises(RuntimeError, match="restore failed"):
        clients.poll_while([consumer], lambda: False, timeout_s=30)


def test_paused_partitions_are_not_fetched_until_resumed(clients, new_topic, group_id):
    topic = new_topic(partitions=2)
    producer = clients.producer()
    for i in range(10):
        producer.produce(topic, b"k%d" % i, b"v", partition=i % 2)
    producer.flush()
    consumer = clients.consumer(group_id)
    consumer.subscribe([topic], on_assign=lambda ps: consumer.pause([TopicPartition(topic, 0)]))
    only_one = clients.poll_until(consumer, 5)
    assert {r.partition for r in only_one} == {1}
    assert consumer.poll(max_records=10, timeout_s=1.0) == []
    consumer.resume([TopicPartition(topic, 0)])
    assert {r.partition for r in clients.poll_until(consumer, 5)} == {0}


@pytest.mark.parametrize(
    "code", ["_WAIT_COORD", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR", "_TRANSPORT"]
)
def test_a_coordinator_briefly_away_is_waited_out_not_fatal(code):
    """A commit right after a broker restart meets librdkafka's "waiting for coordinator": retriable."""
    import confluent_kafka

    from consumer.backends.confluent.errors import translate

    error = translate(
        confluent_kafka.KafkaError(getattr(confluent_kafka.KafkaError, code)), "committing", "b:9"
    )
    assert isinstance(error, BrokerUnavailableError)
