"""The outbox with the few extra queries the mock D1 needs (cancel, recover, status polling).

They sit in a subclass so that they share the outbox's connection and lock (one writer, no
cross-connection locking); each is a candidate to move into :class:`d1sim.simulator.delivery.outbox.Outbox`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from d1sim.simulator.delivery.outbox import _DELIVERY_COLUMNS, Outbox, StoredDelivery

# Ever handed to the sender: settled, tried (the budget resets on requeue, the last answer not).
_SENT = "(state != 'pending' OR attempts > 0 OR last_status IS NOT NULL OR last_error IS NOT NULL)"


class ServerOutbox(Outbox):
    """:class:`Outbox` plus: drop owed deliveries, find dead ones, list what was sent."""

    def drop(self, delivery_ids: Iterable[int]) -> int:
        """Delete owed deliveries that were never tried (a cancelled order's future); count them."""
        ids = [(i,) for i in delivery_ids]
        with self.transaction():
            before = self._db.total_changes
            self._db.executemany(
                "DELETE FROM deliveries WHERE id = ? AND state = 'pending' AND attempts = 0 "
                "AND last_status IS NULL AND last_error IS NULL",
                ids,
            )
            return self._db.total_changes - before

    def next_seq(self, run_id: str) -> int:
        """The seq a delivery appended to ``run_id`` gets."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries WHERE run_id = ?", (run_id,)
            ).fetchone()
        return int(row[0])

    def sent(self, run_id: str) -> list[StoredDelivery]:
        """A run's deliveries that were ever handed to the sender, in seq order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE run_id = ? AND {_SENT} ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [StoredDelivery.from_row(row) for row in rows]

    def dead_since(self, since: float, run_ids: Collection[str]) -> list[tuple[str, int]]:
        """(run id, delivery id) of dead deliveries of ``run_ids`` last tried at/after ``since``."""
        return [(r, i) for r, i, at in self._dead(run_ids) if at is not None and at >= since]

    def undelivered(self, run_ids: Collection[str]) -> list[tuple[str, int]]:
        """(run id, delivery id) of deliveries never delivered: dead, or waiting on a backoff."""
        rows = [(r, i) for r, i, _ in self._dead(run_ids)]
        with self._lock:
            for run_id in run_ids:
                rows += self._db.execute(
                    "SELECT run_id, id FROM deliveries WHERE run_id = ? AND state = 'pending' "
                    "AND next_attempt_at IS NOT NULL",
                    (run_id,),
                ).fetchall()
        return rows

    def _dead(self, run_ids: Collection[str]) -> list[tuple[str, int, float | None]]:
        rows: list[tuple[str, int, float | None]] = []
        with self._lock:
            for run_id in run_ids:
                rows += self._db.execute(
                    "SELECT d.run_id, d.id, (SELECT MAX(started_at) FROM attempts a WHERE "
                    "a.delivery_id = d.id) FROM deliveries d WHERE d.run_id = ? AND "
                    "d.state = 'dead' ORDER BY d.seq",
                    (run_id,),
                ).fetchall()
        return rows
