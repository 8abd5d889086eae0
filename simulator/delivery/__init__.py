"""D1's sender: deliver planned notifications to a receiver the way D1 would, durably.

Modules: ``engine`` (send a run's deliveries, settle each answer), ``retry`` (what an answer
means and how long to wait), ``auth`` (no auth, static bearer, OAuth2, signatures), ``outbox``
(the SQLite outbox that makes a run resumable), ``terms`` (the ids a stored delivery is found
by). Used by ``d1sim replay`` and the mock D1.
"""
