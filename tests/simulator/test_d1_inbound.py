"""Bad input to the mock D1 gets a clear 4xx in D1's (inbound) or problem+json (admin) shape:
never a 5xx, never a traceback, never a secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from d1sim.simulator.d1.config import ADMIN_TOKEN_ENV, admin_token_for, is_loopback
from d1sim.simulator.errors import UsageError
from tests.simulator.d1_support import CARDS, ISSUER, ORDER, OTHER, MockD1, mock_d1

ADDRESS = ORDER["shipment"]["deliveryAddress"]


@pytest.fixture(scope="module")
def d1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockD1]:
    with mock_d1(tmp_path_factory.mktemp("d1")) as mock:
        mock.register(timeScale=1)
        mock.register(OTHER, timeScale=1)
        yield mock


def order_url(card: str = "card-1", issuer: str = ISSUER) -> str:
    return f"{CARDS.format(issuer=issuer)}/{card}/operations:production"


def assert_d1_error(answer: httpx.Response, status: int, code: str, error: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["errorCode"] == code, body
    if error is not None:
        assert body["error"] == error, body


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}])
def test_calls_without_a_valid_token_get_401(d1: MockD1, headers: dict[str, str]) -> None:
    for answer in (
        d1.http.post(order_url(), json=ORDER, headers=headers),
        d1.http.get(f"{CARDS.format(issuer=ISSUER)}/card-1/productionStatus", headers=headers),
    ):
        assert_d1_error(answer, 401, "AUTHORIZER_UNAUTHORIZED")


def test_a_token_is_only_good_for_its_own_issuer(d1: MockD1) -> None:
    answer = d1.http.post(order_url(issuer=OTHER), json=ORDER, headers=d1.auth(ISSUER))
    assert_d1_error(answer, 401, "AUTHORIZER_UNAUTHORIZED")


def test_the_token_endpoint_checks_client_and_grant(d1: MockD1) -> None:
    cred = d1.http.post(f"/_sim/issuers/{ISSUER}/credentials", json={"clientId": "bank-app"}).json()
    url = "/banking/v1/oauth2/token"
    wrong = d1.http.post(url, auth=("bank-app", "wrong"), data={"grant_type": "client_credentials"})
    assert_d1_error(wrong, 401, "AUTHORIZER_UNAUTHORIZED")
    grant = d1.http.post(url, auth=("bank-app", cred["clientSecret"]), data={"grant_type": "password"})
    assert_d1_error(grant, 400, "FIELD_INVALID_VALUE", "grant_type")
    form = d1.http.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": "bank-app",
            "client_secret": cred["clientSecret"],
        },
    )
    token = form.json()
    assert form.status_code == 200 and token["token_type"] == "Bearer" and token["expires_in"] == "900"


@pytest.mark.parametrize(
    "body, code, field",
    [
        ({}, "FIELD_INVALID_FORMAT", "distributionChannel"),
        ({**ORDER, "distributionChannel": 1}, "FIELD_INVALID_FORMAT", "distributionChannel"),
        ({**ORDER, "distributionChannel": "POST"}, "FIELD_INVALID_VALUE", "distributionChannel"),
        ({**ORDER, "services": {"issuance": "NEW"}}, "FIELD_INVALID_VALUE", "services.issuance"),
        (
            {**ORDER, "shipment": {"type": "PIGEON", "deliveryAddress": ADDRESS}},
            "FIELD_INVALID_VALUE",
            "shipment.type",
        ),
        (
            {**ORDER, "shipment": {"type": "BULK"}},
            "FIELD_INVALID_FORMAT",
            "shipment.deliveryAddress",
        ),
        (
            {
                **ORDER,
                "shipment": {"type": "BULK", "deliveryAddress": {**ADDRESS, "zipCode": None}},
            },
            "FIELD_INVALID_FORMAT",
            "shipment.deliveryAddress.zipCode",
        ),
        (
            {
                **ORDER,
                "shipment": {"type": "BULK", "deliveryAddress": {**ADDRESS, "countryCode": "fra"}},
            },
            "FIELD_INVALID_FORMAT",
            "shipment.deliveryAddress.countryCode",
        ),
        (
            {
                **ORDER,
                "shipment": {"type": "BULK", "deliveryAddress": {**ADDRESS, "countryCode": "XX"}},
            },
            "FIELD_INVALID_VALUE",
            "shipment.deliveryAddress.countryCode",
        ),
        ({**ORDER, "encryptedData": {"jwe": 1}}, "FIELD_INVALID_FORMAT", "encryptedData"),
        (
            {**ORDER, "issuerRequestId": "SCN-no-such-scenario-1"},
            "FIELD_INVALID_VALUE",
            "issuerRequestId",
        ),
        ([ORDER], "FIELD_INVALID_FORMAT", "body"),
    ],
)
def test_invalid_order_bodies_name_the_field(d1: MockD1, body: Any, code: str, field: str) -> None:
    assert_d1_error(d1.http.post(order_url(), json=body, headers=d1.auth()), 400, code, field)


def test_an_unknown_scenario_header_is_named(d1: MockD1) -> None:
    answer = d1.order("card-1", headers={"X-D1Sim-Scenario": "happy-pat"})
    assert_d1_error(answer, 400, "FIELD_INVALID_VALUE", "X-D1Sim-Scenario")
    assert "happy-pat" in answer.json()["message"]


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe", b'{"a": 1,}'])
def test_a_body_that_is_not_json_is_a_parsing_error(d1: MockD1, raw: bytes) -> None:
    answer = d1.http.post(order_url(), content=raw, headers={**d1.auth(), "Content-Type": "application/json"})
    assert_d1_error(answer, 400, "PARSING_ERROR", "body")


@pytest.mark.parametrize("card", ["a" * 49, "bad.card", "card%20x"])
def test_bad_card_ids_are_a_format_error(d1: MockD1, card: str) -> None:
    assert_d1_error(d1.order(card), 400, "FIELD_INVALID_FORMAT", "cardId")


def test_a_caller_without_credentials_learns_nothing_about_issuers(d1: MockD1) -> None:
    known = d1.http.post(order_url(), json=ORDER)
    for issuer in ("ISSUER9999", "SHORT"):
        unknown = d1.http.post(order_url(issuer=issuer), json=ORDER)
        assert_d1_error(unknown, 401, "AUTHORIZER_UNAUTHORIZED")
        assert unknown.json() == known.json()
        other = d1.http.post(order_url(issuer=issuer), json=ORDER, headers=d1.auth())
        assert_d1_error(other, 401, "AUTHORIZER_UNAUTHORIZED")
        assert other.json()["error"] == f"the token was not issued for issuer {issuer}"
    poll = d1.http.get(f"{CARDS.format(issuer='ISSUER9999')}/c1/productionStatus")
    assert_d1_error(poll, 401, "AUTHORIZER_UNAUTHORIZED")


def test_unknown_cards_and_paths_are_404(d1: MockD1) -> None:
    assert_d1_error(d1.status("never-ordered"), 404, "CARD_NOT_FOUND", "cardId")
    assert_d1_error(d1.cancel("never-ordered"), 404, "CARD_NOT_FOUND", "cardId")
    assert_d1_error(d1.http.get("/banking/v1/nothing/here"), 404, "RESOURCE_NOT_FOUND")


def test_oversized_bodies_get_413(d1: MockD1) -> None:
    big = {**ORDER, "encryptedData": "x" * (1024 * 1024)}
    assert_d1_error(d1.http.post(order_url(), json=big, headers=d1.auth()), 413, "PAYLOAD_TOO_LARGE")
    huge = b'{"cards": [' + b" " * (17 * 1024 * 1024) + b"]}"
    batch = d1.http.post(
        f"{CARDS.format(issuer=ISSUER)}/operations:production",
        content=huge,
        headers={**d1.auth(), "Content-Type": "application/json"},
    )
    assert_d1_error(batch, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    "cards, field",
    [
        ([], "cards"),
        ([{**ORDER, "cardId": f"c{i}"} for i in range(1001)], "cards"),
        ([{**ORDER}], "cards[0].cardId"),
        ([{**ORDER, "cardId": "c1"}, {**ORDER, "cardId": "c1"}], "cards[1].cardId"),
        (
            [{**ORDER, "cardId": "c1"}, {**ORDER, "cardId": "c2", "distributionChannel": "X"}],
            "cards[1].distributionChannel",
        ),
        (
            [{**ORDER, "cardId": "c1"}, {**ORDER, "cardId": "c2", "issuerRequestId": "SCN-nope-1"}],
            "cards[1].issuerRequestId",
        ),
        (
            [{**ORDER, "cardId": "c1", "issuerRequestId": "R-1"}, {**ORDER, "cardId": "c2", "issuerRequestId": "R-1"}],
            "cards[1].issuerRequestId",
        ),
    ],
)
def test_bad_batches_are_rejected_whole(d1: MockD1, cards: list[Any], field: str) -> None:
    answer = d1.http.post(
        f"{CARDS.format(issuer=ISSUER)}/operations:production",
        json={"cards": cards},
        headers=d1.auth(),
    )
    assert answer.status_code == 400 and answer.json()["error"] == field, answer.text
    assert d1.status("c1").status_code == 404  # nothing of a rejected batch was ordered


WEIRD: list[Any] = [
    None,
    0,
    "x",
    [],
    {"distributionChannel": None},
    {"shipment": []},
    {"distributionChannel": "THALES", "shipment": {"deliveryAddress": "home"}},
    {"distributionChannel": "THALES", "issuerRequestId": ""},
    {"distributionChannel": "THALES", "issuerRequestId": "x" * 200},
    {"distributionChannel": "THALES", "services": "all"},
]


def test_nothing_weird_makes_a_5xx(d1: MockD1) -> None:
    for body in WEIRD:
        for url in (order_url(), f"{CARDS.format(issuer=ISSUER)}/operations:production"):
            answer = d1.http.post(url, json=body, headers=d1.auth())
            assert 400 <= answer.status_code < 500, (body, answer.text)
            assert "Traceback" not in answer.text


def test_admin_errors_are_problem_documents(d1: MockD1) -> None:
    cases = [
        d1.http.get("/_sim/issuers/NOPE000000"),
        d1.http.put(f"/_sim/issuers/{ISSUER}", content=b"{"),
        d1.http.put(f"/_sim/issuers/{ISSUER}", json={"webhookURL": "http://x"}),
        d1.http.put(f"/_sim/issuers/{ISSUER}", json={"timeScale": -1}),
        d1.http.put(f"/_sim/issuers/{ISSUER}", json={"defaultScenario": "nope"}),
        d1.http.put("/_sim/issuers/ISSUER0003", json={"timeScale": 1}),
        d1.http.post("/_sim/clock/advance", json={"by": "1 month"}),
        d1.http.post(f"/_sim/issuers/{ISSUER}/runs", json={"scenario": "nope"}),
        d1.http.post(f"/_sim/issuers/{ISSUER}/runs", json={"yaml": ["name: x"]}),
        d1.http.get("/_sim/runs/r-none"),
        d1.http.get("/_sim/deliveries/999999"),
        d1.http.get("/_sim/runs", params={"limit": "lots"}),
    ]
    for answer in cases:
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= set(answer.json())
    assert "webhookURL" in cases[2].json()["detail"]
    assert "webhookUrl" in cases[5].json()["detail"]


def test_the_admin_token_guards_the_admin_api(tmp_path: Path) -> None:
    with mock_d1(tmp_path, admin_token="adm1n-t0ken") as d1:
        assert d1.http.get("/_sim").status_code == 200
        bare = httpx.get(d1.url + "/_sim/issuers")
        assert bare.status_code == 401 and bare.headers["content-type"] == "application/problem+json"
        wrong = httpx.get(d1.url + "/_sim/issuers", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "adm1n-t0ken" not in wrong.text


def test_off_loopback_the_admin_token_is_required() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    assert admin_token_for("127.0.0.1", None, env={}) is None
    with pytest.raises(UsageError, match="--admin-token"):
        admin_token_for("0.0.0.0", None, env={})
    assert admin_token_for("0.0.0.0", "t", env={}) == "t"
    assert admin_token_for("::", None, env={ADMIN_TOKEN_ENV: "e"}) == "e"


ADMIN_POSTS = [
    "/_sim/clock/advance",
    f"/_sim/issuers/{ISSUER}/runs",
    f"/_sim/issuers/{ISSUER}/credentials",
    "/_sim/deliveries/recover",
    "/_sim/deliveries/replay",
]


def test_weird_admin_bodies_never_make_a_5xx(d1: MockD1) -> None:
    values: list[Any] = [None, 0, True, "x", [], {}, {"a": [1]}, 1e308]
    fields = ["by", "issuerId", "scenario", "yaml", "seed", "since", "clientId"]
    for path in ADMIN_POSTS:
        for field in fields:
            for value in values:
                answer = d1.http.post(path, json={"by": "1s", field: value})
                assert answer.status_code < 500, (path, field, value, answer.text)
    for value in values:
        answer = d1.http.put(f"/_sim/issuers/{ISSUER}", json={"timeScale": value})
        assert answer.status_code < 500, (value, answer.text)
    far = d1.http.post("/_sim/clock/advance", json={"by": "3650d", "issuerId": OTHER})
    for _ in range(900):  # ten years at a time until the year 9900 is in sight
        if far.status_code != 200:
            break
        far = d1.http.post("/_sim/clock/advance", json={"by": "3650d", "issuerId": OTHER})
    assert far.status_code == 400 and "past" in far.json()["detail"]
