"""The edges: everything that talks to a network, a disk or a terminal, built on ``d1sim.contracts``.

Rooms: ``cli`` (the ``d1sim`` command), ``validate`` (check notification files, in parallel for
big inputs), ``delivery`` (D1's sender: retry rules, authentication, the SQLite outbox),
``replay`` (play scenarios against a receiver), ``check`` (the receiver checker, its transports
and the pytest plugin), ``reports`` (JSON/JUnit and check reports), ``receiver`` (the reference
receiver), ``d1`` (the mock D1 server). ``servers`` runs any WSGI app; ``errors`` holds the one
usage error and exit codes.
"""
