"""The receiver checker behind ``d1sim check`` and the pytest plugin.

Modules: ``runner`` (run the named checks of ``d1sim.contracts.checks`` with hypothesis),
``transport`` (send over HTTP with httpx, or in process over WSGI; probe the receiver's state),
``plugin`` (the ``pytest11`` plugin: fixtures and ``--d1sim-*`` options), ``apps`` (tell WSGI
from ASGI apps, and call ASGI apps from sync code), ``serving`` (serve an integrator's app on a
loopback port), ``preflight`` (one notification first: wrong credentials are said once). Nothing is imported
here, so loading the plugin in an integrator's test run stays cheap.
"""
