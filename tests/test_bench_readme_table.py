"""The README's benchmark table is rendered from one run's results (``bench.readme_table``): every
goal row carries a verdict, and a shortfall says by what factor."""

import copy

import pytest

from bench.readme_table import markdown, rows, shortfall

PASSTHROUGH = {"events_per_s": 10_000.0}


def _run(scale_out: bool = True) -> dict:
    """A whole run's results, shaped as ``python -m bench`` writes them (figures made up)."""
    results = {
        "naive": {"events_per_s": 85.0},
        "quix/at-least-once": {"events_per_s": 3_000.0},
        "bytewax/at-least-once": {"events_per_s": 5_000.0},
        "processor/ticks": {"events_per_s": 11_000.0},
        "processor/no-ticks": {"events_per_s": 14_000.0},
        "memory": {"customers": 1_000_000, "bytes_per_customer": 248.1, "entry_bytes": 130.0},
        "memory/table": {"customers": 1_000_000, "bytes_per_customer": 396.4, "entry_bytes": 278.3},
        "tick": {
            "customers": 1_000_000,
            "median_seconds": 0.8,
            "customers_per_s": 1_250_000.0,
            "peak_mb": 7.1,
            "scheduled_first_s": 4.4,
            "scheduled_next_s": 0.25,
            "scheduled_next_rescored": 21_697,
            "scheduled_next_skipped": 978_303,
            "schedule_bytes_per_customer": 8.5,
        },
        "replay/cdnow": {"ticks_1d_s": 9.0, "ticks_off_s": 4.0, "ratio": 2.25, "repeats": 3},
    }
    for client, scorer in (("kafka-python", 4_000.0), ("confluent", 7_000.0)):
        results[f"raw/{client}"] = {"events_per_s": 120_000.0}
        for mode, share in (("at-least-once", 1.0), ("exactly-once", 0.9)):
            results[f"scorer/{client}/{mode}"] = {"events_per_s": scorer * share}
            results[f"passthrough/{client}/{mode}"] = dict(PASSTHROUGH)
        results[f"latency/{client}"] = {"p50_ms": 40.0, "p95_ms": 70.0, "p99_ms": 90.0, "rate": 1500.0}
        results[f"restore/{client}"] = {"per_s": 120_000.0}
    if scale_out:
        gap = {"all_ms": 20, "partition_ms": 40}
        results["scale-out"] = {
            "client": "kafka-python",
            "one": {"events_per_s": 4_000.0, "cpu_us_per_event": 230.0},
            "two": {"events_per_s": 7_600.0, "cpu_us_per_event": 240.0},
            "speedup": 1.9,
            "pauses": {
                "dynamic": {"rate": 2000.0, "steady": gap, "leave": gap, "join": gap},
                "static": {"restart": gap},
            },
        }
    return results


def test_a_goal_met_reads_ok_and_a_shortfall_gives_its_factor():
    assert shortfall(100, at_least=100) == shortfall(100, at_most=100) == "ok"
    assert shortfall(25_000, at_least=100_000) == "**short**, 4.00× off"
    assert shortfall(192, at_most=100) == "**short**, 1.92× off"
    assert shortfall(0.7971, at_least=0.8) == "**short**, 1.004× off"  # never rounds to "1.00× off"


def test_every_goal_of_a_whole_run_gets_a_verdict():
    table = rows(_run())
    verdicts = {what: goal for what, _, goal in table}
    assert verdicts["scorer at-least-once, kafka-python"] == "≥ 0.7× passthrough — **short**, 1.75× off"
    assert verdicts["scorer exactly-once, confluent"] == "≥ 0.8× at-least-once — ok"
    assert verdicts["end-to-end latency at 1,500 events/s, p50/p95/p99"] == "p99 ≤ 100 ms — ok / ok"
    assert verdicts[
        "restore from the changelog, read and judged as the scorer restores (`consumer.state_restore.judge`)"
    ].endswith("— ok / **short**, 1.25× off")
    goals = [goal for _, _, goal in table if goal != "reference"]
    assert all(" — " in goal for goal in goals)
    assert any("**short**" in goal for goal in goals)
    assert any(goal.endswith("— ok") for goal in goals)
    assert len(table) == len(rows(_run(scale_out=False))) + 2
    assert markdown(table).count("\n") == len(table) + 1  # header and rule, one line a row


@pytest.mark.parametrize("missing", ["naive", "restore/confluent", "replay/cdnow"])
def test_a_run_missing_a_result_fails_loudly(missing):
    partial = copy.deepcopy(_run())
    del partial[missing]
    with pytest.raises(KeyError, match=missing):
        rows(partial)
