"""Helpers shared by the web tests: customers, and reading field messages out of a rendered form."""

from __future__ import annotations

from html.parser import HTMLParser

# A CDNOW-like loyal customer: recent, frequent, big spender; and a lapsed one-off small buyer.
LOYAL = {
    "recency_days": 6.0,
    "frequency": 14.0,
    "monetary_total": 620.0,
    "avg_order_value": 44.3,
    "tenure_days": 520.0,
    "purchase_rate": 0.81,
    "decayed_spend": 210.0,
}
LAPSED = {
    "recency_days": 530.0,
    "frequency": 1.0,
    "monetary_total": 12.5,
    "avg_order_value": 12.5,
    "tenure_days": 530.0,
    "purchase_rate": 0.06,
    "decayed_spend": 0.2,
}


# Members of the shoppers example table (training/examples/shoppers.csv), one like each true segment.
SHOPPERS = {
    "young bargain hunters": {
        "age": 23, "income": 24_800, "household_size": 1, "tenure_months": 9, "orders_12m": 15,
        "spend_12m": 310.4, "days_since_last_order": 6, "returns_12m": 5, "visits_30d": 24,
        "gender": "female", "region": "east", "channel": "online",
    },
    "affluent families": {
        "age": 41, "income": 98_000, "household_size": 4, "tenure_months": 60, "orders_12m": 16,
        "spend_12m": 2_250.0, "days_since_last_order": 14, "returns_12m": 1, "visits_30d": 7,
        "gender": "male", "region": "north", "channel": "mixed",
    },
    "lapsed store shoppers": {
        "age": 62, "income": 41_000, "household_size": 2, "tenure_months": 150, "orders_12m": 0,
        "spend_12m": 0.0, "days_since_last_order": 610, "returns_12m": 0, "visits_30d": 0,
        "gender": "female", "region": "south", "channel": "store",
    },
    "loyal big spenders": {
        "age": 51, "income": 150_000, "household_size": 2, "tenure_months": 200, "orders_12m": 55,
        "spend_12m": 9_800.0, "days_since_last_order": 2, "returns_12m": 2, "visits_30d": 36,
        "gender": "other", "region": "west", "channel": "mixed",
    },
}  # fmt: skip


def form_data(customer: dict) -> dict[str, str]:
    """A customer as the browser posts it: every value a string, unknown as empty."""
    return {name: "" if value is None else str(value) for name, value in customer.items()}


class FieldMessages(HTMLParser):
    """Maps each input's id to the error messages rendered right after it (Bootstrap invalid-feedback)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[str, list[str]] = {}
        self.invalid_inputs: set[str] = set()
        self._last_input: str | None = None
        self._capturing = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag in ("input", "select", "textarea") and attributes.get("type") not in ("hidden", "submit"):
            self._last_input = attributes.get("id")
            if "is-invalid" in classes:
                self.invalid_inputs.add(self._last_input)
        elif tag == "div" and "invalid-feedback" in classes and self._last_input:
            self._capturing = True
            self.messages.setdefault(self._last_input, []).append("")

    def handle_endtag(self, tag):
        if tag == "div":
            self._capturing = False

    def handle_data(self, data):
        if self._capturing and self._last_input:
            self.messages[self._last_input][-1] += data.strip()


def field_messages(html: str) -> FieldMessages:
    parser = FieldMessages()
    parser.feed(html)
    return parser
