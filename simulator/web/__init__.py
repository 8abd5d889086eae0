"""Serving WSGI apps on a port, and keeping the servers up and their callers honest.

``servers`` (run a Flask/WSGI app with waitress on a free loopback port, wait for it),
``connections`` (connection limits, idle and slow-client timeouts), ``origins`` (refuse
cross-origin writes to loopback APIs: Host, Origin and content-type checks) and
``request_log`` (one log line per request, text or JSON). Used by ``d1sim serve``,
``d1sim receiver`` and ``d1sim ui``.
"""
