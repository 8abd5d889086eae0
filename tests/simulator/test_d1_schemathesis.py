"""schemathesis, an API tester d1sim did not write, against ``d1sim serve``'s own /openapi.json.

Every generated request must get an answer that is not a 5xx and that matches the published
document (status code, content type, body schema, ``Allow`` on a 405), and every request the
document allows must be taken (schemathesis's default checks, none relaxed): a scenario upload
the schema allows is accepted (202) and fails in its planning job if it is wrong. Half the cases
on an issuer's path act on the registered issuer. The server runs with ``loopback_webhooks``: a
generated webhook or token URL that leaves this machine is refused (403), so the dispatcher can
only ever reach loopback addresses. The longer campaign is ``tests/soak/hostile_inputs.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d1sim.simulator.d1.app import D1Server, create_app
from d1sim.simulator.d1.config import ServerSettings

MAX_EXAMPLES = int(os.environ.get("D1SIM_SCHEMATHESIS_EXAMPLES", "8"))
ISSUER = "ISSUER0001"  # registered: half the cases of an issuer's path act on it, not on a 404


def fuzzed_server(db: Path) -> D1Server:
    """A mock D1 whose webhooks cannot leave this machine, with one issuer to find.

    Planning is in processes, as by default: a generated scenario that would expand for minutes
    is killed at its budget, not left running on a thread after the test.
    """
    server = D1Server(ServerSettings(db_path=str(db), plan_workers=1, loopback_webhooks=True))
    server.register({"issuerId": ISSUER, "webhookUrl": "http://127.0.0.1:9/hook"})
    return server


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    server = fuzzed_server(tmp_path_factory.mktemp("schemathesis") / "d1.db")
    with server.running():
        yield schemathesis.openapi.from_wsgi("/openapi.json", create_app(server))


def on_known_issuer(case: schemathesis.Case, known: bool) -> schemathesis.Case:
    """``case``, acting on the registered issuer when ``known`` (a random id is a 404)."""
    if known and "issuerId" in (case.path_parameters or {}):
        case.path_parameters["issuerId"] = ISSUER
    return case


def fuzz(operation: schemathesis.APIOperation, max_examples: int) -> str | None:
    """Run generated cases of one operation with every default check; the first failure, or None."""

    @given(case=st.builds(on_known_issuer, operation.as_strategy(), st.booleans()))
    @settings(max_examples=max_examples, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate()

    try:
        check()
    except (AssertionError, BaseExceptionGroup, Exception) as exc:  # noqa: BLE001 - all, by operation
        return f"{operation.method.upper()} {operation.path}: {exc}"
    return None


def test_every_answer_keeps_the_published_contract(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    failures = [f for f in (fuzz(op, MAX_EXAMPLES) for op in operations) if f]
    assert not failures, "\n\n".join(failures)
