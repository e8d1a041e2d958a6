"""Run a real Prometheus server (Debian's ``prometheus`` binary) for a test, and query its HTTP API.

    with PrometheusServer(tmp_path, {"segmenter-scorer": ["127.0.0.1:9108"]}, rule_files=[rules]) as prom:
        wait_for(lambda: prom.value("up") == 1.0, what="first scrape")
        prom.alerts()

Storage is a temporary directory; the server listens on 127.0.0.1 on a free port; readiness is
``/-/ready`` polled with a deadline; ``stop()`` terminates it (and kills it if it does not exit).
``short_for_rules`` copies a rule file with every ``for:`` shortened, so a test sees alerts fire in
seconds with the production expressions.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from waiting import wait_for

INSTALL_HINT = (
    "the prometheus binary is missing: install Debian's prometheus package (apt-get install -y prometheus)"
)


def prometheus_binary() -> str:
    binary = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if binary is None:
        pytest.fail(INSTALL_HINT)
    return binary


def short_for_rules(source: Path, target: Path, duration: str = "1s") -> Path:
    """Copy ``source`` to ``target`` with every rule's ``for:`` set to ``duration``."""
    document = yaml.safe_load(source.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = duration
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def _unix_time(rfc3339: str) -> float:
    """Prometheus' RFC 3339 times carry nanoseconds, more than ``datetime`` reads: cut to microseconds.

    >>> _unix_time("1970-01-01T00:00:01.123456789Z"), _unix_time("1970-01-01T00:00:02Z")
    (1.123456, 2.0)
    """
    whole, _, fraction = rfc3339.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp() + float(f"0.{fraction[:6] or 0}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """A Prometheus process scraping ``targets`` ({job name: ["host:port", ...]}) every ``interval``."""

    def __init__(
        self,
        workdir: Path,
        targets: dict[str, list[str]],
        *,
        rule_files: Sequence[Path] = (),
        interval: str = "1s",
        ready_timeout: float = 60.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.targets = targets
        self.rule_files = [str(Path(p).resolve()) for p in rule_files]
        self.interval = interval
        self.ready_timeout = ready_timeout
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "prometheus.log"

    def _write_config(self) -> Path:
        config = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": self.rule_files,
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": hosts}]}
                for job, hosts in self.targets.items()
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self) -> PrometheusServer:
        config = self._write_config()
        command = [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        log = self.log_path.open("w")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(
            self._ready, timeout=self.ready_timeout, interval=0.2, what=f"prometheus ready at {self.url}"
        )
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"prometheus exited with {self.process.returncode}: {self.log_path.read_text()}"
            )
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return response.status == 200

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; raise on an API error."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus API {path} failed: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query at Unix time ``at`` (default: now): the result vector."""
        params = {"query": expr} if at is None else {"query": expr, "time": repr(at)}
        return self.api("query", **params)["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The single value of an instant query (at ``at``), or None when it returns no series."""
        result = self.query(expr, at)
        if len(result) > 1:
            raise ValueError(f"{expr} returned {len(result)} series; expected at most one")
        return float(result[0]["value"][1]) if result else None

    def scraped(self, expr: str, timeout: float = 60.0) -> float:
        """When the latest scrape whose samples make ``expr`` non-empty happened, waiting for one.

        Read other series ``at`` that time and they come from that same scrape. Read at "now" instead,
        they vanish whenever the target misses a scrape: a process starved of CPU that answers after the
        scrape timeout (the interval, 1 s here) marks every series of the target stale until the next
        good scrape, which made an instant query return nothing now and then on a loaded machine.
        """
        what = f"a scrape with {expr}"
        return wait_for(lambda: self.value(f"max(timestamp({expr}))"), timeout=timeout, what=what)

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        """Active alerts (pending and firing), optionally only those in ``state``."""
        alerts = self.api("alerts")["alerts"]
        return [a for a in alerts if state is None or a["state"] == state]

    def rules_evaluated_after(self, seconds: float) -> bool:
        """Whether every rule group has been evaluated since ``seconds`` (Unix time): alerts reflect
        the samples scraped up to then. Rules run every evaluation interval, apart from scrapes, so an
        alert seen right after a scrape may still stem from an older sample."""
        groups = self.api("rules")["groups"]
        return bool(groups) and all(_unix_time(g["lastEvaluation"]) > seconds for g in groups)

    def firing(self, name: str) -> bool:
        return any(a["labels"].get("alertname") == name for a in self.alerts("firing"))
