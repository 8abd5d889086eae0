"""The UI in a real browser (Playwright driving Debian's Chromium, headless).

Skipped, with the reason, when /usr/bin/chromium is missing on a developer machine; under
``CI=true`` a missing browser is a failure, so CI never passes without running these.
Screenshots of each main page go to ``test-artifacts/ui/``; ``D1SIM_UPDATE_DOCS_SCREENSHOT=1``
also refreshes ``docs/ui.png``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from d1sim.simulator.receiver import ReceiverConfig
from tests.simulator.d1_support import ORDER, MockD1, mock_d1, wait_for

CHROMIUM = os.environ.get("D1SIM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
TIMEOUT_MS = 15_000

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _chromium_or_skip(path: str = CHROMIUM) -> str:
    if Path(path).exists():
        return path
    reason = f"{path} is missing: install it with 'apt-get install -y chromium'"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}; browser tests must run in CI")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium_or_skip()
    if os.environ.get("CI") == "true":
        import playwright.sync_api as playwright  # in CI a missing package is a failure
    else:
        playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    context.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _labelled(page: Any) -> None:
    """Every visible form control has a label, and the page has one h1."""
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), select')]"
        ".filter(e => !e.labels || e.labels.length === 0).map(e => e.outerHTML)"
    )
    assert unlabelled == []
    assert page.locator("h1").count() == 1


def _order_two_cards(mock: MockD1) -> None:
    mock.register(retry={"maxAttempts": 1})  # the receiver's first 503 makes a dead letter
    for card, request_id in (("card-br-1", "REQ-browser-1"), ("card-br-2", "REQ-browser-2")):
        assert mock.order(card, body={**ORDER, "issuerRequestId": request_id}).status_code == 202
    wait_for(mock.settled, what="both lifecycles to be sent")


def test_runs_card_attempts_resend_and_search_in_a_browser(tmp_path: Path, page: Any) -> None:
    with mock_d1(tmp_path, ReceiverConfig(fail_first=1, fail_status=503)) as mock:
        _order_two_cards(mock)
        page.goto(mock.url + "/")
        _labelled(page)
        assert page.get_by_role("heading", name="Runs").is_visible()
        _shot(page, "runs")

        page.get_by_role("link", name="r-").first.click()
        page.get_by_role("heading", name="Deliveries").wait_for()
        _labelled(page)
        _shot(page, "run")

        page.get_by_role("link", name="card-br-").first.click()
        page.locator("figure.lifecycle .box.visited").first.wait_for()
        assert page.locator("tr.attempt").count() >= 1
        _shot(page, "card")
        if os.environ.get("D1SIM_UPDATE_DOCS_SCREENSHOT") == "1":
            page.screenshot(path=str(ROOT / "docs" / "ui.png"))  # the viewport: README-sized

        page.get_by_role("link", name="Failures").click()
        _labelled(page)
        _shot(page, "failures")
        page.locator("a[href^='/deliveries/']").first.click()
        assert page.locator("tr.attempt").count() == 1
        assert "503" in page.locator("tr.attempt").first.inner_text()
        page.get_by_role("button", name="Resend this delivery").click()
        page.get_by_role("status").filter(has_text="queued to be sent again").wait_for()
        # The new attempt appears without a reload: the page refreshes its live part.
        page.locator("tr.attempt").nth(1).wait_for()
        assert "204" in page.locator("tr.attempt").nth(1).inner_text()
        _shot(page, "delivery")

        page.get_by_label("Search cardId, operationId or issuerRequestId").fill("REQ-browser-2")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name="Card card-br-2").click()
        page.get_by_role("heading", name="Card card-br-2").wait_for()
        assert "CARD_PROD_REQUESTED" in page.locator("#timeline").inner_text()
        _shot(page, "search-result-card")


def test_pages_work_with_javascript_off(tmp_path: Path, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        no_js = context.new_page()
        no_js.set_default_timeout(TIMEOUT_MS)
        with mock_d1(tmp_path, ReceiverConfig(fail_first=1, fail_status=503)) as mock:
            _order_two_cards(mock)
            no_js.goto(mock.url + "/failures")
            no_js.get_by_role("button", name="Recover all dead deliveries").click()
            no_js.get_by_role("status").filter(has_text="dead deliveries queued again").wait_for()
            no_js.get_by_label("Last status code").fill("503")
            no_js.get_by_role("button", name="Filter").click()
            assert "status=503" in no_js.url
    finally:
        context.close()


def test_a_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and .*no-chromium is missing"):
        _chromium_or_skip(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        _chromium_or_skip(missing)
