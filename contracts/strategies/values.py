"""Field-level building blocks: identifiers, moments near a fixed epoch, vocabulary picks.

Every strategy here shrinks towards one small readable value (the epoch itself, the first
carrier, the first site, an all-zero id), so a failing payload shrinks to something a person
can read at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, NoReturn

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy

from d1sim.contracts.notification.documents import load_document
from d1sim.contracts.notification.vocabulary import CARRIERS, PRODUCTION_SITES, Carrier
from d1sim.contracts.payloads.factory import DEFAULT_START

# Times are integer offsets from one fixed instant: they shrink to the instant itself.
EPOCH: datetime = DEFAULT_START
MS_PER_DAY = 86_400_000
MAX_START_OFFSET_MS = 365 * MS_PER_DAY
MAX_STEP_MS = 3 * MS_PER_DAY

HEX = "0123456789abcdef"
DIGITS = "0123456789"
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I/O/Q: carriers avoid them in tracking numbers

# The known (closed in the strict profile) error codes are data in the operation schema.
ERROR_CODES: tuple[str, ...] = tuple(
    load_document("operation.schema.json")["properties"]["errorCode"]["anyOf"][0]["enum"]
)


# Not st.uuids(): it draws from one shared Random, which neither shrinks nor lets the shrinker
# drop list elements cleanly. 30 hex digits in the uuid4 layout shrink to 00000000-0000-4000-...
def _uuid4_layout(number: int) -> str:
    h = f"{number:030x}"
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-8{h[15:18]}-{h[18:]}"


operation_ids: SearchStrategy[str] = st.integers(0, 16**30 - 1).map(_uuid4_layout)
carriers: SearchStrategy[Carrier] = st.sampled_from(CARRIERS)
production_sites: SearchStrategy[str] = st.sampled_from(PRODUCTION_SITES)
error_codes: SearchStrategy[str] = st.sampled_from(ERROR_CODES)
booleans: SearchStrategy[bool] = st.booleans()


def failing(message: str) -> SearchStrategy[Any]:
    """A strategy that raises ``InvalidArgument(message)`` when drawn, never when built.

    Public strategies return this for bad arguments so they stay composable and the error
    surfaces inside the test that draws from them (as hypothesis-jsonschema does).
    """

    def fail() -> NoReturn:
        raise InvalidArgument(message)

    return st.builds(fail)


@cache
def between(low: int, high: int) -> SearchStrategy[int]:
    """``st.integers(low, high)``, built once: strategies are drawn from in hot loops."""
    return st.integers(low, high)


def draw_text(draw: DrawFn, alphabet: str, size: int) -> str:
    """Exactly ``size`` characters from ``alphabet`` (shrinks to the first character repeated).

    One integer choice, written in base ``len(alphabet)``: far cheaper to draw than ``size``
    characters, and it shrinks just as well.
    """
    number, base, chars = draw(between(0, len(alphabet) ** size - 1)), len(alphabet), []
    for _ in range(size):
        number, digit = divmod(number, base)
        chars.append(alphabet[digit])
    return "".join(reversed(chars))


def draw_card_id(draw: DrawFn) -> str:
    """A D1-looking card id, four hex groups: ``0000-0000-0000-0000`` when shrunk."""
    digits = draw_text(draw, HEX, 16)
    return "-".join(digits[i : i + 4] for i in range(0, 16, 4))


def draw_later(
    draw: DrawFn, moment: datetime, *, min_ms: int = 0, max_ms: int = MAX_STEP_MS
) -> datetime:
    """A moment ``min_ms..max_ms`` milliseconds after ``moment`` (shrinks to the earliest)."""
    return moment + timedelta(milliseconds=draw(between(min_ms, max_ms)))


def draw_tracking_number(draw: DrawFn, carrier: Carrier) -> str:
    """Fill the carrier's pattern ('#' digit, '?' letter) with drawn characters."""
    # Always draw as many characters as the longest pattern needs: the choices then do not
    # depend on the carrier, so the shrinker can move to the first carrier without misaligning.
    digits = iter(draw_text(draw, DIGITS, _MOST_DIGITS))
    letters = iter(draw_text(draw, LETTERS, _MOST_LETTERS))
    pattern = carrier.tracking_pattern
    return "".join(next(digits) if c == "#" else next(letters) if c == "?" else c for c in pattern)


_MOST_DIGITS = max(c.tracking_pattern.count("#") for c in CARRIERS)
_MOST_LETTERS = max(c.tracking_pattern.count("?") for c in CARRIERS)


def draw_correlation(draw: DrawFn) -> dict[str, str]:
    """inputFileName and issuerRequestId of a file-based order, or nothing (the shrunk case)."""
    if not draw(booleans):
        return {}
    day, seq = draw_text(draw, DIGITS, 8), draw_text(draw, DIGITS, 3)
    return {
        "inputFileName": f"ORDERS_{day}_{seq}.csv",
        "issuerRequestId": f"REQ-{draw_text(draw, DIGITS, 8)}-{draw_text(draw, LETTERS, 4)}",
    }


@dataclass(frozen=True, slots=True)
class Order:
    """The facts every notification of one order (one operationId) repeats."""

    operation_id: str
    card_id: str
    start: datetime
    due_date: date
    delivery_estimate: datetime
    site: str
    carrier: Carrier
    tracking_number: str
    correlation: Mapping[str, str] = field(default_factory=dict)
    consumer_id: str | None = None  # deprecated field, still sent by some tenants


def draw_order(
    draw: DrawFn, *, card_id: str | None = None, operation_id: str | None = None
) -> Order:
    """Draw one order; the dueDate falls 1-30 days after startTime, delivery 1-10 days later."""
    start = draw_later(draw, EPOCH, max_ms=MAX_START_OFFSET_MS)
    due = start.date() + timedelta(days=draw(between(1, 30)))
    eta = datetime.combine(due, start.timetz()) + timedelta(days=draw(between(1, 10)))
    carrier = draw(carriers)
    return Order(
        operation_id=operation_id if operation_id is not None else draw(operation_ids),
        card_id=card_id if card_id is not None else draw_card_id(draw),
        start=start,
        due_date=due,
        delivery_estimate=eta,
        site=draw(production_sites),
        carrier=carrier,
        tracking_number=draw_tracking_number(draw, carrier),
        correlation=draw_correlation(draw),
        consumer_id=f"consumer-{draw_text(draw, HEX, 8)}" if draw(booleans) else None,
    )
