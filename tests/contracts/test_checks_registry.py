"""The check registry and the pieces every check stands on: ids, fresh ids, trials, failures.

The checks themselves are driven here with hypothesis against a pure-Python receiver (a dict
and the convergence rule), so the core is tested without any web or HTTP code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d1sim.contracts.checks import (
    CheckContext,
    IdMint,
    NoReply,
    ProbeError,
    Reply,
    Trial,
    UnknownCheck,
    check,
    check_ids,
    fresh_operations,
    registered,
    select_checks,
)
from d1sim.contracts.lifecycle.convergence import Convergence
from d1sim.contracts.notification.validation import validate_notification
from d1sim.contracts.strategies import lifecycles, notifications

# The ids of d1-produce.md section 7, in its order.
CONTRACT_IDS = [
    "accepts_valid_notification",
    "accepts_batches",
    "tolerates_unknown_status",
    "tolerates_unknown_fields",
    "tolerates_minimal_payload",
    "idempotent_on_duplicates",
    "converges_out_of_order",
    "rejects_missing_auth",
    "rejects_malformed_json",
    "no_server_error_on_invalid",
    "responds_in_time",
]
TOKEN = "Bearer the-real-token"
FEW = settings(
    max_examples=15, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)


class DictReceiver:
    """A conforming receiver in plain Python: a Transport and a probe over one Convergence."""

    def __init__(self, token: str | None = TOKEN, elapsed: float = 0.001) -> None:
        self.token, self.elapsed = token, elapsed
        self.state = Convergence()
        self.posts: list[Mapping[str, str]] = []

    def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        self.posts.append(headers)
        if self.token and headers.get("Authorization") != self.token:
            return Reply(401, {}, b'{"error": "unauthorized"}', self.elapsed)
        try:
            parsed = json.loads(body)
        except ValueError:
            return Reply(400, {}, b'{"error": "not JSON"}', self.elapsed)
        if validate_notification(parsed):
            return Reply(400, {}, b'{"error": "invalid"}', self.elapsed)
        for op in parsed["operations"]:
            self.state.add(op)
        return Reply(204, {}, b"", self.elapsed)

    def probe(self, card_id: str) -> dict[str, Any] | None:
        held = self.state.states().get(card_id)
        return held.as_probe() if held else None


def context_for(receiver: DictReceiver, **fields: Any) -> CheckContext:
    auth = (lambda: TOKEN) if receiver.token else None
    return CheckContext(receiver, **{"probe": receiver.probe, "auth": auth, **fields})


# -- the registry -----------------------------------------------------------------------------


def test_the_registry_holds_exactly_the_contract_ids_in_order() -> None:
    assert check_ids() == CONTRACT_IDS


@pytest.mark.parametrize("check_id", CONTRACT_IDS)
def test_each_check_is_a_predicate_named_after_its_id_with_a_summary(check_id: str) -> None:
    entry = registered()[check_id]
    assert entry.function.__name__ == check_id
    assert entry.summary and entry.summary.endswith(".")


def test_only_state_checks_need_a_probe_and_only_the_auth_check_needs_auth() -> None:
    needs_state = {c.id for c in registered().values() if c.needs_state}
    needs_auth = {c.id for c in registered().values() if c.needs_auth}
    assert needs_state == {"converges_out_of_order"}
    assert needs_auth == {"rejects_missing_auth"}


def test_selecting_keeps_registry_order_and_drops_repeats() -> None:
    chosen = select_checks(["responds_in_time", "accepts_batches", "responds_in_time"])
    assert [c.id for c in chosen] == ["accepts_batches", "responds_in_time"]


def test_an_unknown_id_is_refused_with_a_did_you_mean() -> None:
    with pytest.raises(UnknownCheck, match="did you mean 'idempotent_on_duplicates'") as info:
        select_checks(["idempotent_on_duplicate"])
    assert info.value.suggestion == "idempotent_on_duplicates"
    with pytest.raises(UnknownCheck, match=r"^unknown check 'zzz'$"):
        select_checks(["zzz"])


def test_registering_a_taken_id_or_a_misnamed_function_is_refused() -> None:
    def accepts_batches(trial: Trial, example: Any) -> None: ...

    def misnamed(trial: Trial, example: Any) -> None: ...

    with pytest.raises(ValueError, match="already registered"):
        check("accepts_batches", strategy=lambda ctx: st.none())(accepts_batches)
    with pytest.raises(ValueError, match="must be a function named"):
        check("brand_new_check", strategy=lambda ctx: st.none())(misnamed)
    assert "brand_new_check" not in registered()


def test_checks_say_why_they_cannot_run() -> None:
    bare = CheckContext(DictReceiver(token=None))
    assert "state probe" in registered()["converges_out_of_order"].skip_reason(bare)
    assert "no auth configured" in registered()["rejects_missing_auth"].skip_reason(bare)
    assert registered()["accepts_batches"].skip_reason(bare) is None


def test_a_context_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        CheckContext(DictReceiver(), max_batch=0)
    with pytest.raises(ValueError, match="timeout"):
        CheckContext(DictReceiver(), timeout=0)


# -- fresh ids --------------------------------------------------------------------------------


@given(lifecycles(), lifecycles())
def test_fresh_ids_keep_equal_ids_equal_and_keep_their_order(
    first: list[Any], second: list[Any]
) -> None:
    ops = first + second
    fresh = fresh_operations(ops, IdMint())
    for name in ("cardId", "operationId"):
        old, new = [op[name] for op in ops], [op[name] for op in fresh]
        assert [a == b for a in old for b in old] == [a == b for a in new for b in new]
        assert [a < b for a in old for b in old] == [a < b for a in new for b in new]
        assert not set(old) & set(new)
    assert validate_notification({"operations": fresh}) == []


def test_fresh_ids_differ_between_calls_and_runs_and_leave_invalid_ids_alone() -> None:
    mint = IdMint()
    op = {"cardId": "c", "operationId": "o"}
    once, twice = fresh_operations([op], mint)[0], fresh_operations([op], mint)[0]
    assert once["cardId"] != twice["cardId"]
    assert fresh_operations([op], IdMint())[0]["cardId"] != once["cardId"]
    bad = {"cardId": "has space", "operationId": "a" * 65}
    assert fresh_operations([bad, "not an object"], mint) == [bad, "not an object"]


# -- trials -----------------------------------------------------------------------------------


def test_a_trial_records_requests_and_names_the_configured_token_without_showing_it() -> None:
    receiver = DictReceiver()
    trial = Trial(context_for(receiver), "accepts_valid_notification")
    trial.post({"operations": []})
    trial.post(b"raw", authorization=None)
    trial.post(b"raw", authorization="Bearer wrong")
    assert receiver.posts[0]["Authorization"] == TOKEN
    assert [e.authorization for e in trial.exchanges] == [
        "the configured token",
        "none",
        "Bearer wrong",
    ]
    assert "the-real-token" not in repr(trial.fail("x", "y"))


def test_a_request_without_answer_is_recorded_and_raised() -> None:
    class Silent:
        def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
            raise NoReply("timed out after 1 s", timed_out=True)

    trial = Trial(CheckContext(Silent()), "accepts_batches")
    with pytest.raises(NoReply):
        trial.post({"operations": []})
    failure = trial.unanswered(NoReply("timed out after 1 s"))
    assert failure.aborted and failure.exchanges[0].error == "timed out after 1 s"
    assert failure.as_dict()["requests"][0]["answer"] == "no answer: timed out after 1 s"


def test_a_probe_that_raises_is_a_probe_error() -> None:
    def broken_probe(card_id: str) -> None:
        raise KeyError(card_id)

    trial = Trial(CheckContext(DictReceiver(), probe=broken_probe), "converges_out_of_order")
    with pytest.raises(ProbeError, match="KeyError"):
        trial.held("c1")


def test_a_2xx_other_than_204_is_accepted_with_a_note() -> None:
    trial = Trial(CheckContext(DictReceiver()), "accepts_valid_notification")
    assert trial.accepted(Reply(200, {}, b"ok", 0.0))
    assert not trial.accepted(Reply(409, {}, b"", 0.0))
    assert trial.notes == {"answered 200 where D1 expects 204 (accepted, a warning)"}


def test_a_reply_summary_is_one_short_line() -> None:
    reply = Reply(500, {}, b"<h1>Internal\n  Error</h1>" + b"x" * 500, 0.1)
    assert reply.summary().startswith("500 <h1>Internal Error</h1>xxx")
    assert "\n" not in reply.summary() and reply.summary().endswith("(525 bytes)")


# -- the checks against a conforming receiver in plain Python ----------------------------------


@pytest.mark.parametrize("check_id", CONTRACT_IDS)
def test_every_check_passes_against_a_conforming_receiver(check_id: str) -> None:
    entry = registered()[check_id]
    context = context_for(DictReceiver())

    @FEW
    @given(entry.strategy(context))
    def holds(example: Any) -> None:
        assert entry.function(Trial(context, check_id), example) is None

    holds()


def test_a_check_returns_a_failure_value_naming_its_requests() -> None:
    receiver = DictReceiver(token=None)
    entry = registered()["rejects_missing_auth"]
    context = CheckContext(receiver, probe=receiver.probe, auth=lambda: TOKEN)
    body = {
        "operations": [
            {
                "operationId": "o",
                "operation": "PRODUCE",
                "status": "PENDING",
                "startTime": "2025-01-17T06:28:02.492Z",
                "cardId": "c",
                "details": {"status": "CARD_PROD_REQUESTED"},
            }
        ]
    }
    failure = entry.function(Trial(context, entry.id), body)
    assert failure is not None and failure.check_id == "rejects_missing_auth"
    assert failure.got == "204" and failure.expected.startswith("401 or 403")
    assert [e.label for e in failure.exchanges] == ["without an Authorization header"]


def test_responds_in_time_fails_a_slow_answer() -> None:
    entry = registered()["responds_in_time"]
    context = context_for(DictReceiver(elapsed=0.5), timeout=0.2)

    @FEW
    @given(notifications(1, 2))
    def slow(body: Any) -> None:
        failure = entry.function(Trial(context, entry.id), body)
        assert failure is not None and "after 0.500 s" in failure.got

    slow()
