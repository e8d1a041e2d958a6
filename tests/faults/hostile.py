"""A seeded generator of malformed customer events, each one certain to be rejected.

Every record starts from a valid purchase and breaks it in one of the ways real producers do:
not JSON, bad UTF-8, the wrong JSON type, a missing field, a field of the wrong type, a value too
large, a time in the future, a negative amount, a record key naming another customer, NaN, a type
no one knows, a field that does not belong to the type, an unprintable id, a nesting bomb, objects
nested just shallow enough to parse, no record key, a time in epoch seconds. The kind
is returned beside the record, so a test can report which kind slipped through.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator

Pair = tuple[bytes | None, bytes]
Breaker = Callable[[random.Random, dict], Pair]


def _base(rng: random.Random) -> dict:
    return {
        "event_id": f"h-{rng.getrandbits(48):x}",
        "customer_id": f"c{rng.randrange(100_000):05d}",
        "type": "purchase",
        "ts": 1_704_067_200_000 + rng.randrange(10**10),
        "amount": round(rng.uniform(1, 500), 2),
        "quantity": rng.randint(1, 5),
        "category": rng.choice(["books", "music", "film"]),
    }


def _dump(event: dict) -> bytes:
    return json.dumps(event).encode()


def _keyed(event: dict, value: bytes) -> Pair:
    return str(event.get("customer_id", "x")).encode(), value


def not_json(rng, e) -> Pair:
    raw = _dump(e)
    broken = rng.choice(
        [raw[: rng.randrange(1, len(raw) - 1)], b"<xml/>", b"customer=1&amount=2", b"{'a': 1}"]
    )
    return _keyed(e, broken)


def bad_utf8(rng, e) -> Pair:
    raw = _dump(e)
    cut = raw.index(b'"category"')
    return _keyed(e, raw[:cut] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + raw[cut:])


def wrong_json_type(rng, e) -> Pair:
    return _keyed(e, json.dumps(rng.choice([[e], "purchase", 42, None, True])).encode())


def missing_field(rng, e) -> Pair:
    del e[rng.choice(["event_id", "customer_id", "type", "ts", "amount"])]
    return _keyed(e, _dump(e))


def wrong_field_type(rng, e) -> Pair:
    field, value = rng.choice(
        [
            ("amount", "12.50"),
            ("amount", True),
            ("amount", {"value": 3}),
            ("quantity", 1.5),
            ("quantity", "2"),
            ("ts", [2024, 1, 1]),
            ("customer_id", 3.5),
            ("customer_id", ["c1"]),
            ("type", 1),
            ("category", 7),
        ]
    )
    e[field] = value
    return _keyed(e, _dump(e))


def huge_value(rng, e) -> Pair:
    field, value = rng.choice(
        [
            ("amount", 10**12),
            ("amount", 1e300),
            ("quantity", 10**9),
            ("ts", 10**20),
            ("customer_id", "c" * 500),
            ("category", "x" * 1000),
            ("padding", "p" * 70_000),  # the whole message is over the size limit
        ]
    )
    e[field] = value
    return _keyed(e, _dump(e))


def future_timestamp(rng, e) -> Pair:
    days = rng.randint(2, 10_000)
    e["ts"] = int(time.time() * 1000) + days * 86_400_000
    return _keyed(e, _dump(e))


def negative_amount(rng, e) -> Pair:
    field = rng.choice(["amount", "quantity", "ts"])
    e[field] = -rng.randint(1, 10**6)
    return _keyed(e, _dump(e))


def key_mismatch(rng, e) -> Pair:
    return f"other-{e['customer_id']}".encode(), _dump(e)


def not_a_number(rng, e) -> Pair:
    token = rng.choice(["NaN", "Infinity", "-Infinity"])
    return _keyed(e, _dump(e).replace(json.dumps(e["amount"]).encode(), token.encode(), 1))


def unknown_type(rng, e) -> Pair:
    e["type"] = rng.choice(["teleport", "PURCHASE", "", "purchase "])
    return _keyed(e, _dump(e))


def field_not_allowed(rng, e) -> Pair:
    e["type"] = "visit"  # keeps its amount, which a visit may not have
    return _keyed(e, _dump(e))


def unprintable_id(rng, e) -> Pair:
    e["customer_id"] = rng.choice(["   ", "c\x00", "c\n1", "\u200b\x07"])
    return _keyed(e, _dump(e))


def deep_object(rng, e) -> Pair:
    """A profile whose attributes nest objects or arrays deep enough to parse but not to ``repr``: the
    value of ``age`` (checked: a dead letter, whose message must still be built), or the attributes
    themselves as an array. (Nesting under a key no model uses is ignored and counted, not dead.)"""
    depth = rng.randint(800, 1_000)
    opener, closer, inside = rng.choice([('{"x":', "}", True), ("[", "]", False)])
    e.update(type="profile", attributes={})
    for field in ("amount", "quantity", "category"):
        del e[field]
    nested = f"{opener * depth}1{closer * depth}"
    value = f'{{"age": {nested}}}' if inside else nested
    raw = _dump(e).replace(b'"attributes": {}', f'"attributes": {value}'.encode())
    return _keyed(e, raw)


def keyless(rng, e) -> Pair:
    return None, _dump(e)


def epoch_seconds(rng, e) -> Pair:
    e["ts"] = rng.choice([e["ts"] // 1000, 0, "1970-01-01T00:00:01Z"])
    return _keyed(e, _dump(e))


def nesting_bomb(rng, e) -> Pair:
    depth = rng.randint(5_000, 30_000)
    return _keyed(e, b"[" * depth + b"]" * depth)


BREAKERS: dict[str, Breaker] = {
    f.__name__: f
    for f in (
        not_json,
        bad_utf8,
        wrong_json_type,
        missing_field,
        wrong_field_type,
        huge_value,
        future_timestamp,
        negative_amount,
        key_mismatch,
        not_a_number,
        unknown_type,
        field_not_allowed,
        unprintable_id,
        nesting_bomb,
        deep_object,
        keyless,
        epoch_seconds,
    )
}


def hostile_records(count: int, seed: int) -> Iterator[tuple[str, Pair]]:
    """``count`` (kind, (key, value)) malformed records, cycling through every kind."""
    rng = random.Random(seed)
    kinds = list(BREAKERS)
    for n in range(count):
        kind = kinds[n % len(kinds)]
        yield kind, BREAKERS[kind](rng, _base(rng))


def mixed_stream(valid: list[Pair], count: int, seed: int) -> tuple[list[Pair], dict[bytes, str]]:
    """``valid`` with ``count`` hostile records spread through it at seeded positions.

    Returns the stream and, per hostile value, its kind (values are unique by their random event id,
    except for the few kinds that drop it, which is fine: the map only names kinds in messages).
    """
    rng = random.Random(seed)
    hostile = list(hostile_records(count, seed))
    slots = sorted(rng.randrange(len(valid) + 1) for _ in hostile)
    out: list[Pair] = []
    kinds: dict[bytes, str] = {}
    previous = 0
    for slot, (kind, pair) in zip(slots, hostile, strict=True):
        out += valid[previous:slot]
        out.append(pair)
        kinds[pair[1]] = kind
        previous = slot
    return out + valid[previous:], kinds
