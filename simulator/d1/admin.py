"""The admin API of the mock D1 (``/_sim``): issuers, credentials, scenario runs, the clock.

JSON in and out; errors are ``application/problem+json``. Only same-origin callers get in:
a request must name a known host, a write with a body must be JSON (a scenario upload: YAML)
and one with an ``Origin`` must come from this server (:mod:`d1sim.simulator.web.origins`).
Secrets are write-only: issuer answers show ``***`` where one is set; a new inbound client
secret is shown once, when minted.
When the server has an admin token, every call needs ``Authorization: Bearer <token>``.
Runs, cards and deliveries are in :mod:`d1sim.simulator.d1.admin_runs`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Request, Response, request

from d1sim.contracts.payloads.factory import format_time
from d1sim.contracts.protocol import ADMIN_PREFIX, BANKING_PREFIX
from d1sim.contracts.scenario.durations import DurationError, parse_duration
from d1sim.simulator.d1.config import IssuerSettings, MissingServerFile, RemoteUrlRefused, bundled, bundled_names
from d1sim.simulator.d1.jobs import KEPT_JOBS, BudgetFull, Job
from d1sim.simulator.d1.responses import ADMIN, json_response, problem, problem_json
from d1sim.simulator.d1.server import D1Server
from d1sim.simulator.d1.uploads import UPLOAD_LIMITS, RunRequest
from d1sim.simulator.errors import UsageError
from d1sim.simulator.ui.results import rfc3339
from d1sim.simulator.web.origins import YAML_TYPES, OriginGuard, protect

MAX_SEED = MAX_ID = 2**63 - 1  # what SQLite stores
MAX_YAML_CHARACTERS = UPLOAD_LIMITS.max_bytes  # a longer text cannot be within the limit


class AdminError(Exception):
    """Answer with a problem document."""

    def __init__(
        self, status: int, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}

    def response(self) -> Response:
        answer = problem(self.status, self.title, self.detail)
        answer.headers.update(self.headers)
        return answer


def body_json(optional: bool = True) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty optional body)."""
    raw = request.get_data(cache=True)
    if not raw.strip() and optional:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AdminError(400, "Bad request", f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise AdminError(400, "Bad request", "the body must be a JSON object")
    return body


def issuer_or_404(server: D1Server, issuer_id: str) -> IssuerSettings:
    settings = server.issuers.get(issuer_id)
    if settings is None:
        raise AdminError(
            404,
            "Not found",
            f"no issuer {issuer_id} (register it with PUT {ADMIN_PREFIX}/issuers/{issuer_id})",
        )
    return settings


def virtual_iso(moment: float) -> str:
    """A Unix time as RFC 3339 with milliseconds and ``Z``, written as D1 writes its times."""
    return format_time(datetime.fromtimestamp(moment, UTC))


class Admin:
    """The admin views over one :class:`D1Server`."""

    def __init__(self, server: D1Server) -> None:
        self.server = server

    def check_token(self) -> Response | None:
        """Before every admin call: the admin token, when the server has one."""
        expected = self.server.settings.admin_token
        if expected is None:
            return None
        auth = request.authorization
        given = auth.token if auth is not None and auth.type == "bearer" and auth.token else ""
        if hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return problem(401, "Unauthorized", "the admin API needs Authorization: Bearer <admin token>")

    def view(self, settings: IssuerSettings) -> dict[str, Any]:
        """An issuer as answers show it: settings without secrets, clock, clients."""
        clock = self.server.issuers.clock(settings.issuer_id)
        virtual = self.server.issuers.now(settings.issuer_id)
        return {
            **settings.public(),
            "paused": clock.paused,
            "virtualNow": virtual_iso(virtual),
            "clients": self.server.store.clients(settings.issuer_id),
        }

    def index(self) -> Response:
        server = self.server
        return json_response(
            {
                "issuers": [s.issuer_id for s in server.issuers.all()],
                "scenarios": list(bundled_names()),
                "planning": server.planner.backlog,
                "dispatcher": server.dispatcher.stats(),
            }
        )

    def put_issuer(self, issuer_id: str) -> Response:
        body = body_json(optional=False)
        if body.get("issuerId", issuer_id) != issuer_id:
            raise AdminError(400, "Bad request", "issuerId in the body differs from the path")
        if "webhookUrl" not in body and self.server.issuers.get(issuer_id) is None:
            raise AdminError(404, "Not found", f"no issuer {issuer_id} to update; registering "
                             "one needs webhookUrl")
        try:
            settings, created = self.server.register({**body, "issuerId": issuer_id})
        except RemoteUrlRefused as exc:
            raise AdminError(403, "Forbidden", str(exc)) from None
        except MissingServerFile as exc:
            raise AdminError(409, "Conflict", str(exc)) from None
        except UsageError as exc:
            raise AdminError(400, "Invalid issuer settings", str(exc)) from None
        return json_response(self.view(settings), 201 if created else 200)

    def list_issuers(self) -> Response:
        return json_response({"issuers": [self.view(s) for s in self.server.issuers.all()]})

    def get_issuer(self, issuer_id: str) -> Response:
        return json_response(self.view(issuer_or_404(self.server, issuer_id)))

    def credentials(self, issuer_id: str) -> Response:
        """Mint inbound client credentials; the secret is in this answer only."""
        issuer_or_404(self.server, issuer_id)
        client_id = str(body_json().get("clientId") or f"{issuer_id.lower()}-{secrets.token_hex(4)}")
        secret = secrets.token_urlsafe(32)
        self.server.store.add_client(issuer_id, client_id, secret)
        token_url = request.host_url.rstrip("/") + BANKING_PREFIX + "/oauth2/token"
        return json_response({"clientId": client_id, "clientSecret": secret, "tokenUrl": token_url}, 201)

    def pause(self, issuer_id: str) -> Response:
        return self._set_paused(issuer_id, True)

    def resume(self, issuer_id: str) -> Response:
        return self._set_paused(issuer_id, False)

    def _set_paused(self, issuer_id: str, paused: bool) -> Response:
        settings = issuer_or_404(self.server, issuer_id)
        self.server.issuers.set_paused(issuer_id, paused)
        self.server.dispatcher.wake()
        return json_response(self.view(settings))

    def advance(self) -> Response:
        """Move one issuer's clock (``issuerId``) or every issuer's forward ``by`` a duration."""
        body = body_json(optional=False)
        try:
            seconds = parse_duration(body.get("by", "")).total_seconds()
        except DurationError as exc:
            raise AdminError(400, "Bad request", f"by: {exc}") from None
        wanted = body.get("issuerId")
        ids = (
            [issuer_or_404(self.server, str(wanted)).issuer_id]
            if wanted is not None
            else [s.issuer_id for s in self.server.issuers.all()]
        )
        try:
            moved = {i: virtual_iso(self.server.issuers.advance(i, seconds)) for i in ids}
        except ValueError as exc:
            raise AdminError(400, "Bad request", f"by: {exc}") from None
        self.server.dispatcher.wake()
        return json_response({"advancedBy": seconds, "issuers": moved})

    def scenarios(self) -> Response:
        return json_response(
            {"scenarios": [{"name": name, "description": bundled(name).description} for name in bundled_names()]}
        )

    def start_run(self, issuer_id: str) -> Response:
        """Ask for a run of a bundled (``{"scenario": name}``) or uploaded (YAML) scenario: 202 and
        the planning job, at once (:mod:`d1sim.simulator.d1.jobs`)."""
        run = self._run_request(issuer_or_404(self.server, issuer_id))
        try:
            job = self.server.jobs.submit(run)
        except BudgetFull as exc:
            raise AdminError(429, "Too many runs being planned", str(exc),
                             {"Retry-After": str(exc.retry_after)}) from None
        answer = json_response(job_json(job), 202)
        answer.headers["Location"] = f"{ADMIN}/jobs/{job.job_id}"
        return answer

    def job(self, job_id: str) -> Response:
        """How a run asked for is doing: planning, planned (its runId), or failed (a problem)."""
        job = self.server.jobs.job(job_id)
        if job is None:
            raise AdminError(404, "Not found", f"no job {job_id} (jobs are kept in memory, the "
                             f"last {KEPT_JOBS:,}, until the server stops)")
        return json_response(job_json(job))

    def _run_request(self, settings: IssuerSettings) -> RunRequest:
        """What the request asks for, checked as far as it can be without loading a scenario."""
        if "yaml" in (request.mimetype or ""):
            text: Any = request.get_data(as_text=True)
            body: dict[str, Any] = {}
        else:
            body = body_json()  # no body: the issuer's defaultScenario
            text = body.get("yaml")
        if text is not None and not isinstance(text, str):
            raise AdminError(400, "Bad request", "yaml is a scenario's text")
        if text is not None and len(text) > MAX_YAML_CHARACTERS:
            raise AdminError(422, "Scenario too large", f"the scenario is {len(text):,} characters; an "
                             f"uploaded one is at most {UPLOAD_LIMITS.max_bytes:,} bytes")
        name = body.get("scenario", settings.default_scenario)
        if name not in bundled_names():
            raise AdminError(400, "Unknown scenario", f"scenario is one of {', '.join(bundled_names())}")
        seed = _seed(body.get("seed"))
        return RunRequest(settings.issuer_id, settings.max_operations, self.server.issuers.now(settings.issuer_id),
                          name, text, seed, self.server.settings.plan_seconds)


def _seed(value: Any) -> int | None:
    """A seed from JSON: an integer, also one written ``3.0`` (JSON Schema counts it as one)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED):
        raise AdminError(400, "Bad request", f"seed must be an integer from 0 to {MAX_SEED}")
    return value


def job_json(job: Job) -> dict[str, Any]:
    """A planning job as the admin API shows it."""
    problem = job.problem
    return {
        "jobId": job.job_id,
        "issuerId": job.issuer_id,
        "created": rfc3339(job.created),
        "state": job.state,
        "runId": job.run_id,
        "scenario": job.scenario,
        "seed": job.seed,
        "deliveries": job.deliveries,
        "problem": None if problem is None else problem_json(problem.status, problem.title, problem.detail),
    }


def _scenario_upload_types(req: Request) -> frozenset[str]:
    """Starting a run also takes a YAML scenario, with its own explicit content type."""
    return YAML_TYPES if req.endpoint == "start_run" else frozenset()


def add_admin_routes(app: Flask, server: D1Server) -> None:
    """Mount the admin API on ``app`` (its runs, cards and deliveries: ``admin_runs``)."""
    views = Admin(server)
    rules: list[tuple[str, Callable[..., Response], str]] = [
        ("", views.index, "GET"),
        ("/scenarios", views.scenarios, "GET"),
        ("/issuers", views.list_issuers, "GET"),
        ("/issuers/<issuer_id>", views.get_issuer, "GET"),
        ("/issuers/<issuer_id>", views.put_issuer, "PUT"),
        ("/issuers/<issuer_id>/credentials", views.credentials, "POST"),
        ("/issuers/<issuer_id>/pause", views.pause, "POST"),
        ("/issuers/<issuer_id>/resume", views.resume, "POST"),
        ("/issuers/<issuer_id>/runs", views.start_run, "POST"),
        ("/jobs/<job_id>", views.job, "GET"),
        ("/clock/advance", views.advance, "POST"),
    ]
    for path, view, method in rules:
        app.add_url_rule(ADMIN + path, view_func=view, methods=[method])
    guard = OriginGuard(server.settings.host, server.settings.public_host)
    # Registered first, so a page's cross-origin request is refused before anything else runs.
    protect(app, guard, prefix=ADMIN, extra_types=_scenario_upload_types)

    @app.before_request
    def _admin_token() -> Response | None:
        return views.check_token() if request.path.startswith(ADMIN_PREFIX) else None

    app.register_error_handler(AdminError, lambda exc: exc.response())
