"""Search by cardId, operationId or issuerRequestId: the outbox's index of ids, then the bodies.

The outbox indexes every id a delivery carries (``delivery_terms``); the bodies of the
deliveries found say which field matched. Files of an older d1sim have no index: their bodies
are scanned (``instr`` on the JSON text of the value, quotes included, so ``REQ-1`` never
matches ``REQ-10``). The mock D1's ``d1_orders`` table answers its own orders by index first.

Example::

    >>> from d1sim.simulator.ui.queries import OutboxReader
    >>> search(OutboxReader(":memory:"), "REQ-1")
    []
"""

from __future__ import annotations

from typing import Any

import orjson

from d1sim.simulator.delivery.terms import matched_field, token
from d1sim.simulator.ui.queries import _COLUMNS, _NAMING, ANY_ISSUER, PAGE, DeliveryRow, OutboxReader

Hit = dict[str, Any]  # {"cardId", "matched": the field that matched, "runId"}


def search(reader: OutboxReader, text: str, limit: int = PAGE) -> list[Hit]:
    """Cards whose cardId, operationId or issuerRequestId is exactly ``text``."""
    text = text.strip()
    if not text or not reader.has_outbox:
        return []
    hits: dict[tuple[str, str], Hit] = {}
    for hit in [*_orders(reader, text, limit), *_bodies(reader, text, limit)]:
        hits.setdefault((hit["cardId"], hit["runId"] or ""), hit)
    return list(hits.values())[:limit]


def _orders(reader: OutboxReader, text: str, limit: int) -> list[Hit]:
    if not reader.has_orders:
        return []
    rows = reader.db.execute(
        f"SELECT card_id, operation_id, run_id FROM d1_orders WHERE ({ANY_ISSUER} AND card_id = ?) "
        f"OR operation_id = ? OR ({ANY_ISSUER} AND request_id = ?) LIMIT ?", (text, text, text, limit),
    ).fetchall()
    return [{"cardId": card, "runId": run,
             "matched": "cardId" if card == text else "operationId" if op == text else "issuerRequestId"}
            for card, op, run in rows]


def _bodies(reader: OutboxReader, text: str, limit: int) -> list[Hit]:
    args: tuple[Any, ...]
    if reader.has_terms:
        where, args = _NAMING, (token(text),)
    else:
        needle = orjson.dumps(text).decode()
        where, args = "(instr(card_ids, ?) > 0 OR instr(body, ?) > 0)", (needle, needle.encode())
    rows = reader.db.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE {where} ORDER BY id LIMIT ?", (*args, limit),
    ).fetchall()
    hits = []
    for item in map(DeliveryRow.from_row, rows):
        for op in item.operations():
            matched = matched_field(op, text)
            if matched and isinstance(op.get("cardId"), str):
                hits.append({"cardId": op["cardId"], "matched": matched, "runId": item.run_id})
    return hits
