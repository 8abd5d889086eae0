"""Map the repository's top-level rooms into the one ``d1sim`` package when a wheel is built.

The repository keeps ``contracts/``, ``simulator/``, ``schemas/`` and ``scenarios/`` at its top;
installed, they live under ``d1sim.``. Editable installs need no copy: ``d1sim/__init__.py``
extends its ``__path__`` to the checkout.
"""

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOMS = ("contracts", "simulator", "schemas", "scenarios")


class D1simLayout(BuildHookInterface):  # type: ignore[type-arg]
    """Place each room under ``d1sim/`` in a standard (non-editable) wheel."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "standard":
            for room in ROOMS:
                build_data["force_include"][room] = f"d1sim/{room}"
