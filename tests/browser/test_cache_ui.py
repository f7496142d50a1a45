"""The answer cache in the browser: the chat page marks a stale answer, and the console's cache
panel shows the hit rate (and stays hidden while no model has a cache)."""

from __future__ import annotations

import re
import time

import httpx
from playwright.sync_api import Page, expect

from conftest import MODEL, Stack, admin, open_chat, serious_violations
from test_console import sign_in, wait_for_poll

STREAM_TIMEOUT_MS = 20_000
STALE_LABEL = "Served from earlier answers while the service recovers"


def ask(page: Page, text: str) -> None:
    page.get_by_role("button", name="New chat").click()
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")
    expect(page.locator(".message.assistant").last).to_have_attribute("data-state", "done", timeout=STREAM_TIMEOUT_MS)


def test_a_stale_answer_is_marked_as_served_from_earlier_answers(page: Page, stack: Stack) -> None:
    # The page sends no temperature, so sampled requests are cached here on purpose.
    gateway = stack.start_gateway("stale-chat-gateway", cache="{ttl_s: 1, serve_stale_on_error_s: 600, cache_sampled: true}")
    try:
        page.goto(gateway.url + "/")
        page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")
        question = "What should I pack for a day of sailing?"
        ask(page, question)
        fresh = page.locator(".message.assistant").last
        expect(fresh.locator(".meta")).to_contain_text("Answered by sim-")
        first_text = fresh.locator(".body").evaluate("node => node.textContent")

        time.sleep(1.2)  # past the 1 s TTL
        for deployment in ("sim-a", "sim-b"):
            r = admin(gateway.url, "POST", "/faults", {"deployment": deployment, "kind": "error", "status": 500, "rate": 1.0, "duration_s": 60})
            assert r.status_code == 201, r.text
        ask(page, question)
        stale = page.locator(".message.assistant").last
        expect(stale.locator(".meta")).to_have_text(STALE_LABEL)
        assert stale.locator(".body").evaluate("node => node.textContent") == first_text
        assert serious_violations(page) == []
        # The label is kept with the conversation.
        page.reload()
        page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")
        expect(page.locator(".message.assistant .meta")).to_have_text(STALE_LABEL)
    finally:
        admin(gateway.url, "DELETE", "/faults")
        gateway.stop()


def test_the_console_shows_the_cache_hit_rate_only_where_a_model_has_a_cache(page: Page, stack: Stack) -> None:
    sign_in(page, stack.url)
    wait_for_poll(page)
    expect(page.locator("#panel-cache")).to_be_hidden()

    gateway = stack.start_gateway("cache-console-gateway", cache="{ttl_s: 300}")
    try:
        sign_in(page, gateway.url)
        wait_for_poll(page)
        expect(page.locator("#panel-cache")).to_be_visible()
        expect(page.locator("[data-stat='cache-hit-rate-total'] .stat-value")).to_have_text("no lookups")
        body = {"model": MODEL, "temperature": 0, "max_tokens": 20, "messages": [{"role": "user", "content": "Name three knots."}]}
        results = [httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=30).headers["x-lifeline-cache"] for _ in range(4)]
        assert results == ["miss", "hit", "hit", "hit"]
        expect(page.locator("[data-stat='cache-hit-rate-total'] .stat-value")).to_have_text("75 %", timeout=8000)
        expect(page.locator("[data-stat='cache-entries'] .stat-value")).to_have_text(re.compile(r"^[1-9]\d* ?$|^[1-9]$"))
        expect(page.locator("[data-stat='cache-stale'] .stat-value")).to_have_text("0")
        assert serious_violations(page) == []
    finally:
        gateway.stop()
