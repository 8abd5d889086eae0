"""The OpenAPI and AsyncAPI documents are valid, stand alone, and carry the shipped schemas."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

from d1sim.contracts.openapi.documents import build_asyncapi, build_openapi, component_name, rewrite_ref
from tests.conftest import DATA, load_data

BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "openapi": build_openapi,
    "openapi-webhook-only": lambda: build_openapi(server_paths=False),
    "asyncapi": build_asyncapi,
}
KNOWN_BAD = sorted(load_data("invalid/expected-pointers.json"))
DOC_URI = "urn:d1sim:contract"


def offline(uri: str) -> Resource[Any]:
    """A retriever that refuses: every reference must resolve inside the loaded documents."""
    raise LookupError(f"would fetch {uri}")


def schema_validator(document: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for ``components/schemas/<name>``, resolving refs against the whole document."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry(retrieve=offline).with_resource(DOC_URI, resource)
    return jsonschema.Draft202012Validator({"$ref": f"{DOC_URI}#/components/schemas/{name}"}, registry=registry)


def asyncapi_validator() -> jsonschema.Draft7Validator:
    """The vendored AsyncAPI 3.0.0 JSON Schema (draft-07, bundles its definitions), offline."""
    meta = json.loads((DATA / "asyncapi" / "3.0.0.json").read_text(encoding="utf-8"))
    resource = Resource.from_contents(meta, default_specification=DRAFT7)
    registry: Registry[Any] = Registry(retrieve=offline).with_resource(meta["$id"], resource)
    return jsonschema.Draft7Validator(meta, registry=registry)


@pytest.mark.parametrize("server_paths", [True, False])
def test_the_openapi_document_is_valid_openapi_3_1(server_paths: bool) -> None:
    validate_openapi(build_openapi(server_paths))


def test_the_asyncapi_document_is_valid_asyncapi_3_0() -> None:
    errors = [e.message for e in asyncapi_validator().iter_errors(build_asyncapi())]
    assert errors == []


def test_the_asyncapi_meta_schema_rejects_a_broken_document() -> None:
    broken = build_asyncapi()
    broken["operations"]["sendProduceNotification"]["action"] = "publish"  # AsyncAPI 2 wording
    assert not asyncapi_validator().is_valid(broken)


def test_the_webhook_describes_d1s_delivery_rules() -> None:
    post = build_openapi()["webhooks"]["produceNotification"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Notification"}
    assert {"204", "408", "429", "4XX", "5XX"} <= set(post["responses"])
    assert post["security"] == [{"issuerBearer": []}]


def test_the_asyncapi_operation_is_d1_sending() -> None:
    doc = build_asyncapi()
    (operation,) = doc["operations"].values()
    message = doc["components"]["messages"]["produceNotification"]
    assert operation["action"] == "send"
    assert doc["channels"]["cardNotifications"]["address"] == "/notifications/d1/v2/issuers/{issuerId}/cards"
    assert "x-correlation-id" in message["headers"]["properties"]


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_embedded_schemas_have_no_ids_and_only_local_refs(kind: str) -> None:
    text = json.dumps(BUILDERS[kind]()["components"]["schemas"])
    assert '"$id"' not in text and '"$schema"' not in text
    assert ".schema.json" not in text


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_the_embedded_notification_schema_accepts_every_seed_example(kind: str, seed_examples: dict[str, Any]) -> None:
    validator = schema_validator(BUILDERS[kind](), "Notification")
    assert {name: [e.message for e in validator.iter_errors(body)] for name, body in seed_examples.items()} == {
        name: [] for name in seed_examples
    }


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("bad", KNOWN_BAD)
def test_the_embedded_notification_schema_rejects_known_bad_payloads(kind: str, bad: str) -> None:
    assert not schema_validator(BUILDERS[kind](), "Notification").is_valid(load_data(f"invalid/{bad}"))


def test_the_embedded_order_schemas_check_as_the_shipped_ones_do() -> None:
    doc = build_openapi()
    order = {"distributionChannel": "THALES", "shipment": {"type": "BULK", "deliveryAddress": {"line1": "x"}}}
    assert not schema_validator(doc, "InboundProductionOrder").is_valid(order)
    assert schema_validator(doc, "InboundProductionBatch").is_valid(
        {"cards": [{"cardId": "c-1", "distributionChannel": "INSTANT"}]}
    )
    assert not schema_validator(doc, "InboundProductionBatch").is_valid({"cards": [{"distributionChannel": "INSTANT"}]})


@pytest.mark.parametrize(
    "ref, owner, expected",
    [
        ("operation.schema.json", "Notification", "#/components/schemas/Operation"),
        ("types.schema.json#/$defs/dateTime", "Shipment", "#/components/schemas/Types/$defs/dateTime"),
        ("#/$defs/text", "InboundProductionOrder", "#/components/schemas/InboundProductionOrder/$defs/text"),
    ],
)
def test_refs_between_shipped_files_become_document_pointers(ref: str, owner: str, expected: str) -> None:
    assert rewrite_ref(ref, owner) == expected


def test_component_names_are_pascal_case_file_stems() -> None:
    assert component_name("last-checkpoint.schema.json") == "LastCheckpoint"
    assert component_name("sim-issuer.schema.json") == "SimIssuer"


def test_building_twice_gives_independent_equal_documents() -> None:
    first = build_openapi()
    first["paths"]["/_sim"]["get"]["parameters"].append({"name": "x"})
    first["components"]["schemas"]["Problem"]["required"].append("x")
    assert build_openapi() != first and build_openapi() == build_openapi()
