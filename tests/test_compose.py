"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine needed).

Every `segmenter` service runs a real subcommand whose parser accepts its options; every environment
variable it sets is one that subcommand reads; mounted paths exist; Prometheus targets name services
that listen on those ports; Kafka, topics and the image match the rest of the repository.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml

from consumer import settings as consumer_settings
from deploy.cli import COMMANDS
from deploy.web import serve

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SEGMENTER = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("customer-segmenter")}
DECLARED_ENV = {
    s.env
    for group in (*consumer_settings.CONSUME, *consumer_settings.REPLAY_OPTIONS, serve.WEB)
    for s in group
}


def _parser(command: str) -> argparse.ArgumentParser:
    """The parser `segmenter COMMAND` builds (as deploy.cli.main does), under the current environment."""
    module = importlib.import_module(COMMANDS[command][0])
    parser = argparse.ArgumentParser(prog=f"segmenter {command}", exit_on_error=False)
    parser.add_argument("--log-level", default="INFO")
    module.add_arguments(parser)
    return parser


def _parse(service: dict, monkeypatch) -> tuple[str, argparse.Namespace]:
    """Parse a service's command with its environment applied, as the container would."""
    for name, value in (service.get("environment") or {}).items():
        monkeypatch.setenv(name, str(value))
    command = service["command"]
    args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    assert args[0] in COMMANDS, f"{args[0]!r} is not a segmenter subcommand"
    return args[0], _parser(args[0]).parse_args(args[1:])


def test_the_expected_services_exist():
    assert {"kafka", "topics", "train", "scorer", "replay", "web", "prometheus", "grafana"} <= set(SERVICES)
    assert set(SEGMENTER) == {"train", "scorer", "replay", "web"}
    assert [SERVICES[n]["command"][0] for n in ("train", "scorer", "replay", "web")] == [
        "train", "consume", "replay", "serve"
    ]  # fmt: skip
    assert SERVICES["replay"]["command"][1:] == ["--dataset", "cdnow"]


@pytest.mark.parametrize("name", sorted(SEGMENTER))
def test_segmenter_commands_parse_with_their_environment(name, monkeypatch):
    command, args = _parse(SEGMENTER[name], monkeypatch)
    assert vars(args), f"{name}: segmenter {command} parsed to nothing"


@pytest.mark.parametrize("name", sorted(SEGMENTER))
def test_every_environment_variable_is_read_by_the_command(name, monkeypatch):
    service = SEGMENTER[name]
    command = service["command"][0]
    for variable in service.get("environment") or {}:
        assert variable in DECLARED_ENV, f"{name}: {variable} is no setting of consumer/settings.py or serve"
        sentinel = f"sentinel-{variable}"
        monkeypatch.setenv(variable, sentinel)
        defaults = [action.default for action in _parser(command)._actions]
        monkeypatch.delenv(variable)
        assert sentinel in defaults, f"{name}: segmenter {command} ignores {variable}"


def test_mounted_paths_and_build_files_exist():
    for name, service in SERVICES.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in COMPOSE["volumes"], f"{name} uses undeclared volume {source}"
    build = SEGMENTER["web"]["build"]
    assert (REPO / build["context"] / build["dockerfile"]).is_file()
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["prometheus"]["volumes"]}
    assert Path(mounts["/etc/prometheus"]) == Path("deploy/prometheus")
    grafana = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    assert Path(grafana["/etc/grafana/provisioning/datasources"]) == Path("deploy/grafana/datasources")
    assert Path(grafana["/etc/grafana/provisioning/dashboards"]) == Path("deploy/grafana/dashboards")


def _listening_port(name: str, monkeypatch) -> tuple[str, int]:
    """(host, port) the segmenter service listens on, from its parsed command and environment."""
    command, args = _parse(SEGMENTER[name], monkeypatch)
    if command == "serve":
        host, _, port = args.bind.rpartition(":")
        return host, int(port)
    return args.metrics_host, int(args.metrics_port)


def test_prometheus_targets_are_services_listening_on_those_ports(monkeypatch):
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: t for job in config["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}  # fmt: skip
    assert set(targets) >= {"segmenter-scorer", "segmenter-web"}
    for job, target in targets.items():
        host, port = target.rsplit(":", 1)
        assert host in SEGMENTER, f"{job} scrapes {host}, which is not a segmenter service"
        with monkeypatch.context() as patch:
            listen_host, listen_port = _listening_port(host, patch)
        assert listen_port == int(port), f"{job}: {host} listens on {listen_port}, not {port}"
        assert listen_host == "0.0.0.0", f"{host} must listen on all interfaces to be scraped"
        published = [p.split(":")[-1] for p in SEGMENTER[host].get("ports", [])]
        assert port in published


def _published(port: str) -> tuple[str, str, str]:
    """``(host address, host port, container port)`` of a compose port, ``${VAR:-default}`` resolved."""
    host, host_port, container_port = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", port).rsplit(":", 2)
    return host, host_port, container_port


def test_every_port_is_published_on_localhost_by_default():
    """Issue 10.10a: the web app (and Grafana, the scorer's metrics) are not for the open network."""
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            address = _published(port)[0] if port.count(":") >= 2 else "every interface"
            assert address == "127.0.0.1", f"{name}: {port!r} publishes on {address}"


def test_grafana_datasource_points_at_the_prometheus_service():
    text = (REPO / "deploy/grafana/datasources/prometheus.yml").read_text()
    url = yaml.safe_load(text)["datasources"][0]["url"]
    assert url == "http://prometheus:9090"
    assert [_published(p)[1:] for p in SERVICES["prometheus"]["ports"]] == [("9090", "9090")]


def test_kafka_matches_the_local_broker_and_the_clients():
    version = re.search(r"<kafka.version>(.+)</kafka.version>", (REPO / "deploy/kafka/pom.xml").read_text())
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{version.group(1)}"
    assert SERVICES["topics"]["image"] == SERVICES["kafka"]["image"]
    env = SERVICES["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft, no ZooKeeper"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for name in ("scorer", "replay"):
        servers = SEGMENTER[name]["environment"]["SEGMENTER_BOOTSTRAP_SERVERS"]
        assert f"PLAINTEXT://{servers}" in advertised, name


def test_topic_job_creates_the_topics_the_scorer_uses():
    script = SERVICES["topics"]["command"][0]
    created = dict(re.findall(r"--topic (\S+) --partitions (\d+)", script))
    defaults = {s.flag: s.default for s in consumer_settings.TOPICS}
    names = [defaults[f] for f in ("--input-topic", "--output-topic", "--dlq-topic", "--changelog-topic")]
    assert set(created) == set(names)
    assert created[defaults["--input-topic"]] == created[defaults["--changelog-topic"]], "co-partitioned"
    assert {int(n) for n in created.values()} == {defaults["--partitions"]}
    for compacted in (defaults["--output-topic"], defaults["--changelog-topic"]):
        assert re.search(rf"--topic {compacted} .*cleanup.policy=compact", script), compacted


def test_dockerfile_is_slim_non_root_with_the_segmenter_entrypoint():
    lines = [ln.strip() for ln in (REPO / "deploy/Dockerfile").read_text().splitlines()]
    assert all("-slim" in ln for ln in lines if ln.startswith("FROM "))
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users, "the image must switch to a non-root user"
    assert users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["segmenter"]' in lines
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
