"""Fresh card and operation ids, so that no example of any check sees another one's state.

Hypothesis replays and shrinks examples, and shrunk examples share the same small ids (every
card becomes ``0000-0000-0000-0000``). Sent as drawn, the second example would land on the first
one's card, and a receiver would answer a duplicate where the check meant a new card. So every
drawn example is rewritten before it is sent: each distinct id gets a new one, equal ids stay
equal (one card's lifecycle is still one card), and ids that break their pattern are left
alone (an invalid example must stay invalid).

Example::

    >>> mint = IdMint(base=0)
    >>> ops = [{"cardId": "c", "operationId": "o"}, {"cardId": "c", "operationId": "o"}]
    >>> [op["cardId"] for op in fresh_operations(ops, mint)]
    ['0000-0000-0000-0000', '0000-0000-0000-0000']
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from d1sim.contracts.notification.documents import load_document

# Ids are rewritten only where they match their schema pattern (an invalid id stays invalid).
_PATTERNS = {
    name: re.compile(load_document("operation.schema.json")["properties"][name]["pattern"])
    for name in ("cardId", "operationId")
}


class IdMint:
    """Makes ids never used before: D1-style card ids and UUID operation ids.

    An id is a per-run random prefix followed by a counter, so ids are unique across runs
    against one persistent receiver (same seed, same examples) and, within a run, sort in the
    order they were made: :func:`fresh_operations` relies on that to keep the original ids'
    order, which breaks ties between two orders of one card. Pass ``base`` for repeatable ids.
    """

    def __init__(self, base: int | None = None) -> None:
        self._base = secrets.randbits(64) if base is None else base % (1 << 64)
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def _next(self) -> int:
        with self._lock:
            return next(self._counter)

    def card_id(self) -> str:
        """``xxxx-xxxx-xxxx-xxxx`` in hex, the shape of D1's card ids."""
        digits = f"{self._base >> 32:08x}{self._next():08x}"
        return "-".join(digits[i : i + 4] for i in range(0, 16, 4))

    def operation_id(self) -> str:
        """A UUID string, the shape of D1's operation ids."""
        return str(uuid.UUID(int=self._base << 64 | self._next()))

    def token(self) -> str:
        """A token no receiver issued (for the wrong-credentials case)."""
        return f"d1sim-wrong-{self._base:016x}{self._next():08x}"


def _renaming(operations: Sequence[Any], name: str, make: Callable[[], str]) -> dict[str, str]:
    # New ids are made in the sorted order of the old ones, so they compare the same way.
    values = {op.get(name) for op in operations if isinstance(op, Mapping)}
    valid = sorted(v for v in values if isinstance(v, str) and _PATTERNS[name].search(v))
    return {value: make() for value in valid}


def fresh_operations(operations: Sequence[Any], mint: IdMint) -> list[Any]:
    """Copies of ``operations`` with every valid cardId and operationId replaced consistently."""
    renamed = {
        "cardId": _renaming(operations, "cardId", mint.card_id),
        "operationId": _renaming(operations, "operationId", mint.operation_id),
    }
    result = []
    for op in operations:
        if isinstance(op, Mapping):
            op = dict(op)
            for name, table in renamed.items():
                value = op.get(name)
                if isinstance(value, str) and value in table:
                    op[name] = table[value]
        result.append(op)
    return result


def fresh_notification(body: Any, mint: IdMint) -> Any:
    """``body`` with fresh ids in its operations; anything not shaped like one is returned as is."""
    if isinstance(body, Mapping) and isinstance(body.get("operations"), list):
        return {**body, "operations": fresh_operations(body["operations"], mint)}
    return body
