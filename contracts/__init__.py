"""The pure core: D1 PRODUCE notifications, lifecycle, scenarios, strategies and receiver checks.

Plain functions over plain data: no web framework, no HTTP client, no CLI, no SQLite (the
layering test holds this). Rooms: ``notification`` (schemas, validation, vocabulary),
``lifecycle`` (the state model, sequence rules, convergence, rendering), ``payloads``
(notification factory, inbound orders), ``scenario`` (loading, checks, expansion into a
timeline), ``openapi`` (the OpenAPI/AsyncAPI documents), ``strategies`` (hypothesis) and
``checks`` (the named receiver checks). ``problems`` is the one finding type they all return.
"""
