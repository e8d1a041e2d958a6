"""The `segmenter` command and its logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from consumer.backends.abstract import Record
from consumer.processor import Processor
from consumer.state_store import StateStore
from deploy.cli import COMMANDS, JsonFormatter, configure_logging, main


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_parses_its_help(capsys, name):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert f"segmenter {name}" in capsys.readouterr().out


def test_a_dead_letter_is_logged_with_topic_partition_and_offset_as_json(caplog):
    processor = Processor(StateStore(), model=lambda: None)
    with caplog.at_level(logging.WARNING, logger="consumer.processor"):
        processor.process([Record("events", 2, 41, None, b"{not json")])
    (record,) = caplog.records
    line = json.loads(JsonFormatter().format(record))
    assert (line["topic"], line["partition"], line["offset"], line["reason"]) == ("events", 2, 41, "not_json")
    assert line["level"] == "WARNING"
    assert "not JSON" in line["message"]


def test_kafka_python_slow_task_warnings_are_dropped_and_its_other_warnings_kept(caplog):
    selector = logging.getLogger("kafka.net.selector")
    filters = list(selector.filters)
    try:
        configure_logging("INFO")
        with caplog.at_level(logging.WARNING, logger="kafka.net.selector"):
            selector.warning("Task <t> ran for 0.137s (>0.100s threshold). It is blocking the event loop")
            selector.warning("Wakeup socket returned empty. Rebuilding.")
    finally:
        selector.filters[:] = filters
    logged = [r.getMessage() for r in caplog.records if r.name == "kafka.net.selector"]
    assert logged == ["Wakeup socket returned empty. Rebuilding."]


def test_a_kafka_client_traceback_is_one_line_at_info_and_whole_at_debug():
    """kafka-python's I/O thread logs a traceback when a fenced transaction confuses it."""
    script = (
        "import logging, sys\n"
        "from deploy.cli import configure_logging\n"
        "configure_logging(sys.argv[1])\n"
        "try:\n"
        "    raise KeyError('invalid transition')\n"
        "except KeyError:\n"
        "    logging.getLogger('kafka.producer.sender').exception('Uncaught error in the I/O thread')\n"
    )
    for level, traceback in (("INFO", False), ("DEBUG", True)):
        done = subprocess.run(
            [sys.executable, "-c", script, level], capture_output=True, text=True, timeout=60, check=True
        )
        assert "Uncaught error in the I/O thread: KeyError('invalid transition')" in done.stderr or traceback
        assert ("Traceback" in done.stderr) == traceback, done.stderr
