"""SYNTHETIC customer events for load tests and demos: made up, seeded, never real people.

Every customer follows one of a few behavioural ``PERSONAS`` (so that segments exist) and has made-up
demographics. Event ids start with ``syn-`` and customer ids with ``syn-c`` so synthetic data is never
mistaken for real data. Arrays are drawn with numpy per chunk of customers (fast enough for a million
customers); within a chunk the events come in event-time order, chunks follow each other.

>>> events = list(synthetic_events(3, seed=7))
>>> events == list(synthetic_events(3, seed=7))
True
>>> sorted({e.type for e in events}) >= ["profile", "purchase"]
True
>>> all(e.event_id.startswith("syn-") for e in events)
True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from model.events import Event

__all__ = ["DEFAULT_START_MS", "PERSONAS", "Persona", "synthetic_events", "synthetic_personas"]

DEFAULT_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: fixed, so output never depends on the clock
DAY_MS = 86_400_000
CHUNK = 20_000
CATEGORIES = ("books", "music", "film", "games", "garden", "kitchen", "toys", "sports", "beauty", "tech")
CHANNELS = ("web", "app", "store")
COUNTRIES = ("US", "DE", "GB", "FR", "NL", "SE", "ES", "PL")
GENDERS = ("female", "male", "nonbinary")


class Persona(NamedTuple):
    name: str
    share: float
    extra_purchases: float  # Poisson mean on top of the first purchase
    log_amount: float  # lognormal order value: mean of log(amount)
    refund_p: float
    visits: float  # Poisson mean
    n_categories: int
    lapses: bool  # buys only in the first weeks after joining
    age: float
    log_income: float


PERSONAS = (
    Persona("loyal_high_value", 0.15, 10.0, 4.3, 0.03, 8.0, 6, False, 46.0, 11.3),
    Persona("regular", 0.30, 4.0, 3.4, 0.05, 4.0, 4, False, 38.0, 10.8),
    Persona("bargain_hunter", 0.20, 7.0, 2.3, 0.08, 6.0, 3, False, 29.0, 10.3),
    Persona("lapsed_one_timer", 0.25, 0.0, 3.0, 0.10, 1.0, 1, True, 35.0, 10.6),
    Persona("refund_heavy", 0.10, 3.0, 3.7, 0.50, 3.0, 3, False, 33.0, 10.7),
)
_P = {field: np.array([getattr(p, field) for p in PERSONAS]) for field in Persona._fields[1:]}


def synthetic_personas(n_customers: int, seed: int) -> dict[str, str]:
    """The persona behind each synthetic customer id (the ground truth for segment tests)."""
    out: dict[str, str] = {}
    for start in range(0, n_customers, CHUNK):
        persona = _draw_personas(_rng(seed, start), min(CHUNK, n_customers - start))
        out.update((_customer_id(start + i), PERSONAS[p].name) for i, p in enumerate(persona.tolist()))
    return out


def synthetic_events(
    n_customers: int, seed: int, start_ms: int = DEFAULT_START_MS, days: int = 365
) -> Iterator[Event]:
    """Seeded synthetic profile, purchase, refund and visit events for ``n_customers`` customers."""
    counter = 0
    for start in range(0, n_customers, CHUNK):
        rng = _rng(seed, start)
        size = min(CHUNK, n_customers - start)
        for event in _chunk(rng, start, size, start_ms, days):
            yield Event(f"syn-{seed}-e{counter}", *event)
            counter += 1


def _rng(seed: int, start: int) -> np.random.Generator:
    return np.random.default_rng([seed, start // CHUNK])


def _customer_id(index: int) -> str:
    return f"syn-c{index:07d}"


def _draw_personas(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.choice(len(PERSONAS), size=size, p=_P["share"])


def _chunk(rng: np.random.Generator, start: int, size: int, start_ms: int, days: int) -> list[tuple]:
    persona = _draw_personas(rng, size)
    join = rng.uniform(0, days * 0.8, size)
    end = np.where(_P["lapses"][persona], np.minimum(join + rng.uniform(1, 30, size), days), days)
    ids = [_customer_id(start + i) for i in range(size)]
    rows = _profiles(rng, persona, join, ids, start_ms)
    rows += _purchases_and_refunds(rng, persona, join, end, ids, (start_ms, days))
    who = np.repeat(np.arange(size), rng.poisson(_P["visits"][persona]))
    ts = _ms(start_ms, rng.uniform(join[who], end[who]))
    channel = rng.integers(0, len(CHANNELS), who.size).tolist()
    rows += [
        (ids[c], "visit", t, None, None, None, CHANNELS[ch], None)
        for c, t, ch in zip(who.tolist(), ts, channel, strict=True)
    ]
    rows.sort(key=lambda row: row[2])
    return rows


def _profiles(rng, persona, join, ids, start_ms) -> list[tuple]:
    age = np.clip(rng.normal(_P["age"][persona], 9.0), 18, 90).astype(int).tolist()
    income = np.round(rng.lognormal(_P["log_income"][persona], 0.35), -2).tolist()
    gender = rng.choice(len(GENDERS), size=len(ids), p=[0.49, 0.49, 0.02]).tolist()
    country = rng.integers(0, len(COUNTRIES), len(ids)).tolist()
    ts = _ms(start_ms, join)
    return [
        (ids[i], "profile", ts[i], None, None, None, None,
         {"age": age[i], "gender": GENDERS[gender[i]], "income": income[i], "country": COUNTRIES[country[i]]})
        for i in range(len(ids))
    ]  # fmt: skip


def _purchases_and_refunds(rng, persona, join, end, ids, window: tuple[int, int]) -> list[tuple]:
    start_ms, total_days = window
    n = 1 + rng.poisson(_P["extra_purchases"][persona])
    who = np.repeat(np.arange(len(ids)), n)
    days = rng.uniform(join[who], end[who])
    days[np.r_[0, np.cumsum(n)[:-1]]] = join  # the first purchase happens on joining
    amount = np.round(rng.lognormal(_P["log_amount"][persona[who]], 0.5), 2)
    offset = rng.integers(0, len(CATEGORIES), len(ids))[who]
    category = ((offset + rng.integers(0, _P["n_categories"][persona[who]])) % len(CATEGORIES)).tolist()
    channel = rng.integers(0, len(CHANNELS), who.size).tolist()
    quantity = 1 + rng.poisson(0.4, who.size)
    ts = _ms(start_ms, days)
    rows = [
        (ids[c], "purchase", t, a, q, CATEGORIES[k], CHANNELS[ch], None)
        for c, t, a, q, k, ch in zip(
            who.tolist(), ts, amount.tolist(), quantity.tolist(), category, channel, strict=True
        )
    ]
    refunded = rng.random(who.size) < _P["refund_p"][persona[who]]
    refund_days = np.minimum(days[refunded] + rng.uniform(1, 20, int(refunded.sum())), total_days)
    refund_ts = _ms(start_ms, refund_days)
    rows += [
        (ids[c], "refund", t, a, None, None, None, None)
        for c, t, a in zip(who[refunded].tolist(), refund_ts, amount[refunded].tolist(), strict=True)
    ]
    return rows


def _ms(start_ms: int, days: np.ndarray) -> list[int]:
    return (start_ms + (np.asarray(days) * DAY_MS).astype(np.int64)).tolist()
