"""``d1sim export`` and ``GET /openapi.json``: the documents, and the server keeping to them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from d1sim.contracts.openapi.documents import build_asyncapi, build_openapi
from d1sim.simulator.cli import main
from d1sim.simulator.d1.app import D1Server, create_app
from d1sim.simulator.d1.config import ServerSettings
from tests.simulator.d1_support import ISSUER, ORDER, MockD1, mock_d1

DOC_URI = "urn:d1sim:openapi"
ORDER_PATH = "/banking/v1/issuers/{issuerId}/physicalCards/{cardId}/operations:production"
STATUS_PATH = "/banking/v1/issuers/{issuerId}/physicalCards/{cardId}/productionStatus"


@pytest.fixture(scope="module")
def d1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockD1]:
    with mock_d1(tmp_path_factory.mktemp("d1")) as mock:
        mock.register(timeScale=0)
        yield mock


def response_schema(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    """The JSON schema the document declares for one answer."""
    content = document["paths"][path][method]["responses"][status]["content"]
    return next(iter(content.values()))["schema"]


def assert_conforms(document: dict[str, Any], schema: dict[str, Any], body: Any) -> None:
    """``body`` validates against ``schema``, its refs resolved inside ``document``."""
    # The schema is lodged in a copy of the document so that its '#/components/...' refs resolve.
    lodged = {**document, "$defs": {"answer": schema}}
    resource = Resource.from_contents(lodged, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)
    validator = jsonschema.Draft202012Validator({"$ref": DOC_URI + "#/$defs/answer"}, registry=registry)
    assert [e.message for e in validator.iter_errors(body)] == [], body


@pytest.mark.parametrize("kind, builder", [("openapi", build_openapi), ("asyncapi", build_asyncapi)])
def test_export_prints_json_to_stdout(kind: str, builder: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", kind]) == 0
    assert json.loads(capsys.readouterr().out) == builder()


def test_export_writes_yaml_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "d1.asyncapi.yaml"
    assert main(["export", "asyncapi", "--format", "yaml", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "&id" not in text and yaml.safe_load(text) == build_asyncapi()


def test_an_unwritable_output_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "openapi", "-o", str(tmp_path / "missing" / "x.json")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_every_route_the_server_answers_is_in_the_document(tmp_path: Path) -> None:
    server = D1Server(ServerSettings(db_path=str(tmp_path / "d1.db")))
    try:
        rules = {
            (openapi_path(rule.rule), method.lower())
            for rule in create_app(server).url_map.iter_rules()
            for method in rule.methods or ()
            if method not in ("HEAD", "OPTIONS") and rule.endpoint != "static"
        }
    finally:
        server.stop()
    paths = build_openapi()["paths"]
    assert {(p, m) for p, m in rules if m not in paths.get(p, {})} == set()


def openapi_path(rule: str) -> str:
    """Flask's ``/x/<int:delivery_id>`` as OpenAPI's ``/x/{deliveryId}``."""

    def camel(match: re.Match[str]) -> str:
        head, *rest = match.group(1).split("_")
        return "{" + head + "".join(part.capitalize() for part in rest) + "}"

    return re.sub(r"<(?:\w+:)?(\w+)>", camel, rule)


def test_the_server_serves_its_openapi_document(d1: MockD1) -> None:
    answer = d1.http.get("/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.json() == build_openapi(server_paths=True)


def test_the_order_answers_conform_to_the_document(d1: MockD1) -> None:
    doc = d1.http.get("/openapi.json").json()
    accepted = d1.order("export-card-1")
    assert accepted.status_code == 202
    assert_conforms(doc, response_schema(doc, ORDER_PATH, "post", "202"), accepted.json())
    rejected = d1.order("export-card-2", {**ORDER, "distributionChannel": "POST"})
    assert rejected.status_code == 400
    assert_conforms(doc, response_schema(doc, ORDER_PATH, "post", "400"), rejected.json())


def test_the_production_status_answer_conforms_to_the_document(d1: MockD1) -> None:
    doc = build_openapi()
    assert d1.order("export-card-3").status_code == 202
    d1.wait_held("export-card-3", "CARD_SHIPPED")
    status = d1.status("export-card-3")
    assert status.status_code == 200 and status.json()["operations"], status.text
    assert_conforms(doc, response_schema(doc, STATUS_PATH, "get", "200"), status.json())


def test_the_admin_errors_conform_to_the_document(d1: MockD1) -> None:
    doc = build_openapi()
    missing = d1.http.get("/_sim/issuers/NOSUCHISSU")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert_conforms(doc, response_schema(doc, "/_sim/issuers/{issuerId}", "get", "404"), missing.json())


def test_the_token_answer_conforms_to_the_document(d1: MockD1) -> None:
    doc = build_openapi()
    cred = d1.http.post(f"/_sim/issuers/{ISSUER}/credentials").json()
    answer = d1.http.post(
        "/banking/v1/oauth2/token",
        auth=(cred["clientId"], cred["clientSecret"]),
        data={"grant_type": "client_credentials"},
    )
    assert_conforms(doc, response_schema(doc, "/banking/v1/oauth2/token", "post", "200"), answer.json())
