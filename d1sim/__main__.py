"""``python -m d1sim``: the same as the ``d1sim`` command."""

from d1sim.simulator.cli import main

raise SystemExit(main())
