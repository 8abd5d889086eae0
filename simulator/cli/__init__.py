"""The ``d1sim`` command: ``main`` parses arguments and hands each sub-command to its module.

``dispatch`` holds ``main`` and the command table; each command has one module (``validate``,
``lifecycle``, ``receiver``, ``check``, ``replay``, ``runs``, ``demo``, ``serve``, ``export``)
with ``add_parser(subparsers)``; ``options`` holds the argument types they share. Command
modules are imported only when their command runs, so ``d1sim --help`` starts fast.
"""

from d1sim.simulator.cli.dispatch import main

__all__ = ["main"]
