"""Every option of consume, replay and serve comes from one table: flag, environment name, default, help.

`--help` shows each option's environment variable (and default), each variable sets its option, the
settings objects are filled from the tables by name, secrets stay hidden, and the README lists them all.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from consumer import settings
from consumer.backends.config import ClientConfig
from consumer.backends.secret import Secret
from consumer.cli import runner_settings
from consumer.dead_letter_limit import invalid_ratio
from consumer.processor import Topics
from consumer.replay import ReplayOptions
from consumer.runner import RunnerSettings
from deploy.cli import command_parser
from deploy.settings_table import COMMAND_TABLES, markdown
from deploy.web.serve import WEB

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-sasl-never-shown"
# prometheus_client reads this name itself; serve's --metrics-dir keeps it rather than a SEGMENTER_ one.
NOT_SEGMENTER = {"PROMETHEUS_MULTIPROC_DIR"}

TABLES = {name: (settings.LOGGING, *tables) for name, tables in COMMAND_TABLES.items()}
ALL = {s.env: s for tables in TABLES.values() for table in tables for s in table}


def _settings_of(command: str) -> list[settings.Setting]:
    return [s for table in TABLES[command] for s in table]


@pytest.fixture
def clean_env(monkeypatch):
    """No setting's variable set (the test run may export KAFKA_BOOTSTRAP_SERVERS and others)."""
    for name in [*ALL, "KAFKA_BOOTSTRAP_SERVERS"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _parse(command: str, *argv: str):
    return command_parser(command)[1].parse_args(list(argv))


def _help_entries(text: str) -> dict[str, str]:
    """``--flag`` -> its help, whitespace collapsed (argparse wraps `[env NAME]` across lines)."""
    entries: dict[str, str] = {}
    flag = None
    for line in text.split("options:", 1)[1].splitlines():
        match = re.match(r"^  (-\S+)", line)
        if match:
            flag = match.group(1).split(",")[-1] if not line.startswith("  -h") else "--help"
            entries[flag] = line
        elif flag and line.startswith("    "):
            entries[flag] += " " + line
    return {flag: " ".join(text.split()) for flag, text in entries.items()}


def _help(command: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ALL and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "deploy.cli", command, "--help"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("command", ["consume", "replay", "serve"])
def test_help_shows_an_environment_name_and_the_default_of_every_option(command):
    text = _help(command)
    entries = _help_entries(text)
    lines = text.splitlines()
    expected = {s.flag: s for s in _settings_of(command)}
    assert set(entries) == {"--help", *expected}, "every option comes from a table"
    for flag, s in expected.items():
        assert f"[env {s.env}]" in entries[flag], entries[flag]
        assert any(f"[env {s.env}]" in line for line in lines), "never split across lines (grep finds it)"
        assert s.env.startswith("SEGMENTER_") or s.env in NOT_SEGMENTER
        if s.default is not None and s.type is not bool:
            assert f"(default: {s.default})" in entries[flag], entries[flag]


def test_the_nine_consume_flags_and_the_replay_flags_that_had_none_now_have_a_variable():
    consume = {s.flag: s.env for s in _settings_of("consume")}
    replay = {s.flag: s.env for s in _settings_of("replay")}
    assert {flag: consume[flag] for flag in ("--exactly-once", "--model", "--source", "--sink")} == {
        "--exactly-once": "SEGMENTER_EXACTLY_ONCE",
        "--model": "SEGMENTER_MODEL",
        "--source": "SEGMENTER_SOURCE",
        "--sink": "SEGMENTER_SINK",
    }
    for flag in ("--emit-only-on-change", "--exit-when-idle", "--static-membership", "--dead-letters",
                 "--river-learning-rate", "--allow-keyless", "--min-event-time", "--strict-restore",
                 "--reset-state", "--model-key-file"):  # fmt: skip
        assert consume[flag].startswith("SEGMENTER_")
    for flag in ("--dataset", "--rate", "--limit", "--invalid-every", "--seed"):
        assert replay[flag].startswith("SEGMENTER_REPLAY_")


def test_environment_names_and_flags_are_unique_per_command():
    for command in TABLES:
        rows = _settings_of(command)
        assert len({s.env for s in rows}) == len(rows), command
        assert len({s.flag for s in rows}) == len(rows), command
    shared = {}
    for s in ALL.values():  # one variable means one thing, wherever it is read
        assert shared.setdefault(s.env, s.flag) == s.flag


def _sample(s: settings.Setting) -> tuple[str, object]:
    """A value for the variable, and what the parsed option should then be."""
    if s.type is bool:
        return "yes", True
    if s.choices:
        return s.choices[-1], s.choices[-1]
    if s.type is int:
        return "41", 41
    if s.type in (float, invalid_ratio):
        return "0.25", 0.25
    if s.type is Secret:
        return PASSWORD, Secret(PASSWORD)
    return f"sample-{s.env.lower()}", f"sample-{s.env.lower()}"


@pytest.mark.parametrize("command", ["consume", "replay", "serve"])
def test_each_environment_variable_sets_its_option(command, clean_env):
    for s in _settings_of(command):
        text, expected = _sample(s)
        clean_env.setenv(s.env, text)
        assert getattr(_parse(command), s.dest) == expected, s.env
        clean_env.delenv(s.env)


def test_examples_of_variables_flags_and_their_precedence(clean_env):
    clean_env.setenv("SEGMENTER_EXACTLY_ONCE", "1")
    clean_env.setenv("SEGMENTER_MODEL", "river")
    clean_env.setenv("SEGMENTER_SOURCE", "file:x")
    clean_env.setenv("SEGMENTER_BATCH_SIZE", "7")
    args = _parse("consume")
    assert (args.exactly_once, args.model, args.source, args.batch_size) == (True, "river", "file:x", 7)
    args = _parse("consume", "--model", "kmeans", "--source", "file:y", "--batch-size", "9")
    assert (args.model, args.source, args.batch_size) == ("kmeans", "file:y", 9), "a flag beats its variable"
    clean_env.setenv("SEGMENTER_EXACTLY_ONCE", "off")
    assert _parse("consume").exactly_once is False
    assert _parse("consume", "--exactly-once").exactly_once is True
    clean_env.setenv("SEGMENTER_REPLAY_LIMIT", "100")
    assert _parse("replay").limit == 100
    assert _parse("replay").invalid_every == 0


def test_kafka_bootstrap_servers_stands_in_for_segmenter_bootstrap_servers(clean_env):
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:1")
    assert _parse("consume").bootstrap_servers == "k:1"
    clean_env.setenv("SEGMENTER_BOOTSTRAP_SERVERS", "s:2")
    assert _parse("consume").bootstrap_servers == "s:2"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SEGMENTER_MODEL", "forest", "SEGMENTER_MODEL='forest' is not one of kmeans, river"),
        ("SEGMENTER_CLIENT", "java", "SEGMENTER_CLIENT='java'"),
        ("SEGMENTER_EXACTLY_ONCE", "maybe", "SEGMENTER_EXACTLY_ONCE='maybe' is not a switch value"),
        ("SEGMENTER_BATCH_SIZE", "lots", "value 'lots' (from --batch-size or SEGMENTER_BATCH_SIZE)"),
        ("SEGMENTER_REPLAY_RATE", "fast", "SEGMENTER_REPLAY_RATE"),
    ],
)  # fmt: skip
def test_a_bad_environment_value_is_a_usage_error_naming_the_variable(
    variable, value, says, clean_env, capsys
):
    clean_env.setenv(variable, value)
    command = "replay" if "REPLAY" in variable else "consume"
    with pytest.raises(SystemExit) as exit_:
        _parse(command)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_consume_option_fills_a_settings_field_or_is_read_by_the_command():
    """A new row reaches RunnerSettings by its name alone, and a misnamed row fails here."""
    read_by_cli = {
        "client",
        "model_dir",
        "model_key_file",
        "allow_unrelated_model",
        "shadow_model_dir",
        "metrics_port",
        "metrics_host",
        "min_event_time",
        "source",
        "sink",
        "dead_letters",
        "model",
        "river_learning_rate",
        "tick",
        "clock",
        "state_ttl",
    }  # fmt: skip  (the last three: consumer.settings.time_settings)
    targets = {s.target for table in settings.CONSUME for s in table}
    unclaimed = targets - _fields(RunnerSettings) - _fields(Topics) - _fields(ClientConfig) - read_by_cli
    assert not unclaimed, f"options that fill nothing: {sorted(unclaimed)}"
    derived = {"topics", "min_event_ms", "time"}  # built by consumer.cli.runner_settings from several options
    internal = {"poll_timeout_s", "retry_timeout_s", "drift_every_s"}  # tuned in code, not options
    assert _fields(RunnerSettings) - targets - derived - internal == set(), (
        "a RunnerSettings field no option sets"
    )
    assert {s.target for s in settings.TOPICS} - {"partitions"} == _fields(Topics)
    assert {s.target for s in settings.REPLAY} == _fields(ReplayOptions)


def test_runner_settings_are_built_from_the_parsed_options(clean_env):
    clean_env.setenv("SEGMENTER_EXACTLY_ONCE", "1")
    clean_env.setenv("SEGMENTER_DLQ_TOPIC", "dead")
    args = _parse("consume", "--batch-size", "7", "--static-membership", "--reset-state")
    args.min_event_ms = settings.min_event_ms(args.min_event_time)
    built = runner_settings(args)
    assert built == RunnerSettings(
        batch_size=7, exactly_once=True, static_membership=True, reset_state=True,
        topics=Topics(dead_letter="dead"), min_event_ms=args.min_event_ms,
    )  # fmt: skip


def test_replay_options_are_built_from_the_parsed_options(clean_env):
    clean_env.setenv("SEGMENTER_REPLAY_DATASET", "synthetic:5")
    args = _parse("replay", "--rate", "50", "--limit", "3")
    assert settings.build(ReplayOptions, args, settings.REPLAY) == ReplayOptions("synthetic:5", 50.0, 3, 0, 7)


def test_build_refuses_a_field_given_by_a_table_and_derived():
    args = _parse("replay")
    with pytest.raises(TypeError, match="seed"):
        settings.build(ReplayOptions, args, settings.REPLAY, seed=1)


def test_no_repr_shows_the_sasl_password(clean_env):
    clean_env.setenv("SEGMENTER_SASL_PASSWORD", PASSWORD)
    args = _parse("consume", "--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN")
    args.min_event_ms = None
    for shown in (
        repr(args),
        str(vars(args)),
        repr(settings.client_config(args, "t")),
        repr(runner_settings(args)),
    ):
        assert PASSWORD not in shown
    assert args.sasl_password.reveal() == PASSWORD
    args = _parse("replay", "--sasl-password", PASSWORD)
    assert PASSWORD not in repr(args)


def test_the_model_key_is_never_an_option_only_the_path_of_its_file(clean_env, tmp_path):
    key = "k" * 64
    clean_env.setenv("SEGMENTER_MODEL_KEY", key)
    clean_env.setenv("SEGMENTER_MODEL_KEY_FILE", str(tmp_path / "model.key"))
    for command in ("consume", "serve"):
        args = _parse(command)
        assert args.model_key_file == str(tmp_path / "model.key"), "a path, as given"
        assert key not in repr(args)
    secrets_only_in_the_environment = {"SEGMENTER_MODEL_KEY", "SEGMENTER_WEB_SECRET_KEY"}
    assert not secrets_only_in_the_environment & set(ALL), "a secret as a flag would show in ps"
    assert {s.env for s in ALL.values() if s.type is Secret} == {"SEGMENTER_SASL_PASSWORD"}


def test_serve_passes_every_web_option_to_gunicorn(clean_env, tmp_path):
    from deploy.web.serve import server_environment

    args = _parse("serve", "--workers", "3", "--metrics-dir", str(tmp_path))
    env = server_environment(args, base={})
    for s in WEB:
        if s.env.startswith("SEGMENTER_WEB_"):
            assert env[s.env] == str(getattr(args, s.dest))
    assert env["SEGMENTER_WEB_WORKERS"] == "3"


def test_the_readme_holds_the_settings_table_made_from_the_tables():
    readme = (REPO / "README.md").read_text()
    assert markdown() in readme, "README out of date: paste the output of `python -m deploy.settings_table`"
    for env in ALL:
        assert f"`{env}`" in readme
