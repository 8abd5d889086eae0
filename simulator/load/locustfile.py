"""A Locust user class that sends a d1sim scenario's notifications to a receiver, as D1 would.

Run it with Locust (``pip install 'd1sim[load]'``), alone or distributed over machines::

    locust -f "$(python -c 'import d1sim.simulator.load.locustfile as m; print(m.__file__)')" \\
        --headless -u 8 -r 8 --host http://127.0.0.1:8090 --d1-scenario bulk-file

or let ``d1sim load`` build that line. Each worker expands the same deterministic scenario and
sends its share of the ordering lanes (worker ``i`` of ``--expect-workers``); a lane goes to one
user, start to end, so every card's notifications arrive in order. Auth is d1sim's: a static
bearer token or OAuth2 client credentials (secrets from ``D1SIM_BEARER_TOKEN`` and
``D1SIM_CLIENT_SECRET``), plus optional Standard Webhooks signatures (``D1SIM_SIGN_SECRET``). A
POST answered 429, 5xx or not at all is repeated up to ``--d1-max-attempts`` times before the
lane moves on; when a worker has sent all its lanes it stops, and the last worker stops the test.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import httpx
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from d1sim.contracts.protocol import WEBHOOK_PATH
from d1sim.contracts.scenario.loading import load_bundled, load_scenario_file
from d1sim.contracts.scenario.timeline import Delivery
from d1sim.simulator.cli.options import SIGN_ENV, build_auth
from d1sim.simulator.delivery.auth import Auth, Signer
from d1sim.simulator.delivery.retry import Outcome, classify
from d1sim.simulator.load.lanes import LanePlan

WEBHOOK = WEBHOOK_PATH


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    """d1sim's options on Locust's command line (sent by the master to every worker)."""
    parser.add_argument("--d1-scenario", default="happy-path", env_var="D1SIM_LOAD_SCENARIO",
                        help="bundled scenario name or a .yaml path present on every worker")
    parser.add_argument("--d1-seed", type=int, default=None, help="override the scenario's seed")
    parser.add_argument("--d1-issuer-id", default=None, help="10 characters (default: the scenario's)")
    parser.add_argument("--d1-path", default=WEBHOOK, help="webhook path under --host")
    parser.add_argument("--d1-max-attempts", type=int, default=3, help="POSTs per notification at most")
    parser.add_argument("--d1-oauth-token-url", default=None, help="OAuth2 token endpoint (client credentials)")
    parser.add_argument("--d1-client-id", default=None)
    parser.add_argument("--d1-scope", default=None)


class _Sending:
    """What every user of one worker shares: the lane plan, the URL path, auth and signer."""

    def __init__(self, environment: Environment) -> None:
        options: Any = environment.parsed_options  # always set under the locust command
        ref = options.d1_scenario
        scenario = load_scenario_file(ref) if ref.endswith((".yaml", ".yml")) else load_bundled(ref)
        runner = environment.runner
        # A worker's share: its index among the --expect-workers the master sent; alone, everything.
        index, count = (runner.worker_index, options.expect_workers) if isinstance(runner, WorkerRunner) else (0, 1)
        self.plan = LanePlan(scenario, index=index, count=count, seed=options.d1_seed)
        self.path = options.d1_path.replace("{issuerId}", options.d1_issuer_id or scenario.issuer_id)
        self.attempts = max(options.d1_max_attempts, 1)
        self.auth: Auth = build_auth(argparse.Namespace(
            oauth_token_url=options.d1_oauth_token_url, client_id=options.d1_client_id,
            client_secret=None, scope=options.d1_scope, bearer_token=None))
        self.tokens = httpx.Client(timeout=10)  # the token endpoint's client (OAuth2 only)
        secret = os.environ.get(SIGN_ENV)
        self.signer = Signer(secret) if secret else None

    def headers(self, delivery: Delivery) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "x-correlation-id": delivery.correlation_id,
                   **self.auth.headers(self.tokens)}
        if self.signer is not None:
            msg_id = f"msg_load_{delivery.scenario}_{delivery.seq}"
            headers.update(self.signer.headers(msg_id, delivery.body, time.time()))
        return headers


_SENDING: dict[int, _Sending] = {}  # per Environment (one per process in practice)


@events.test_start.add_listener
def _plan(environment: Environment, **_: Any) -> None:
    """Expand this worker's share when the test starts (the master sends nothing itself)."""
    if not isinstance(environment.runner, MasterRunner):
        _SENDING[id(environment)] = _Sending(environment)


class D1Notifications(FastHttpUser):
    """Sends one ordering lane at a time, each notification after the previous one's answer."""

    wait_time = constant(0)

    @task
    def send_lane(self) -> None:
        sending = _SENDING[id(self.environment)]
        lane = sending.plan.next_lane()
        if lane is None:
            self._finish(sending)  # raises StopUser
        for delivery in lane or ():
            self._deliver(sending, delivery)
        if sending.plan.lane_done():
            self._finish(sending)

    def _deliver(self, sending: _Sending, delivery: Delivery) -> None:
        for attempt in range(1, sending.attempts + 1):
            name = f"{sending.path} [{'retry' if attempt > 1 else 'first'}]"
            headers = sending.headers(delivery)
            with self.client.post(sending.path, data=delivery.body, headers=headers,
                                  name=name, catch_response=True) as response:
                status = response.status_code
                if 200 <= status < 300:
                    response.success()
                    return
                response.failure(f"answered {status or 'nothing'}")
            refresh = status == 401 and sending.auth.on_unauthorized(headers.get("Authorization"))
            if not (refresh or classify(status or None) is Outcome.RETRY):
                return  # a final answer: D1 does not retry it either (the one retry rule)

    def _finish(self, sending: _Sending) -> None:
        """This worker has nothing left to send: stop it once no lane is in flight."""
        if sending.plan.in_flight == 0 and sending.plan.exhausted:
            self.environment.runner.quit()
        raise StopUser()
