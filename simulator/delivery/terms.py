"""What a stored delivery can be found by: the cardIds, operationIds and issuerRequestIds it carries.

The outbox indexes them in ``delivery_terms`` as it stores deliveries, so the UI's search and
card timelines are index lookups, not scans of every body. The index is an SQLite FTS5 table
with one row per delivery (rowid = delivery id): storing 5,000 bulk deliveries adds 5,000 rows,
not the 150,000 a (term, delivery) table would need. Each id is indexed as one token, the hex
of its UTF-8 bytes (:func:`token`: one word for FTS5 whatever the id holds), so ``REQ-1`` never
matches ``REQ-10`` and case counts. A hit is still confirmed on the delivery it names (by
:func:`matched_field` or its card ids): an operationId may equal another delivery's cardId.
An SQLite without FTS5 gets no index: the UI scans, as it does over an older file.

Example::

    >>> body = (b'{"operations": [{"cardId": "c-1", "operationId": "op-1",'
    ...         b' "details": {"issuerRequestId": "REQ-1"}}]}')
    >>> sorted(search_terms(("c-1",), body))
    ['REQ-1', 'c-1', 'op-1']
    >>> matched_field({"cardId": "c-1", "details": {"issuerRequestId": "REQ-1"}}, "REQ-1")
    'issuerRequestId'
    >>> token("REQ-1"), token("req-1")
    ('5245512d31', '7265712d31')
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

TABLE = ("CREATE VIRTUAL TABLE delivery_terms USING fts5("
         "tokens, content='', detail=none, columnsize=0, tokenize='ascii')")
INSERT = "INSERT INTO delivery_terms (rowid, tokens) VALUES (?, ?)"
# A contentless FTS5 row is removed by repeating what was inserted.
DELETE = "INSERT INTO delivery_terms (delivery_terms, rowid, tokens) VALUES ('delete', ?, ?)"
MATCHING = "SELECT rowid FROM delivery_terms WHERE delivery_terms MATCH ?"
FIELDS = ("cardId", "operationId", "issuerRequestId")


def operations(body: bytes) -> list[dict[str, Any]]:
    """The operations of a notification body (none when it is not the usual JSON)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    ops = parsed.get("operations") if isinstance(parsed, dict) else None
    return [op for op in ops if isinstance(op, dict)] if isinstance(ops, list) else []


def identifiers(op: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, value) of an operation's cardId, operationId and issuerRequestId, where they are text."""
    for name, value in zip(FIELDS, _values(op), strict=True):
        if isinstance(value, str) and value:
            yield name, value


def _values(op: dict[str, Any]) -> tuple[Any, Any, Any]:
    details = op.get("details")
    request = op.get("issuerRequestId") or (details.get("issuerRequestId") if isinstance(details, dict) else None)
    return op.get("cardId"), op.get("operationId"), request


def matched_field(op: dict[str, Any], text: str) -> str | None:
    """Which of an operation's identifiers is exactly ``text``, if any."""
    return next((name for name, value in identifiers(op) if value == text), None)


def search_terms(card_ids: Iterable[str], body: bytes) -> set[str]:
    """Every identifier a delivery can be found by: its card ids and those of its operations."""
    terms = set(card_ids)
    for op in operations(body):  # on the planning hot path: a plain loop, no generator
        for value in _values(op):
            if isinstance(value, str) and value:
                terms.add(value)
    return terms


def token(term: str) -> str:
    """The one FTS5 token an id is indexed and looked up as: its UTF-8 bytes in hex (exact,
    several times cheaper than a hash)."""
    return term.encode("utf-8", "surrogatepass").hex()


def tokens(card_ids: Iterable[str], body: bytes) -> str:
    """The index row's text for a delivery (a planner may compute it ahead, off the sender)."""
    return " ".join([token(term) for term in search_terms(card_ids, body)])


def index_rows(deliveries: Iterable[tuple[int, Iterable[str], bytes]]) -> list[tuple[int, str]]:
    """(delivery id, tokens) rows for (delivery id, card ids, body) triples, for INSERT or DELETE
    (in any order: with ``detail=none`` a row is a set of tokens)."""
    return [(i, tokens(cards, body)) for i, cards, body in deliveries]


def backfill(db: sqlite3.Connection, chunk: int = 5000) -> None:
    """Index every delivery already stored (the migration to outbox schema version 4)."""
    try:
        db.execute(TABLE)
    except sqlite3.OperationalError:  # no FTS5 in this SQLite: no index, the UI scans
        return
    rows = db.execute("SELECT id, card_ids, body FROM deliveries ORDER BY id")
    while batch := rows.fetchmany(chunk):
        db.executemany(INSERT, index_rows((i, orjson.loads(cards), bytes(body)) for i, cards, body in batch))


def indexed(db: sqlite3.Connection) -> bool:
    """Whether this file has the index and this SQLite can read it."""
    try:
        db.execute("SELECT rowid FROM delivery_terms LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True
