"""d1sim: contract, mock D1 and receiver checker for Thales D1 PRODUCE notifications.

The one name d1sim installs. Its rooms are the repository's top-level folders, mapped here at
build time (``hatch_build.py``):

- ``d1sim.contracts``: the pure core (validation, lifecycle, scenarios, strategies, checks);
- ``d1sim.simulator``: the edges (CLI, mock D1, sender, outbox, reference receiver, reports);
- ``d1sim.schemas`` and ``d1sim.scenarios``: data (JSON Schemas, lifecycle model, scenarios).
"""

import os as _os
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("d1sim")
except _metadata.PackageNotFoundError:  # a bare checkout that was never installed
    __version__ = "0+unknown"

# In a checkout (editable install) the rooms sit beside this folder, not inside it: look there.
_here = _os.path.dirname(__file__)
if not _os.path.isdir(_os.path.join(_here, "contracts")):
    __path__.append(_os.path.dirname(_here))
