"""The public status page in headless Chromium: readable without JavaScript, accessible (axe-core),
no horizontal scrolling at desktop and phone widths, every state in words as well as colour, and
screenshots of both widths."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import DESKTOP, LifelineProcess, MODEL, PHONE, Stack, admin, page_at, screenshot, serious_violations


@pytest.fixture(scope="module")
def status_gateway(stack: Stack) -> Iterator[LifelineProcess]:
    """A gateway of its own, so the incidents made here never reach the chat page's tests."""
    gw = stack.start_gateway("status-page")
    url = gw.url
    old = admin(url, "POST", "/incidents", {"name": "Slow first tokens on chat-default", "status": "identified",
                                            "body": "An upstream answers slowly; requests are moving to the other deployment.",
                                            "components": {MODEL: "degraded_performance"}}).json()
    admin(url, "POST", f"/incidents/{old['id']}/resolve", {"body": "Response times are back to normal."})
    admin(url, "POST", "/incidents", {"name": "Elevated errors on chat-default",
                                      "body": "Some answers fail with a server error. We are investigating.",
                                      "components": {MODEL: "partial_outage", "API": "degraded_performance"}})
    now = datetime.now(timezone.utc)
    r = admin(url, "POST", "/maintenances", {"name": "Certificate rotation", "deployments": ["sim-c"],
                                             "message": "sim-c is drained while its certificates are rotated; other deployments answer.",
                                             "scheduled_for": (now + timedelta(hours=2)).isoformat(),
                                             "scheduled_until": (now + timedelta(hours=3)).isoformat()})
    assert r.status_code == 201, r.text
    for _ in range(5):
        httpx.post(url + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    # Uptime counts the time between two evaluations (every 5 s by default).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "No data yet" in httpx.get(url + "/status", timeout=10).text:
        time.sleep(0.5)
    yield gw
    gw.stop()


@pytest.fixture(params=[("desktop", DESKTOP), ("phone", PHONE)], ids=["desktop", "phone"])
def sized_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[tuple[str, Page]]:
    name, viewport = request.param
    with page_at(browser, viewport) as page:
        yield name, page


def test_status_page_is_accessible_fits_the_screen_and_says_every_state_in_words(
    sized_page: tuple[str, Page], status_gateway: LifelineProcess
) -> None:
    name, page = sized_page
    response = page.goto(status_gateway.url + "/status")
    assert response is not None and response.ok
    assert len(response.body()) < 50_000
    expect(page.get_by_role("heading", level=1)).to_have_text("Lifeline status")
    expect(page.get_by_role("heading", name="Partial System Outage")).to_be_visible()
    expect(page.get_by_role("heading", name="Active incidents")).to_be_visible()
    expect(page.get_by_role("heading", name="Elevated errors on chat-default")).to_be_visible()
    expect(page.get_by_role("heading", name="Certificate rotation")).to_be_visible()
    expect(page.locator(f"li.component:has(h3:text-is('{MODEL}')) .badge")).to_contain_text("Partial outage")
    expect(page.get_by_role("img", name=f"{MODEL} uptime over the last 90 days", exact=False)).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"
    assert serious_violations(page) == []
    screenshot(page, f"status-{name}")
    # Past incidents keep their updates folded until asked for.
    expect(page.get_by_text("Response times are back to normal.")).to_be_hidden()
    page.get_by_text("2 updates").first.click()
    expect(page.get_by_text("Response times are back to normal.")).to_be_visible()
    assert serious_violations(page) == []


def test_status_page_reads_without_javascript_in_the_dark(browser: Browser, status_gateway: LifelineProcess) -> None:
    context = browser.new_context(java_script_enabled=False, color_scheme="dark", viewport=DESKTOP)
    page = context.new_page()
    page.goto(status_gateway.url + "/status")
    expect(page.get_by_role("heading", name="Partial System Outage")).to_be_visible()
    expect(page.get_by_text("Elevated errors on chat-default").first).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)", background
    screenshot(page, "status-desktop-dark")
    context.close()
