"""Waiting within bounds: state polling, back-pressure retries, a token refetched after a 401."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from d1sim.contracts.checks import CheckContext, Reply, Trial
from d1sim.contracts.lifecycle.settling import RETRY_AFTER_CAP, backoff, retry_after, settle


class FakeClock:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_settle_stops_at_the_first_match_and_says_how_long_it_took() -> None:
    clock, answers = FakeClock(), iter(["old", "old", None])
    outcome = settle(lambda: next(answers), 5.0, clock=clock, sleep=clock.sleep)
    assert outcome.problem is None and outcome.polls == 3
    assert outcome.seconds == round(sum(clock.slept), 3) > 0


def test_settle_gives_up_at_the_deadline_with_the_last_problem() -> None:
    clock, polls = FakeClock(), iter(range(1000))
    outcome = settle(lambda: f"held v{next(polls)}", 2.0, clock=clock, sleep=clock.sleep)
    assert outcome.problem == f"held v{outcome.polls - 1}"
    assert 2.0 <= outcome.seconds < 2.6 and outcome.polls < 50


def test_settle_zero_reads_once() -> None:
    clock = FakeClock()
    assert settle(lambda: "x", 0.0, clock=clock, sleep=clock.sleep).polls == 1


def test_retry_after_reads_seconds_and_dates_and_the_cap_applies() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": "Thu, 01 Jan 2026 00:00:07 GMT"}, now) == 7.0
    assert retry_after({}) is None and retry_after({"Retry-After": "later"}) is None
    assert backoff(1, 3600.0) == RETRY_AFTER_CAP
    assert backoff(1, None) < backoff(2, None) < backoff(3, None)


class Scripted:
    """A transport answering from a script of statuses (headers per status)."""

    def __init__(self, statuses: list[int], headers: Mapping[int, dict[str, str]] | None = None):
        self.statuses, self.headers, self.seen = list(statuses), headers or {}, []

    def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        self.seen.append(dict(headers))
        status = self.statuses.pop(0) if self.statuses else 204
        return Reply(status, self.headers.get(status, {}), b"", 0.001)


def test_429_and_503_are_retried_honouring_retry_after_and_counted() -> None:
    clock = FakeClock()
    transport = Scripted([429, 503, 204], {429: {"Retry-After": "2"}})
    trial = Trial(CheckContext(transport, clock=clock, sleep=clock.sleep), "accepts_batches")
    assert trial.post({"operations": []}).status == 204
    assert clock.slept[0] == 2.0 and len(clock.slept) == 2
    assert trial.observed.held_back == 2
    assert any("back-pressure: 2" in note for note in trial.observed.summary_notes())


def test_a_receiver_that_never_accepts_is_judged_on_its_last_answer_within_the_budget() -> None:
    clock = FakeClock()
    transport = Scripted([429] * 1000, {429: {"Retry-After": "1"}})
    context = CheckContext(transport, clock=clock, sleep=clock.sleep, patience=10.0)
    reply = Trial(context, "accepts_batches").post({"operations": []})
    assert reply.status == 429 and sum(clock.slept) <= 10.0 and len(transport.seen) <= 12


def test_a_401_to_the_configured_token_fetches_a_new_one_once() -> None:
    tokens = iter(["Bearer old", "Bearer new"])
    current = {"header": next(tokens)}
    rejected: list[str] = []

    def reauthorize(header: str) -> bool:
        rejected.append(header)
        current["header"] = next(tokens)
        return True

    transport = Scripted([401])
    context = CheckContext(transport, auth=lambda: current["header"], reauthorize=reauthorize)
    assert Trial(context, "accepts_batches").post({"operations": []}).status == 204
    assert rejected == ["Bearer old"]
    assert [h["Authorization"] for h in transport.seen] == ["Bearer old", "Bearer new"]


def test_a_401_to_a_deliberately_wrong_token_is_not_retried() -> None:
    transport = Scripted([401])
    context = CheckContext(transport, auth=lambda: "Bearer t", reauthorize=lambda h: True)
    reply = Trial(context, "rejects_missing_auth").post({}, authorization=None)
    assert reply.status == 401 and len(transport.seen) == 1
