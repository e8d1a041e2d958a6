"""The README's benchmark table, rendered from one run's results: every goal beside its measured
figure and, where it falls short, by what factor.

``python -m bench`` prints it (and writes its rows to the JSON); ``python -m bench.readme_table [FILE]``
renders a saved run (default ``bench/results/latest.json``), so the README's figures always come from one run
and are never copied by hand.

>>> shortfall(4_748, at_least=10_021 * 0.7)
'**short**, 1.48× off'
>>> shortfall(87, at_most=100), shortfall(0.7971, at_least=0.8)
('ok', '**short**, 1.004× off')
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.goals import PEER_GOAL, PROCESSOR_GOAL, RESTORE_GOAL, RESULTS, SCORER_GOAL

CLIENTS = ("kafka-python", "confluent")  # in the order every run measures them (bench.__main__)


def shortfall(measured: float, *, at_least: float | None = None, at_most: float | None = None) -> str:
    """``ok``, or how far ``measured`` is from the goal as a factor (how many times better it must get)."""
    factor = at_least / measured if at_least is not None else measured / at_most
    if factor <= 1:
        return "ok"
    digits = 3 if round(factor, 2) == 1 else 2
    return f"**short**, {factor:.{digits}f}× off"


def rows(r: dict) -> list[tuple[str, str, str]]:
    """(what, measured, goal and verdict) rows of one run's ``results``."""
    table = [
        (
            "raw consume, kafka-python / confluent (reads only)",
            " / ".join(f"{r[f'raw/{c}']['events_per_s']:,.0f}" for c in CLIENTS) + " events/s",
            "reference",
        )
    ]
    for client in CLIENTS:
        scorer = r[f"scorer/{client}/at-least-once"]["events_per_s"]
        ceiling = r[f"passthrough/{client}/at-least-once"]["events_per_s"]
        goal = f"≥ 0.7× passthrough — {shortfall(scorer / ceiling, at_least=0.7)}"
        if client in SCORER_GOAL:
            floor = SCORER_GOAL[client]
            goal += f"; ≥ {floor:,} events/s — {shortfall(scorer, at_least=floor)}"
        table.append(
            (
                f"scorer at-least-once, {client}",
                f"{scorer:,.0f} events/s = **{scorer / ceiling:.2f}× its passthrough** "
                f"({ceiling:,.0f} events/s)",
                goal,
            )
        )
    for client in CLIENTS:
        alos = r[f"scorer/{client}/at-least-once"]["events_per_s"]
        eos = r[f"scorer/{client}/exactly-once"]["events_per_s"]
        ceiling = r[f"passthrough/{client}/exactly-once"]["events_per_s"]
        table.append(
            (
                f"scorer exactly-once, {client}",
                f"{eos:,.0f} events/s = {eos / alos:.3f}× at-least-once "
                f"({eos / ceiling:.2f}× its passthrough, {ceiling:,.0f})",
                f"≥ 0.8× at-least-once — {shortfall(eos / alos, at_least=0.8)}",
            )
        )
    ticks, off = r["processor/ticks"]["events_per_s"], r["processor/no-ticks"]["events_per_s"]
    table.append(
        (
            "processor alone, no broker, one core, daily ticks / ticks off",
            f"{ticks:,.0f} / {off:,.0f} events/s",
            f"≥ {PROCESSOR_GOAL:,} — {shortfall(ticks, at_least=PROCESSOR_GOAL)} / "
            f"{shortfall(off, at_least=PROCESSOR_GOAL)}",
        )
    )
    table += _peer_rows(r)
    latency = [r[f"latency/{c}"] for c in CLIENTS]
    rate = latency[0].get("rate", 2_000.0)  # runs before 2026-12-02 did not record it: the default then
    table.append(
        (
            f"end-to-end latency at {rate:,.0f} events/s, p50/p95/p99",
            ", ".join(
                f"{lat['p50_ms']:.0f}/{lat['p95_ms']:.0f}/{lat['p99_ms']:.0f} ms ({c})"
                for lat, c in zip(latency, CLIENTS, strict=True)
            ),
            "p99 ≤ 100 ms — " + " / ".join(shortfall(lat["p99_ms"], at_most=100) for lat in latency),
        )
    )
    table += _state_rows(r)
    table += _tick_rows(r)
    if "scale-out" in r:
        table += _scale_out_rows(r["scale-out"])
    return table


def _peer_rows(r: dict) -> list[tuple[str, str, str]]:
    ours = [r[f"scorer/{c}/at-least-once"]["events_per_s"] for c in CLIENTS]
    naive = r["naive"]["events_per_s"]
    table = [
        (
            "naive baseline (one-row DataFrame `predict` per event)",
            f"{naive:,.0f} events/s; ours {ours[0] / naive:.0f}× (kafka-python), "
            f"{ours[1] / naive:.0f}× (confluent)",
            "≥ 50× — " + " / ".join(shortfall(o / naive, at_least=50) for o in ours),
        )
    ]
    for peer, name in (("Quix Streams peer", "quix"), ("Bytewax peer (in-memory state)", "bytewax")):
        theirs = r[f"{name}/at-least-once"]["events_per_s"]
        goals = [PEER_GOAL[c] for c in CLIENTS]
        table.append(
            (
                peer,
                f"{theirs:,.0f} events/s; ours {ours[0] / theirs:.2f}× (kafka-python) / "
                f"{ours[1] / theirs:.2f}× (confluent)",
                " / ".join(f"≥ {g:.0f}×" for g in goals)
                + " — "
                + " / ".join(shortfall(o / theirs, at_least=g) for o, g in zip(ours, goals, strict=True)),
            )
        )
    return table


def _state_rows(r: dict) -> list[tuple[str, str, str]]:
    memory, table_memory = r["memory"], r["memory/table"]
    restore = [r[f"restore/{c}"]["per_s"] for c in CLIENTS]
    customers = memory["customers"]
    return [
        (
            f"memory per tracked customer at {customers:,}",
            f"{memory['bytes_per_customer']:.0f} bytes (entries {memory['entry_bytes']:.0f} bytes)",
            f"≤ 250 — {shortfall(memory['bytes_per_customer'], at_most=250)}",
        ),
        (
            f"memory per customer, 12-column table model, at {table_memory['customers']:,}",
            f"{table_memory['bytes_per_customer']:.0f} bytes "
            f"(entries {table_memory['entry_bytes']:.0f} bytes)",
            f"≤ 400 — {shortfall(table_memory['bytes_per_customer'], at_most=400)}",
        ),
        (
            "restore from the changelog, read and judged as the scorer restores "
            "(`consumer.state_restore.judge`)",
            f"{restore[0]:,.0f} (kafka-python) / {restore[1]:,.0f} (confluent) customers/s",
            " / ".join(f"≥ {RESTORE_GOAL[c] // 1000}k" for c in CLIENTS)
            + " — "
            + " / ".join(
                shortfall(rate, at_least=RESTORE_GOAL[c]) for rate, c in zip(restore, CLIENTS, strict=True)
            ),
        ),
    ]


def _tick_rows(r: dict) -> list[tuple[str, str, str]]:
    tick, replay = r["tick"], r["replay/cdnow"]
    customers = tick["customers"]
    return [
        (
            f"ageing tick over {customers:,} stored customers, everyone re-scored",
            f"{tick['customers_per_s']:,.0f} customers/s ({tick['median_seconds']:.2f} s), "
            f"+{tick['peak_mb']:.1f} MB peak",
            f"≥ 500k/s, ≤ 50 MB — {shortfall(tick['customers_per_s'], at_least=500_000)}, "
            f"{shortfall(tick['peak_mb'], at_most=50)}",
        ),
        (
            f"scheduled ticks over the same {customers:,}: "
            "the first (everyone, proving horizons) / the next day's",
            f"{tick['scheduled_first_s']:.2f} s / {tick['scheduled_next_s']:.2f} s "
            f"({tick['scheduled_next_rescored']:,} re-scored, {tick['scheduled_next_skipped']:,} skipped); "
            f"the schedule holds {tick['schedule_bytes_per_customer']:.1f} bytes a customer",
            "reference",
        ),
        (
            "CDNOW file-mode replay, `--tick 1d` vs `--tick 0` "
            f"(median of {replay['repeats']} each, in-process)",
            f"{replay['ticks_1d_s']:.1f} s / {replay['ticks_off_s']:.1f} s = {replay['ratio']:.2f}×",
            f"≤ 2× — {shortfall(replay['ratio'], at_most=2)}",
        ),
    ]


def _scale_out_rows(s: dict) -> list[tuple[str, str, str]]:
    one, two, pauses = s["one"], s["two"], s["pauses"]
    gaps = [
        pauses["dynamic"]["steady"],
        pauses["dynamic"]["leave"],
        pauses["dynamic"]["join"],
        pauses["static"]["restart"],
    ]
    return [
        (
            f"scale-out, {s['client']}, 6 partitions: 1 / 2 instances",
            f"{one['events_per_s']:,.0f} / {two['events_per_s']:,.0f} events/s = {s['speedup']:.2f}× "
            f"({one['cpu_us_per_event']:.0f} / {two['cpu_us_per_event']:.0f} µs CPU an event)",
            "reference",
        ),
        (
            f"longest output gap at {pauses['dynamic']['rate']:,.0f} events/s: steady / instance leaves / "
            "joins (dynamic) / restarts (static)",
            "all partitions "
            + " / ".join(f"{g['all_ms']:,}" for g in gaps)
            + " ms; one partition "
            + " / ".join(f"{g['partition_ms']:,}" for g in gaps)
            + " ms",
            "reference",
        ),
    ]


def markdown(table: list[tuple[str, str, str]]) -> str:
    """:func:`rows` as the README's markdown table."""
    lines = ["| what | measured | goal |", "|---|---|---|"]
    lines += [f"| {what} | {measured} | {goal} |" for what, measured, goal in table]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.readme_table", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", default=RESULTS, help="a run's JSON")
    args = parser.parse_args()
    saved = json.loads(args.results.read_text())
    print(f"<!-- {args.results.name}: {saved['when']}, {saved['events']:,} events -->")
    print(markdown(rows(saved["results"])))


if __name__ == "__main__":
    main()
