"""The alert rules and Prometheus config pass promtool, and the rules fire on synthetic series.

promtool comes from Debian's ``prometheus`` package; without it these tests fail (they never skip).
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
INSTALL_HINT = "promtool not found: install Debian's prometheus package (apt-get install -y prometheus)"


def promtool(*args, cwd=PROMETHEUS_DIR):
    binary = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if binary is None:
        pytest.fail(INSTALL_HINT)
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_alert_rules_pass_promtool_check():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_alert_rules_fire_on_synthetic_series():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_cover_drift_dead_letters_and_stalled_stream_time():
    text = (PROMETHEUS_DIR / "alerts_test.yml").read_text()
    for alert in (
        "SegmentDriftHigh",
        "SegmentDriftWarning",
        "DeadLetterRateHigh",
        "PartitionStreamTimeStalled",
    ):
        assert f"alertname: {alert}" in text


def test_the_stalled_partition_alert_waits_for_its_period_and_ignores_a_down_scorer():
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    (stalled,) = [
        r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "PartitionStreamTimeStalled"
    ]
    assert "changes(segmenter_stream_time_seconds[" in stalled["expr"]
    assert "up == 1" in stalled["expr"]
    assert stalled["for"] == "30m"
    assert "--clock wall" in stalled["annotations"]["description"]


def test_prometheus_config_is_valid_and_loads_the_rules():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: rate(segmenter_x[5m]\n"
    )
    result = promtool("check", "rules", str(broken), cwd=tmp_path)
    assert result.returncode != 0
