"""The console's API keys and alerts panels in a real browser: a key created in the console works
against the API until it is revoked there; SLO budgets show, and a burn-rate page fires and resolves."""

from __future__ import annotations

import re
import threading
import time
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from playwright.sync_api import Locator

from conftest import DESKTOP, MODEL, PHONE, SCREENSHOTS, Stack, admin, page_at, serious_violations
from test_console import sign_in, wait_for_poll

PAGE_ALERT = f"{MODEL}:availability:burn-1h"
# One hour lasts about 5 s, five minutes about 0.4 s (as in tests/sdk/test_alerting.py).
ALERTING = "alerting: {window_scale: 0.0014, evaluation_interval_s: 0.2}\nrouting: {backoff: {base_ms: 0, max_ms: 0}}\n"


def chat(base: str, key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(base + "/v1/chat/completions", headers=headers, timeout=15,
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hello"}]})


def panel_screenshot(panel: Locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


def test_a_key_created_in_the_console_works_until_it_is_revoked_there(page: Page, context: BrowserContext, stack: Stack) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    sign_in(page, stack.url)
    panel = page.locator("#panel-keys")
    expect(panel).to_be_visible()

    # The API's validation error is shown next to the form and marks the field it names.
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#key-form-error")).to_contain_text("'name' is required")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    name = 'ops <img src=x onerror="window.__pwned=1">'
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Requests / min").fill("0")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#key-form-error")).to_contain_text("'rpm' must be a positive whole number")
    expect(page.get_by_label("Requests / min")).to_be_focused()
    expect(page.get_by_label("Name", exact=True)).not_to_have_attribute("aria-invalid", "true")

    # Every control of the form in order, each with a visible focus ring.
    page.get_by_label("Name", exact=True).focus()
    order = []
    for _ in range(9):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement; const s = getComputedStyle(e);
            return { id: e.id || e.textContent.trim(), outline: s.outlineStyle, width: parseFloat(s.outlineWidth) }; }""")
        assert focused["outline"] != "none" and focused["width"] >= 2, focused
        order.append(focused["id"])
    assert order == ["key-tier", "key-rpm", "key-tpm", "key-max-concurrency", "key-budget-tokens", "key-budget-period",
                     "key-models", "key-expires", "Create key"], order

    page.get_by_label("Tier").select_option("high")
    page.get_by_label("Requests / min").fill("600")
    page.get_by_label("Token budget").fill("50000")
    page.get_by_label("Budget per").select_option("day")
    page.get_by_label("Models").fill(MODEL)
    page.get_by_role("button", name="Create key").click()

    box = page.locator("#key-secret-box")
    expect(box).to_be_visible()
    expect(box).to_contain_text("This is shown once")
    expect(page.locator("#key-form-error")).to_be_hidden()
    secret = page.locator("#key-secret").text_content() or ""
    assert secret.startswith("sk-ll-"), secret
    page.get_by_role("button", name="Copy secret").click()
    expect(page.locator("#key-secret-copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    stored = page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert secret not in stored

    listed = [k for k in admin(stack.url, "GET", "/keys").json()["data"] if k["name"] == name]
    assert len(listed) == 1 and listed[0]["tier"] == "high" and listed[0]["rpm"] == 600 and listed[0]["models"] == [MODEL]
    row = page.locator(f"#keys tr[data-key='{listed[0]['id']}']")
    expect(row).to_have_attribute("data-status", "active")
    expect(row.locator("th .deployment-name")).to_have_text(name)  # shown as text, not markup
    expect(row).to_contain_text(listed[0]["prefix"])
    expect(row).to_contain_text("600 requests/min")
    expect(row).to_contain_text("of 50,000")
    assert page.locator("#keys img").count() == 0 and page.evaluate("window.__pwned") is None

    # The key works against the API, and its usage shows up in the list.
    assert chat(stack.url, secret).status_code == 200
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^[1-9][\d,]* of 50,000"), timeout=8000)

    page.get_by_role("button", name="Dismiss").click()
    expect(box).to_be_hidden()
    assert page.locator("#key-secret").text_content() == ""
    assert secret not in page.content()

    # Revoking asks first; keeping the key changes nothing.
    row.get_by_role("button", name=f"Revoke {name}").click()
    expect(row.get_by_role("button", name=f"Keep {name}")).to_be_focused()
    page.wait_for_timeout(2500)  # a poll in between keeps the question open
    row.get_by_role("button", name=f"Keep {name}").click()
    expect(row.get_by_role("button", name=f"Revoke {name}")).to_be_focused()
    assert chat(stack.url, secret).status_code == 200

    row.get_by_role("button", name=f"Revoke {name}").click()
    row.get_by_role("button", name=f"Yes, revoke {name}").click()
    expect(row).to_have_attribute("data-status", "revoked")
    expect(row.locator(".state")).to_have_text("revoked")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(page.locator("#keys-status")).to_contain_text("is revoked")
    assert chat(stack.url, secret).status_code == 401
    page.reload()
    expect(page.locator(f"#keys tr[data-key='{listed[0]['id']}']")).to_have_attribute("data-status", "revoked")
    expect(page.locator("#key-secret-box")).to_be_hidden()


@pytest.fixture
def alerting_gateway(stack: Stack) -> Iterator[str]:
    gateway = stack.start_gateway("alerting-gateway", extra_config=ALERTING)
    yield gateway.url
    gateway.stop()


def _send_until(base: str, stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            client.post(base + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "are you there?"}]})
            time.sleep(0.03)


def test_alerts_panel_shows_budgets_and_a_page_firing_then_resolved(browser: Browser, alerting_gateway: str) -> None:
    base = alerting_gateway
    stop = threading.Event()
    worker = threading.Thread(target=_send_until, args=(base, stop), daemon=True)
    with page_at(browser, DESKTOP) as page:
        try:
            sign_in(page, base)
            wait_for_poll(page)
            panel = page.locator("#panel-alerts")
            expect(panel).to_be_visible()
            slo = page.locator(f"#slos tr[data-slo='{MODEL}:availability']")
            expect(slo).to_contain_text("99.9 % over 30 days")
            expect(slo.locator(".budget-text")).to_have_text("100 %")
            expect(page.locator(f"#slos tr[data-slo='{MODEL}:latency']")).to_contain_text("first token within")
            expect(page.locator("#alerts-firing")).to_contain_text("No alerts firing")
            expect(page.locator("#alerts-resolved")).to_contain_text("Nothing resolved recently")

            # Both deployments of the model fail: its availability budget burns and the 1 h page fires.
            faults = [admin(base, "POST", "/faults", {"deployment": d, "kind": "error", "status": 500, "duration_s": 60}).json()["id"]
                      for d in ("sim-a", "sim-b")]
            worker.start()
            alert = page.locator(f"#alerts-firing li[data-alert='{PAGE_ALERT}']")
            expect(alert).to_be_visible(timeout=15_000)
            expect(alert.locator(".severity")).to_have_text("page")
            expect(alert).to_contain_text("Firing")
            expect(alert).to_contain_text("burning its error budget")
            expect(panel).to_have_class(re.compile(r"\balarming\b"))
            expect(page.locator("#alerts-summary")).to_contain_text(PAGE_ALERT)
            expect(slo).to_contain_text("burning: alert firing")
            assert serious_violations(page) == []
            panel_screenshot(panel, "console-alerts-desktop")
            page.set_viewport_size(PHONE)
            no_horizontal_scroll(page)
            assert serious_violations(page) == []
            panel_screenshot(panel, "console-alerts-phone")
            page.set_viewport_size(DESKTOP)

            # Recovery: answers succeed again, and after a clean (scaled) hour the page resolves.
            for fault in faults:
                admin(base, "DELETE", f"/faults/{fault}")
            expect(page.locator(f"#alerts-resolved tr[data-resolved^='{PAGE_ALERT}@']")).to_be_visible(timeout=20_000)
            expect(alert).to_have_count(0)
            expect(page.locator(f"#alerts-resolved tr[data-resolved^='{PAGE_ALERT}@'] .severity")).to_have_text("page")
            assert float(slo.get_attribute("data-budget") or "1") < 1
        finally:
            stop.set()
            if worker.is_alive():
                worker.join(timeout=10)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_keys_panel_is_accessible_and_fits_the_screen(browser: Browser, stack: Stack, viewport: dict) -> None:
    for name, tier, extra in (("batch-jobs", "low", {"tpm": 20000, "budget_tokens": 1000000}),
                              ("checkout-assistant", "critical", {"rpm": 1200, "max_concurrency": 16, "models": [MODEL]})):
        if not any(k["name"] == name for k in admin(stack.url, "GET", "/keys").json()["data"]):
            assert admin(stack.url, "POST", "/keys", {"name": name, "tier": tier, **extra}).status_code == 201
    phone = viewport is PHONE
    with page_at(browser, viewport) as page:
        sign_in(page, stack.url)
        wait_for_poll(page)
        page.get_by_label("Name", exact=True).fill("support-bot")
        page.get_by_label("Tier").select_option("high")
        page.get_by_label("Requests / min").fill("300")
        page.get_by_role("button", name="Create key").click()
        expect(page.locator("#key-secret-box")).to_be_visible()
        page.get_by_role("button", name="Revoke batch-jobs").first.click()
        no_horizontal_scroll(page)
        assert serious_violations(page) == []
        panel_screenshot(page.locator("#panel-keys"), f"console-keys-{'phone' if phone else 'desktop'}")
