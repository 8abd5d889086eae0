"""The contract as documents: OpenAPI 3.1 for the receiver and mock D1, AsyncAPI for the webhook.

Modules: ``documents`` (build the documents around the packaged schemas), ``paths`` (the inbound
path items ``d1sim serve`` answers, and path-item helpers), ``admin`` (its ``/_sim`` path items).
``d1sim export`` prints them.
"""

from d1sim.contracts.openapi.documents import build_asyncapi, build_openapi

__all__ = ["build_asyncapi", "build_openapi"]
