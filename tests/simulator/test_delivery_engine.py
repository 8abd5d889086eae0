"""The one delivery engine: D1's rule for an answer (judge) and one attempt (Poster), shared by
replay's sender and the mock D1's dispatcher."""

from __future__ import annotations

import random
from email.utils import formatdate

import httpx
import pytest

from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.d1 import dispatcher
from d1sim.simulator.delivery import driver
from d1sim.simulator.delivery import engine as delivery
from d1sim.simulator.delivery.outbox import Attempt, StoredDelivery
from d1sim.simulator.delivery.retry import RetryPolicy, judge
from d1sim.simulator.delivery.sender import Poster, SenderConfig, build_client

URL = "http://receiver.test/hook"
NOW = 1_700_000_000.0


def attempt(status: int | None) -> Attempt:
    return Attempt(NOW, status, 1.0, error=None if status else "connection error")


def stored() -> StoredDelivery:
    body = b'{"operations": []}'
    return StoredDelivery(1, "r-1", Delivery(1, 0.0, body, ("c",), ("DATA_PREPARED",), "corr-1", "s", "c"))


@pytest.mark.parametrize(
    ("status", "state"),
    [(204, "delivered"), (200, "delivered"), (404, "dead"), (503, "pending"), (None, "pending")],
)
def test_judge_classifies_an_answer_as_d1_does(status: int | None, state: str) -> None:
    verdict = judge(attempt(status), None, 0, RetryPolicy(), random.Random(1), NOW)
    assert verdict.state == state
    assert (verdict.delay is not None) == (state == "pending")
    assert (verdict.attempt.warning is not None) == (status == 200)


def test_judge_gives_up_when_the_budget_is_spent_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=3, cap=60.0)
    assert judge(attempt(503), None, 2, policy, random.Random(1), NOW).state == "dead"
    asked = judge(attempt(429), "7", 0, policy, random.Random(1), NOW)
    assert (asked.state, asked.delay) == ("pending", 7.0)
    dated = judge(attempt(503), formatdate(NOW + 30, usegmt=True), 0, policy, random.Random(1), NOW)
    assert dated.delay == pytest.approx(30.0, abs=1.0)


def test_replay_and_the_mock_d1_use_the_same_engine() -> None:
    # One copy of the rule: both import the same judge and Poster, and neither keeps its own.
    assert driver.judge is judge and dispatcher.judge is judge
    assert driver.Poster is delivery.Poster is dispatcher.Poster is Poster
    assert not any(hasattr(m, "classify") for m in (delivery, driver, dispatcher))


def test_a_failure_outside_http_comes_back_as_an_answer_with_the_failure() -> None:
    class Broken:
        def headers(self, client: object) -> dict[str, str]:
            raise RuntimeError("token endpoint down")

        def describe(self) -> str:
            return "broken"

        def on_unauthorized(self, header: str | None) -> bool:
            return False

    config = SenderConfig(URL, auth=Broken())  # type: ignore[arg-type]
    client = build_client(config, transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    answer = Poster(config, client).attempt(stored())
    assert isinstance(answer.failure, RuntimeError)
    assert answer.attempt.status_code is None and "token endpoint down" in (answer.attempt.error or "")
