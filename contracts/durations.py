"""Durations in scenario files: ``90s``, ``4h``, ``1h30m``, ``2d``, ISO 8601 ``PT4H``, or seconds.

Years and months are refused: their length depends on the calendar, and a scenario's virtual
clock must mean the same thing on every run.

Example::

    >>> from d1sim.contracts.scenario.durations import parse_duration, format_duration
    >>> parse_duration("1h30m"), parse_duration("PT4H")
    (datetime.timedelta(seconds=5400), datetime.timedelta(seconds=14400))
    >>> parse_duration(90)
    datetime.timedelta(seconds=90)
    >>> format_duration(parse_duration("P1DT2H"))
    '1d2h'
"""

from __future__ import annotations

import re
from datetime import timedelta

UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}

# Keep in step with $defs/duration in schemas/scenario.schema.json (a test compares them).
SHORT_PATTERN = r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|[wdhms]))+$"
ISO_PATTERN = (
    r"^P(?!$)(?:([0-9]+)W)?(?:([0-9]+)D)?"
    r"(?:T(?=[0-9])(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?)?$"
)
EXAMPLES = ("90s", "4h", "1h30m", "2d", "500ms", "PT4H", "P2D", "P1DT12H")

_SHORT = re.compile(SHORT_PATTERN)
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|[wdhms])")
_ISO = re.compile(ISO_PATTERN)


LONGEST = timedelta(days=3650)  # a scenario's clock must stay far inside datetime's range


class DurationError(ValueError):
    """A value that is not a duration this module reads."""


def parse_duration(value: str | int | float) -> timedelta:
    """Read a duration; numbers are seconds.

    Raises:
        DurationError: negative, longer than ten years, not a number or string, or not one of
            the accepted spellings.
    """
    try:
        span = _parse(value)
    except OverflowError:
        span = LONGEST * 2
    if span > LONGEST:
        raise DurationError(f"{value!r} is longer than {LONGEST.days} days")
    return span


def _parse(value: str | int | float) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DurationError(f"{value!r} is not a duration (use e.g. {', '.join(EXAMPLES[:5])})")
    if not isinstance(value, str):
        if value != value:  # NaN (YAML .nan) compares unequal to itself
            raise DurationError("NaN is not a duration")
        if value < 0:
            raise DurationError(f"{value!r} is negative; a duration is 0 or more seconds")
        return timedelta(seconds=value)
    text = value
    if _SHORT.match(text):
        return sum((float(n) * UNITS[unit] for n, unit in _PART.findall(text)), timedelta())
    iso = _ISO.match(text)
    if iso:
        weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise DurationError(
        f"{value!r} is not a duration (use e.g. {', '.join(EXAMPLES)}; "
        "ISO 8601 years and months are not accepted)"
    )


def format_duration(span: timedelta) -> str:
    """The shortest spelling :func:`parse_duration` reads back to ``span`` (``0s`` for zero)."""
    rest = round(span.total_seconds() * 1000)
    if rest < 0:
        raise DurationError(f"{span} is negative")
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(UNITS[unit].total_seconds() * 1000)
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
