"""The mock D1 server behind ``d1sim serve``: inbound API, admin API, planner and dispatcher.

Modules: ``server`` (the server object), ``app`` (its Flask app, mounting the rest),
``responses`` (prefixes, JSON and error answers), ``inbound`` (``/banking/v1``), ``admin`` and
``admin_runs`` (``/_sim``), ``orders`` (order -> one-card scenario -> outbox run), ``uploads``
and ``jobs`` (runs the admin API asks for, planned off the request threads within a budget),
``cancel``, ``dispatcher`` and ``lanes`` (background delivery), ``issuers`` (settings and virtual clocks),
``store`` (SQLite, through ``simulator.storage``), ``config`` (settings, config file),
``demo`` (the mock-D1 part of ``d1sim demo``).
docs/server.md is the user's guide.
"""
