"""The reference receiver (``d1sim receiver``): a correct D1 PRODUCE webhook to compare against.

Modules: ``app`` (the Flask app, its config, auth and fault knobs), ``control`` (the
``/_receiver`` routes, same-origin writes only), ``store`` (its SQLite store of notifications
and converged card states).
"""

from d1sim.simulator.receiver.app import ReceiverConfig, create_app, running_receiver

__all__ = ["ReceiverConfig", "create_app", "running_receiver"]
