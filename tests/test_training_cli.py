"""`segmenter train` on awkward input (issue 17, items 3 and 6-10): bad event lines, too few customers,
the output directory, a failed held-out check, unstable segments, missing values and odd CSV files,
Ctrl-C.

The CLI cases run `python -m deploy.cli train` in a subprocess and check the exit code, that the
failure is one ERROR line and that no traceback is printed; variants of a case run in-process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from waiting import with_ctrl_c_enabled

from deploy.cli import main
from model.artifact import MANIFEST_FILE
from model.events import encode_event
from model.synthetic import synthetic_events
from training.sources import load_table, random_holdout
from training.train import TrainOptions, train

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "training" / "examples"
FAST = ["--k-max", "3", "--no-report"]


def segmenter(*argv: str, **popen) -> subprocess.CompletedProcess:
    """``segmenter train ARGV`` in a subprocess (this worktree first on the path, no model key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTER_MODEL_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "deploy.cli", "train", "--log-level", "WARNING", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)


def error_line(stderr: str) -> str:
    """The one ERROR line of a failed run (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, stderr
    return errors[0]


def write_events(path: Path, customers: int, *, seed: int = 1, bad_every: int = 0, bad_tail: int = 0) -> int:
    """Synthetic events as JSONL; every ``bad_every``-th line is a bad one, plus ``bad_tail`` at the end."""
    bad = [b"not json", b'{"event_id": "x", "type": "visit", "ts": 0}', b'{"type": "teleport"}']
    lines = [encode_event(e) for e in synthetic_events(customers, seed=seed)]
    if bad_every:
        lines = [bad[i % 3] if i % bad_every == bad_every - 1 else line for i, line in enumerate(lines)]
    lines += [b"not json"] * bad_tail
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def write_table(path: Path, n: int, *, seed: int = 0, sep: str = ",", missing: dict | None = None) -> Path:
    """A customer table with two clear groups; ``missing`` = {column: how many values to blank}."""
    rng = np.random.default_rng(seed)
    busy = np.arange(n) % 2 == 0
    table = pd.DataFrame(
        {
            "member": [f"m{i:04d}" for i in range(n)],
            "visits": rng.poisson(np.where(busy, 14, 2)).astype(float),
            "fees": rng.lognormal(np.where(busy, 5.5, 3.5), 0.3),
            "plan": np.where(busy, "year", "day"),
        }
    )
    for column, count in (missing or {}).items():
        table.loc[table.index[1 : 1 + count], column] = np.nan
    table.to_csv(path, index=False, sep=sep)
    spec = {"id_column": "member", "numeric": ["visits", "fees"], "categorical": ["plan"]}
    path.with_suffix(".spec.json").write_text(json.dumps(spec))
    return path


def write_shapeless_table(path: Path, n: int = 300) -> Path:
    """Customers from one round 6-D cloud: no real segments, so bootstrap refits disagree."""
    rng = np.random.default_rng(0)
    columns = [f"x{i}" for i in range(6)]
    table = pd.DataFrame(rng.normal(size=(n, 6)), columns=columns)
    table.insert(0, "member", [f"m{i:04d}" for i in range(n)])
    table.to_csv(path, index=False)
    path.with_suffix(".spec.json").write_text(json.dumps({"id_column": "member", "numeric": columns}))
    return path


def table_args(path: Path) -> list[str]:
    return ["--table", str(path), "--spec", str(path.with_suffix(".spec.json"))]


# --- 6. malformed lines -------------------------------------------------------------------------


def test_ten_percent_bad_lines_stop_training_with_counts_by_reason(tmp_path):
    write_events(tmp_path / "e.jsonl", 150, bad_every=10)
    done = segmenter("--events", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "m"), *FAST)
    assert done.returncode == 2
    line = error_line(done.stderr)
    assert "--max-invalid-share" in line
    assert "1%" in line
    assert "not_json" in line
    assert "missing_field" in line
    assert "unknown_type" in line
    assert not (tmp_path / "m").exists()


def test_one_bad_line_at_the_end_is_skipped_counted_and_printed(tmp_path, capsys):
    lines = write_events(tmp_path / "e.jsonl", 150, bad_tail=1)
    out = tmp_path / "m"
    assert main(["train", "--events", str(tmp_path / "e.jsonl"), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "invalid    1 of" in printed, printed
    assert "not_json 1" in printed, printed
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["data"]["invalid_events"] == {"lines": lines, "skipped": 1, "by_reason": {"not_json": 1}}


def test_the_invalid_share_limit_is_an_option_with_its_default_in_help(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--max-invalid-share" in capsys.readouterr().out.replace("\n", " ")
    write_events(tmp_path / "e.jsonl", 150, bad_tail=1)
    argv = ["train", "--events", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "m"), *FAST]
    assert main([*argv, "--max-invalid-share", "0"]) == 2
    assert not (tmp_path / "m").exists()


# --- issue 12: --snapshots -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["sometimes", "12h", "3 days"])
def test_snapshots_that_do_not_parse_exit_2_naming_the_value_before_any_work(tmp_path, value):
    write_events(tmp_path / "e.jsonl", 60)
    done = segmenter(
        "--events", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "m"), "--snapshots", value
    )
    assert done.returncode == 2
    line = error_line(done.stderr)
    assert f"--snapshots must be monthly, none, or whole days such as 30d or 1w, got {value!r}" in line
    assert not (tmp_path / "m").exists()


def test_a_customer_table_has_no_clock_so_snapshots_are_refused(tmp_path, caplog):
    write_table(tmp_path / "t.csv", 60)
    argv = ["train", *table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), "--snapshots", "1w"]
    with caplog.at_level(logging.ERROR):
        assert main([*argv, *FAST]) == 2
    assert "--snapshots applies to --events" in caplog.text


def test_event_rows_are_as_of_the_end_and_each_snapshot_and_the_k_choice_is_printed(tmp_path, capsys):
    write_events(tmp_path / "e.jsonl", 150)
    out = tmp_path / "m"
    argv = ["train", "--events", str(tmp_path / "e.jsonl"), "--out", str(out), *FAST, "--snapshots", "2w"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / MANIFEST_FILE).read_text())["data"]
    assert data["snapshots"] == "2w"
    assert data["rows"] > data["customers"] == 150
    assert data["features_as_of"].startswith("end of history ")
    assert "every-2w snapshots" in data["features_as_of"]
    assert f"as of      {data['features_as_of']}" in printed
    assert "why k      k=" in printed, printed
    assert "silhouette    ARI min share" in printed, printed
    assert main([*argv[:-1], "none"]) == 2, "another --snapshots is another model: --force to replace"
    assert main([*argv[:-1], "none", "--force"]) == 0
    data = json.loads((out / MANIFEST_FILE).read_text())["data"]
    assert data["rows"] == data["customers"] == 150
    assert data["features_as_of"] == f"end of history {data['history_end'][:10]}"


# --- 7. too few customers -----------------------------------------------------------------------


def test_too_few_customers_are_refused_up_front_saying_how_many_are_needed(tmp_path):
    write_table(tmp_path / "t.csv", 3)
    done = segmenter(*table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"))
    assert done.returncode == 2
    line = error_line(done.stderr)
    assert "3 customers" in line, line
    assert "--k-max 8 needs at least 40" in line, line
    assert "n_samples" not in line


@pytest.mark.parametrize("customers", [1, 2])
def test_one_or_two_customers_get_our_words_not_sklearns(tmp_path, caplog, customers):
    write_table(tmp_path / "t.csv", customers)
    argv = ["train", *table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), "--k-max", "2"]
    with caplog.at_level(logging.ERROR):
        assert main(argv) == 2
    assert f"{customers} customer" in caplog.text
    assert "needs at least 10" in caplog.text
    assert "no usable feature" not in caplog.text


def test_small_data_skips_hdbscan_with_a_note_and_the_report_shows_it_and_imputed_counts(tmp_path):
    write_table(tmp_path / "t.csv", 40, missing={"fees": 3, "plan": 2})
    data = load_table(tmp_path / "t.csv", tmp_path / "t.spec.json", 0.1, seed=0)
    summary = train(data, tmp_path / "m", TrainOptions(k_max=2, stability_rounds=2))
    manifest = json.loads((tmp_path / "m" / MANIFEST_FILE).read_text())
    rows = {row["algorithm"]: row for row in manifest["algorithm_comparison"]}
    assert "skipped" in rows["hdbscan"]["note"]
    assert "50" in rows["hdbscan"]["note"]
    assert rows["kmeans"]["n_clusters"] == 2
    imputed = summary["imputed"]
    assert imputed["fees"]["count"] + data.frame.index[1:4].isin(list(data.holdout_ids)).sum() == 3
    assert imputed["fees"]["with"] == "median"
    assert imputed["plan"]["with"] == "'missing'"
    assert "visits" not in imputed
    assert manifest["imputed"] == imputed
    report = (tmp_path / "m" / "report.html").read_text()
    assert "Imputed values" in report
    assert "median" in report
    assert "skipped" in report


# --- 8. --out -----------------------------------------------------------------------------------


def test_an_out_path_that_is_a_file_is_refused_before_any_work(tmp_path):
    write_table(tmp_path / "t.csv", 60)
    (tmp_path / "taken").write_text("not a directory")
    done = segmenter(*table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "taken"), *FAST)
    assert done.returncode == 2
    line = error_line(done.stderr)
    assert f"--out {tmp_path / 'taken'} is a file" in line, line
    assert (tmp_path / "taken").read_text() == "not a directory"


def test_an_unwritable_out_is_refused_before_any_work(tmp_path, caplog):
    write_table(tmp_path / "t.csv", 60)
    (tmp_path / "file").write_text("x")
    argv = ["train", *table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "file" / "m"), *FAST]
    with caplog.at_level(logging.INFO):
        assert main(argv) == 2
    assert "cannot write" in caplog.text
    assert str(tmp_path / "file") in caplog.text
    assert "step preprocess" not in caplog.text


def test_a_different_model_is_replaced_only_with_force_and_the_same_one_freely(tmp_path, caplog):
    write_table(tmp_path / "t.csv", 60)
    out = tmp_path / "m"
    argv = ["train", *table_args(tmp_path / "t.csv"), "--out", str(out), *FAST]
    assert main(argv) == 0
    first = json.loads((out / MANIFEST_FILE).read_text())
    assert main(argv) == 0, "the same run again trains the same model: nothing to protect"
    second = json.loads((out / MANIFEST_FILE).read_text())
    assert second["model_sha256"] == first["model_sha256"]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main([*argv, "--seed", "7"]) == 2
    assert second["model_id"] in caplog.text
    assert "--force" in caplog.text
    assert "step preprocess" not in caplog.text, "refused before any work"
    assert json.loads((out / MANIFEST_FILE).read_text())["model_id"] == second["model_id"]
    assert main([*argv, "--seed", "7", "--force"]) == 0
    assert json.loads((out / MANIFEST_FILE).read_text())["seed"] == 7


# --- 9. failed held-out check -------------------------------------------------------------------


def test_a_failed_held_out_check_exits_1_and_writes_nothing(tmp_path):
    n = 200
    ids = [f"m{i:04d}" for i in range(n)]
    held = random_holdout(ids, 0.1, 0)
    rng = np.random.default_rng(3)
    trained = [i for i in ids if i not in held]
    high = set(trained[::2])  # training customers split 50/50; every held-out one is low
    table = pd.DataFrame(
        {"member": ids, "x": [100 + rng.random() if i in high else 1 + rng.random() for i in ids]}
    )
    table.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.spec.json").write_text(json.dumps({"id_column": "member", "numeric": ["x"]}))
    done = segmenter(*table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), "--k-max", "2")
    assert done.returncode == 1
    line = error_line(done.stderr)
    assert "held-out" in line, line
    assert "nothing written" in line, line
    assert not (tmp_path / "m").exists()


# --- unstable segments ----------------------------------------------------------------------------


def test_unstable_segments_are_a_warning_in_the_log_the_summary_and_the_manifest(tmp_path, capsys, caplog):
    write_shapeless_table(tmp_path / "t.csv")
    out = tmp_path / "m"
    with caplog.at_level(logging.WARNING):
        assert main(["train", *table_args(tmp_path / "t.csv"), "--out", str(out), *FAST]) == 0
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    stability = manifest["stability"]
    assert stability["ari_mean"] < 0.8
    assert 0 < stability["ari_mean"] < stability["agreement_mean"] < 1, "Rand index: agreement by chance too"
    expected = f"refits agree on {round(100 * stability['agreement_mean'])} % of customer pairs"
    assert manifest["stability_warning"].startswith(f"{expected}: treat these segments with care")
    assert expected in caplog.text
    printed = capsys.readouterr().out
    assert f"WARNING    {manifest['stability_warning']}" in printed, printed


def test_require_stable_turns_unstable_segments_into_a_one_line_failure_writing_nothing(tmp_path):
    write_shapeless_table(tmp_path / "t.csv")
    done = segmenter(*table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), *FAST, "--require-stable")
    assert done.returncode == 1
    line = error_line(done.stderr)
    assert "--require-stable" in line, line
    assert "% of customer pairs" in line, line
    assert "nothing written" in line, line
    assert not (tmp_path / "m").exists()


def test_require_stable_lets_stable_segments_through(tmp_path):
    write_table(tmp_path / "t.csv", 60)
    argv = ["train", *table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), *FAST, "--require-stable"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "m" / MANIFEST_FILE).read_text())["stability_warning"] == ""


# --- 10. missing values and odd CSV files -------------------------------------------------------


def test_imputed_values_are_printed_per_column(tmp_path, capsys):
    write_table(tmp_path / "t.csv", 60, missing={"fees": 5})
    assert main(["train", *table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), *FAST]) == 0
    printed = capsys.readouterr().out
    imputed = next(line for line in printed.splitlines() if line.startswith("imputed"))
    assert "fees" in imputed, printed
    assert "median" in imputed, printed
    assert "visits" not in imputed, printed


def test_a_semicolon_separated_csv_is_read(tmp_path):
    write_table(tmp_path / "t.csv", 60, sep=";")
    assert main(["train", *table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), *FAST]) == 0


def test_an_empty_csv_is_named(tmp_path):
    write_table(tmp_path / "t.csv", 60)
    (tmp_path / "t.csv").write_text("")
    done = segmenter(*table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), *FAST)
    assert done.returncode == 2
    line = error_line(done.stderr)
    assert f"{tmp_path / 't.csv'} is empty" in line, line


@pytest.mark.parametrize("kind", ["header-only csv", "empty jsonl"])
def test_no_rows_says_0_rows(tmp_path, caplog, kind):
    if kind == "header-only csv":
        write_table(tmp_path / "t.csv", 60)
        (tmp_path / "t.csv").write_text("member,visits,fees,plan\n")
        source = table_args(tmp_path / "t.csv")
    else:
        (tmp_path / "e.jsonl").write_text("\n")
        source = ["--events", str(tmp_path / "e.jsonl")]
    with caplog.at_level(logging.ERROR):
        assert main(["train", *source, "--out", str(tmp_path / "m"), *FAST]) == 2
    assert "0 rows" in caplog.text, caplog.text
    assert "entirely missing" not in caplog.text, caplog.text


# --- the feature spec: strict keys, declared ranges ----------------------------------------------


def test_a_misspelled_spec_key_exits_2_naming_it_and_the_right_one(tmp_path):
    write_table(tmp_path / "t.csv", 60)
    spec = tmp_path / "t.spec.json"
    spec.write_text(
        json.dumps({"id_column": "member", "numeric": ["visits", "fees"], "categoricals": ["plan"]})
    )
    done = segmenter(*table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), *FAST)
    assert done.returncode == 2
    line = error_line(done.stderr)
    assert f'{spec}: feature spec: unknown key "categoricals" (did you mean "categorical"?)' in line, line
    assert not (tmp_path / "m").exists()


def test_values_outside_the_declared_ranges_are_kept_and_counted_in_warning_summary_manifest_report(
    tmp_path, capsys, caplog
):
    write_table(tmp_path / "t.csv", 60)
    table = pd.read_csv(tmp_path / "t.csv")
    ranges = {"fees": {"unit": "EUR", "minimum": 0, "maximum": 100}, "visits": {"minimum": 3, "maximum": 50}}
    spec = {"id_column": "member", "numeric": ["visits", "fees"], "categorical": ["plan"], "ranges": ranges}
    (tmp_path / "t.spec.json").write_text(json.dumps(spec))
    above, below = int((table["fees"] > 100).sum()), int((table["visits"] < 3).sum())
    assert above > 0, "the table must leave the range for this test to mean anything"
    assert below > 0, "the table must leave the range for this test to mean anything"
    out = tmp_path / "m"
    with caplog.at_level(logging.WARNING):
        assert main(["train", *table_args(tmp_path / "t.csv"), "--out", str(out), "--k-max", "2"]) == 0
    low, high = table["fees"].min(), table["fees"].max()
    fees = f"fees: {above} above the maximum 100 (observed {low:,.6g} .. {high:,.6g})"
    visits = f"visits: {below} below the minimum 3 (observed {table['visits'].min():,.6g} .."
    warning = next(
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "ranges" in r.getMessage()
    )
    assert fees in warning, warning
    assert visits in warning, warning
    assert "widen the range in the spec or fix the data" in warning
    printed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ranges"))
    assert fees in printed, printed
    assert visits in printed, printed
    recorded = json.loads((out / MANIFEST_FILE).read_text())["data"]["out_of_range"]
    assert recorded["fees"] == {"below_minimum": 0, "above_maximum": above, "minimum": 0, "maximum": 100,
                                "observed_min": low, "observed_max": high}  # fmt: skip
    assert (recorded["visits"]["below_minimum"], recorded["visits"]["above_maximum"]) == (below, 0)
    report = (out / "report.html").read_text()
    assert "Declared ranges" in report
    assert "above_maximum" in report
    assert "widen the range in the spec or fix the data" in report


# --- 3. Ctrl-C and tracebacks -------------------------------------------------------------------


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTER_MODEL_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "deploy.cli", "train", "--log-level", "WARNING",
               "--events", str(fifo), "--out", str(tmp_path / "m")]  # fmt: skip
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=with_ctrl_c_enabled
    )
    try:
        with fifo.open("wb") as writer:  # returns once training has opened the file for reading
            writer.write(b"".join(encode_event(e) + b"\n" for e in synthetic_events(5, seed=1)))
            writer.flush()
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    line = error_line(stderr)
    assert "interrupted" in line
    assert not (tmp_path / "m").exists()


def test_a_traceback_is_logged_only_at_debug(tmp_path, caplog):
    write_table(tmp_path / "t.csv", 3)
    argv = [*table_args(tmp_path / "t.csv"), "--out", str(tmp_path / "m")]
    with caplog.at_level(logging.DEBUG):
        assert main(["train", *argv]) == 2
        assert main(["train", "--log-level", "DEBUG", *argv]) == 2
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [bool(r.exc_info) for r in failures] == [False, True]
