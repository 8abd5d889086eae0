"""The receiver checker behind ``d1sim check`` and the pytest plugin.

Modules: ``runner`` (run the named checks of ``d1sim.contracts.checks`` with hypothesis),
``transport`` (send over HTTP with httpx, or in process over WSGI; probe the receiver's state),
``plugin`` (the ``pytest11`` plugin: fixtures and ``--d1sim-*`` options). Nothing is imported
here, so loading the plugin in an integrator's test run stays cheap.
"""
