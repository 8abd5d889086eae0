"""d1sim: contract, mock D1 and receiver checker for Thales D1 PRODUCE notifications.

The one name d1sim installs. Its rooms are the repository's top-level folders, mapped here at
build time (``hatch_build.py``):

- ``d1sim.contracts``: the pure core (validation, lifecycle, scenarios, strategies, checks);
- ``d1sim.simulator``: the edges (CLI, mock D1, sender, outbox, reference receiver, reports);
- ``d1sim.schemas`` and ``d1sim.scenarios``: data (JSON Schemas, lifecycle model, scenarios).
"""

import os as _os


def __getattr__(name: str) -> str:
    # The version is read from the installed metadata on first use: importing d1sim stays cheap.
    if name != "__version__":
        raise AttributeError(f"module 'd1sim' has no attribute {name!r}")
    from importlib import metadata

    try:
        return metadata.version("d1sim")
    except metadata.PackageNotFoundError:  # a bare checkout that was never installed
        return "0+unknown"

# In a checkout (editable install) the rooms sit beside this folder, not inside it: look there.
_here = _os.path.dirname(__file__)
if not _os.path.isdir(_os.path.join(_here, "contracts")):
    __path__.append(_os.path.dirname(_here))
