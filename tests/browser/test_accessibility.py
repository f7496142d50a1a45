"""Accessibility (axe-core, keyboard, focus), phone width, and screenshots of both pages."""

from __future__ import annotations

import os
import re
import time
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import ADMIN_TOKEN, DESKTOP, MODEL, PHONE, Stack, admin, open_chat, page_at, screenshot, serious_violations


@pytest.fixture(params=[("desktop", DESKTOP), ("phone", PHONE)], ids=["desktop", "phone"])
def sized_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[tuple[str, Page]]:
    name, viewport = request.param
    with page_at(browser, viewport) as page:
        yield name, page


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, f"page is {width}px wide in a {viewport}px viewport"


def test_chat_page_is_accessible_and_fits_the_screen(sized_page: tuple[str, Page], stack: Stack) -> None:
    name, page = sized_page
    open_chat(page, stack)
    for prompt in ("How does failover work mid-stream?", "And what does the status page show?"):
        page.fill("#prompt", prompt)
        page.press("#prompt", "Enter")
        expect(page.locator(".message.assistant").last).to_have_attribute("data-state", "done", timeout=20_000)
    no_horizontal_scroll(page)
    expect(page.locator("#prompt")).to_be_in_viewport()
    expect(page.locator("#send")).to_be_in_viewport()
    assert serious_violations(page) == []
    screenshot(page, f"chat-{name}")

    if name == "phone":
        expect(page.locator("#sidebar")).to_be_hidden()
        page.get_by_role("button", name="Chats").click()
        expect(page.locator("#sidebar")).to_be_visible()
        expect(page.get_by_role("button", name="Chats")).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#new-chat")).to_be_focused()
        page.wait_for_timeout(250)  # the slide-in transition
        assert serious_violations(page) == []
        screenshot(page, "chat-phone-conversations")
        for _ in range(10):  # the chat behind is out of reach while the list covers it
            page.keyboard.press("Tab")
            assert page.evaluate("""() => document.activeElement === document.body
                || document.getElementById('sidebar').contains(document.activeElement)""")
        page.keyboard.press("Escape")
        expect(page.locator("#sidebar")).to_be_hidden()
        expect(page.get_by_role("button", name="Chats")).to_be_focused()
        page.get_by_role("button", name="Chats").click()
        expect(page.locator("#sidebar")).to_be_visible()
        page.mouse.click(360, 400)  # a tap beside the list closes it
        expect(page.locator("#sidebar")).to_be_hidden()


def _streams(base: str, seconds: float) -> None:
    """Streamed requests for a while, with a drill and a drain on the way, for a lively screenshot."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            remaining = deadline - time.monotonic()
            if remaining < seconds / 2 and not admin(base, "GET", "/faults").json()["data"]:
                admin(base, "POST", "/faults", {"deployment": "sim-a", "kind": "disconnect", "after_tokens": 4, "rate": 0.5, "duration_s": 120})
                admin(base, "POST", "/deployments/sim-c/drain")
            with client.stream("POST", base + "/v1/chat/completions", json={
                    "model": MODEL, "stream": True, "messages": [{"role": "user", "content": f"question {remaining:.0f}"}]}) as r:
                for _ in r.iter_bytes():
                    pass
            time.sleep(0.2)


def test_console_is_accessible_and_fits_the_screen(sized_page: tuple[str, Page], stack: Stack) -> None:
    name, page = sized_page
    page.goto(stack.url + "/console")
    assert serious_violations(page) == []
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#poll-state")).to_contain_text("Updated")
    # Some traffic, so the numbers and lines have something to show. Set
    # LIFELINE_SCREENSHOT_TRAFFIC_S (e.g. 40) to let it run longer when refreshing docs/screenshots.
    _streams(stack.url, float(os.environ.get("LIFELINE_SCREENSHOT_TRAFFIC_S", "0.6")))
    expect(page.locator("[data-stat='ttft-p50'] .stat-value")).to_have_text(re.compile(r"ms|s$"), timeout=8000)
    # Every panel is on the page for the check, the optional ones included (their APIs exist here).
    for panel in ("limits", "shedding", "incidents", "maintenances", "alerts", "keys"):
        expect(page.locator(f"#panel-{panel}")).to_be_visible()
    expect(page.locator("#limits-deployments tr[data-limit-deployment]")).to_have_count(3)
    no_horizontal_scroll(page)
    assert serious_violations(page) == []
    screenshot(page, f"console-{name}")


def test_keyboard_reaches_every_control_in_order_with_a_visible_focus(page: Page, stack: Stack) -> None:
    open_chat(page, stack)
    page.fill("#prompt", "Hello")
    page.press("#prompt", "Enter")
    expect(page.locator(".message.assistant").last).to_have_attribute("data-state", "done", timeout=20_000)
    page.reload()  # focus navigation starts again from the top of the page
    page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")
    seen = []
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => {
            const e = document.activeElement;
            const style = getComputedStyle(e);
            return { key: e.id || e.getAttribute('aria-label') || e.textContent.trim().slice(0, 30),
                     outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
        }""")
        seen.append(focused["key"])
        assert focused["outline"] != "none" and focused["width"] >= 2, f"no visible focus on {focused}"
        if focused["key"] == "send":
            break
    assert seen[0] == "Skip to the message box"
    order = [seen.index(k) for k in ("new-chat", "api-key", "model", "prompt", "send") if k in seen]
    assert "new-chat" in seen and "model" in seen and "prompt" in seen and "send" in seen, seen
    assert order == sorted(order), seen

    page.reload()
    page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    expect(page.locator("#prompt")).to_be_focused()
