"""``python -m d1sim``: the same as the ``d1sim`` command."""

from d1sim.simulator.cli.dispatch import main

raise SystemExit(main())
