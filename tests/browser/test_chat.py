"""The chat page in a real browser: streaming, stop, retry, edit, conversations, errors, safety."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from conftest import ADMIN_TOKEN, MODEL, SECOND_MODEL, Stack, admin, api_answer, open_chat, serious_violations

STREAM_TIMEOUT_MS = 20_000


def send(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def last_answer(page: Page):
    return page.locator(".message.assistant").last


def wait_answered(page: Page) -> None:
    expect(last_answer(page)).to_have_attribute("data-state", "done", timeout=STREAM_TIMEOUT_MS)


def text_of(locator) -> str:
    """Exact text, whitespace and newlines kept (to_have_text normalises them)."""
    return locator.evaluate("node => node.textContent")


def test_answer_streams_in_as_it_arrives_and_the_conversation_survives_a_reload(page: Page, stack: Stack) -> None:
    stack.set_knobs(tokens_per_second=30)
    open_chat(page, stack)
    expect(page.locator("#model option")).to_have_count(2)
    assert page.locator("#model").input_value() == MODEL
    assert sorted(page.locator("#model option").all_inner_texts()) == sorted([MODEL, SECOND_MODEL])

    # Record the answer's length at every frame while it streams.
    page.evaluate("""() => {
        window.__lengths = [];
        const tick = () => {
            const body = document.querySelector('.message.assistant[aria-busy="true"] .body');
            if (body) window.__lengths.push(body.textContent.length);
            requestAnimationFrame(tick);
        };
        tick();
    }""")
    prompt = "Explain circuit breakers for streaming gateways"
    send(page, prompt)
    expect(page.locator("#stop")).to_be_visible()
    expect(page.locator("#send")).to_be_hidden()
    wait_answered(page)
    lengths = page.evaluate("window.__lengths")
    assert len(set(lengths)) >= 4, f"the answer did not appear piece by piece: {lengths}"
    assert lengths == sorted(lengths), f"the streamed text shrank: {lengths}"

    expected = api_answer(stack.url, prompt)
    answer = last_answer(page)
    assert text_of(answer.locator(".body")) == expected
    expect(answer.locator(".meta")).to_contain_text("Answered by sim-")
    expect(page.locator("#send")).to_be_visible()
    expect(page.locator("#stop")).to_be_hidden()

    page.reload()
    page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")
    expect(page.locator(".conversation-list > li")).to_have_count(1)
    expect(page.locator(".open-conversation")).to_contain_text(prompt)
    assert text_of(page.locator(".message.user .body")) == prompt
    assert text_of(last_answer(page).locator(".body")) == expected


def test_enter_sends_and_shift_enter_adds_a_line(page: Page, stack: Stack) -> None:
    open_chat(page, stack)
    page.click("#prompt")
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(page.locator("#prompt")).to_have_value("first line\nsecond line")
    expect(page.locator(".message.user")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.locator(".message.user")).to_have_count(1)
    assert text_of(page.locator(".message.user .body")) == "first line\nsecond line"
    expect(page.locator("#prompt")).to_have_value("")
    wait_answered(page)


def test_stop_ends_the_answer_mid_stream_and_retry_asks_again(page: Page, stack: Stack) -> None:
    stack.set_knobs(tokens_per_second=4)
    open_chat(page, stack)
    send(page, "Tell me a long story about lighthouse keepers")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-state", "streaming")
    expect(answer.locator(".body")).to_have_text(re.compile(r"\w+ \w+"))  # a few words are in
    with page.expect_event("requestfailed", predicate=lambda r: r.url.endswith("/v1/chat/completions")) as failed:
        page.click("#stop")
    assert "ABORTED" in (failed.value.failure or "").upper(), failed.value.failure
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(answer.locator(".meta")).to_contain_text("Stopped")
    expect(page.locator("#send")).to_be_visible()
    stopped_text = text_of(answer.locator(".body"))
    page.wait_for_timeout(600)  # more than two tokens' time at 4 tokens/s
    assert text_of(answer.locator(".body")) == stopped_text, "text kept arriving after Stop"

    stack.set_knobs(tokens_per_second=0)
    with page.expect_request("**/v1/chat/completions"):
        answer.get_by_role("button", name=re.compile("^Retry")).click()
    wait_answered(page)
    expect(page.locator(".message.assistant")).to_have_count(1)
    assert text_of(last_answer(page).locator(".body")) == api_answer(stack.url, "Tell me a long story about lighthouse keepers")


def test_retry_and_edit_and_resend(page: Page, stack: Stack) -> None:
    open_chat(page, stack)
    send(page, "What is a retry budget")
    wait_answered(page)
    with page.expect_request("**/v1/chat/completions"):
        last_answer(page).get_by_role("button", name=re.compile("^Retry")).click()
    wait_answered(page)
    expect(page.locator(".message.assistant")).to_have_count(1)

    page.locator(".message.user").get_by_role("button", name=re.compile("^Edit")).click()
    editor = page.get_by_label("Edit your message")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("What is a retry budget")
    editor.fill("What is load shedding")
    editor.press("Enter")
    expect(page.locator(".message.user")).to_have_count(1)
    assert text_of(page.locator(".message.user .body")) == "What is load shedding"
    wait_answered(page)
    expect(page.locator(".message.assistant")).to_have_count(1)
    assert text_of(last_answer(page).locator(".body")) == api_answer(stack.url, "What is load shedding")


def test_conversations_are_listed_renamed_and_deleted(page: Page, stack: Stack) -> None:
    open_chat(page, stack)
    send(page, "First topic: caching")
    wait_answered(page)
    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".message")).to_have_count(0)
    expect(page.locator("#prompt")).to_be_focused()
    send(page, "Second topic: queues")
    wait_answered(page)
    items = page.locator(".conversation-list > li")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Second topic")  # newest first

    first = items.filter(has_text="First topic")
    first.hover()
    first.get_by_role("button", name=re.compile("^Rename")).click()
    name = page.get_by_label("New name for this conversation")
    expect(name).to_be_focused()
    name.fill("Caching notes")
    name.press("Enter")
    expect(items.filter(has_text="Caching notes")).to_have_count(1)

    second = items.filter(has_text="Second topic")
    second.hover()
    second.get_by_role("button", name=re.compile("^Delete")).click()
    confirm = page.locator(".conversation.confirming")
    expect(confirm).to_contain_text("Second topic")
    confirm.get_by_role("button", name="Delete", exact=True).click()
    expect(items).to_have_count(1)

    page.reload()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Caching notes")
    items.first.get_by_role("button", name="Caching notes", exact=True).click()
    assert text_of(page.locator(".message.user .body")) == "First topic: caching"


def test_failed_request_shows_the_api_error_a_countdown_and_retry_works(page: Page, stack: Stack) -> None:
    gateway = stack.start_gateway("failing-gateway")  # its own breakers, untouched by other tests
    try:
        for deployment in ("sim-a", "sim-b"):
            r = admin(gateway.url, "POST", "/faults", {"deployment": deployment, "kind": "error", "status": 500, "rate": 1.0, "duration_s": 60})
            assert r.status_code == 201, r.text
        direct = httpx.post(gateway.url + "/v1/chat/completions", timeout=30,
                            json={"model": MODEL, "messages": [{"role": "user", "content": "probe"}]})
        assert direct.status_code == 503, direct.text
        retry_after = direct.headers["retry-after"]
        message_start = direct.json()["error"]["message"].split(" Last error")[0]

        page.goto(gateway.url + "/")
        page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")
        send(page, "Does anything answer?")
        failure = page.locator("#request-failure")
        expect(failure).to_be_visible()
        expect(failure.locator(".failure-title")).to_contain_text("HTTP 503")
        expect(failure.locator(".failure-message")).to_contain_text(message_start)
        countdown = failure.locator(".retry-after")
        expect(countdown).to_have_attribute("data-retry-after", retry_after)
        expect(countdown).to_have_text(re.compile(r"wait \d+ s|try again now"))
        expect(page.locator(".message.assistant")).to_have_count(0)  # no empty answer left spinning
        expect(page.locator("#send")).to_be_visible()
        assert serious_violations(page) == []
        expect(countdown).to_have_text("You can try again now.", timeout=int(retry_after) * 1000 + 3000)

        assert admin(gateway.url, "DELETE", "/faults").status_code == 200
        failure.get_by_role("button", name="Retry").click()
        wait_answered(page)
        expect(failure).to_have_count(0)
        assert text_of(last_answer(page).locator(".body")) == api_answer(gateway.url, "Does anything answer?")
    finally:
        gateway.stop()


def test_retry_after_counts_down_when_every_upstream_is_rate_limited(page: Page, stack: Stack) -> None:
    gateway = stack.start_gateway("rate-limited-gateway")
    try:
        stack.set_knobs(rate_limit_rate=1.0, retry_after_s=2)
        page.goto(gateway.url + "/")
        page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")
        send(page, "Are you busy?")
        countdown = page.locator("#request-failure .retry-after")
        expect(countdown).to_have_attribute("data-retry-after", "2")
        expect(countdown).to_have_text(re.compile(r"^The server asks to wait [12] s before trying again\.$"))
        expect(countdown).to_have_text("The server asks to wait 1 s before trying again.", timeout=3000)
        expect(countdown).to_have_text("You can try again now.", timeout=4000)
        stack.set_knobs(rate_limit_rate=0.0)
        page.locator("#request-failure").get_by_role("button", name="Retry").click()
        wait_answered(page)
    finally:
        gateway.stop()


PAYLOAD = '<img src=x onerror="window.__pwned=1">'


def test_model_output_is_rendered_as_text_never_as_markup(page: Page, stack: Stack) -> None:
    open_chat(page, stack)
    rendered = page.evaluate("""async (payload) => {
        const { renderMarkdown } = await import('/assets/markdown.js');
        const box = document.createElement('div');
        box.append(renderMarkdown([
            payload,
            '**bold** and [a trap](javascript:window.__pwned=2) and [a link](https://example.com/a)',
            '```html\\n<script>window.__pwned=3</script>\\n```',
            '| a | b |\\n|---|---|\\n| <b>x</b> | `<i>` |',
            '- one <iframe src=x></iframe>\\n- two',
        ].join('\\n\\n')));
        return {
            text: box.textContent,
            elements: box.querySelectorAll('img, script, iframe, b, i').length,
            handlers: [...box.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on')),
            links: [...box.querySelectorAll('a')].map(a => a.getAttribute('href')),
            strong: box.querySelectorAll('strong').length,
            code: box.querySelector('pre code').textContent,
            cells: box.querySelectorAll('td').length,
            items: box.querySelectorAll('li').length,
        };
    }""", PAYLOAD)
    assert rendered["elements"] == 0, rendered
    assert rendered["handlers"] == [], rendered
    assert PAYLOAD in rendered["text"]
    assert "<iframe src=x></iframe>" in rendered["text"]
    assert rendered["links"] == ["https://example.com/a"]
    assert rendered["strong"] == 1
    assert rendered["code"] == "<script>window.__pwned=3</script>"
    assert rendered["cells"] == 2 and rendered["items"] == 2

    # A stored answer is drawn by the same path as a streamed one.
    page.evaluate("""(payload) => localStorage.setItem('lifeline.chat.conversations.v1', JSON.stringify([{
        id: 'stored', title: '', model: 'chat-default', createdAt: Date.now(), updatedAt: Date.now(),
        messages: [
            { role: 'user', content: payload },
            { role: 'assistant', state: 'done', content: 'Here it is: ' + payload + '\\n\\n```\\n<script>window.__pwned=4</script>\\n```' },
        ],
    }]))""", PAYLOAD)
    page.reload()
    expect(page.locator(".message.assistant .body")).to_contain_text(PAYLOAD)
    expect(page.locator(".message.user .body")).to_have_text(PAYLOAD)
    expect(page.locator(".open-conversation")).to_contain_text("<img src=x")
    send(page, "<b>bold?</b> <script>window.__pwned=5</script>")
    wait_answered(page)
    expect(page.locator(".message.user .body").last).to_have_text("<b>bold?</b> <script>window.__pwned=5</script>")
    assert page.locator("#messages img, #messages script, #messages b, #conversation-list img").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_status_banner_says_what_each_indicator_means(page: Page, stack: Stack) -> None:
    open_chat(page, stack)
    banners = page.evaluate("""async () => {
        const { statusBanner } = await import('/assets/banner.js');
        const of = (indicator, description) => statusBanner({ page: {}, status: { indicator, description } });
        return {
            none: of('none', 'All Systems Operational'),
            minor: of('minor', 'Partially Degraded Service'),
            major: of('major', 'Partial System Outage'),
            critical: of('critical', 'Major System Outage'),
            maintenance: of('maintenance', 'Service Under Maintenance'),
            unknown: of('purple'),
            empty: statusBanner({}),
            nothing: statusBanner(null),
            text: statusBanner('<html>not json</html>'),
        };
    }""")
    assert banners["none"] is None
    assert banners["empty"] is None and banners["nothing"] is None and banners["text"] is None
    assert banners["minor"] == {
        "level": "minor", "link": "/status", "description": "Partially Degraded Service",
        "headline": "Some parts of the service are having problems. Answers may be slower or fail now and then.",
    }
    assert banners["major"]["level"] == "major" and "major outage" in banners["major"]["headline"]
    assert banners["critical"]["level"] == "critical" and "down" in banners["critical"]["headline"]
    assert banners["maintenance"]["level"] == "maintenance" and "Maintenance" in banners["maintenance"]["headline"]
    assert banners["unknown"]["level"] == "minor" and banners["unknown"]["description"] == ""


def test_status_banner_follows_the_status_api(page: Page, stack: Stack) -> None:
    status = httpx.get(stack.url + "/api/v2/status.json", timeout=10)
    with page.expect_response("**/api/v2/status.json"):
        open_chat(page, stack)
    banner = page.locator("#status-banner")
    if status.status_code == 404:
        expect(banner).to_be_hidden()  # no status API, no banner: nothing is guessed
        pytest.skip("/api/v2/status.json is not served yet (404): the banner's end-to-end check runs once it exists")
    assert status.status_code == 200, status.text
    expected = page.evaluate("async (doc) => (await import('/assets/banner.js')).statusBanner(doc)", status.json())
    if expected is None:
        expect(banner).to_be_hidden()
    else:
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(expected["headline"])
        expect(banner.get_by_role("link", name="See the status page")).to_have_attribute("href", "/status")


def test_api_key_is_kept_in_the_browser_and_sent_as_a_bearer_token(page: Page, context: BrowserContext, stack: Stack) -> None:
    open_chat(page, stack)
    page.locator("#settings summary").click()
    page.get_by_label("API key", exact=True).fill("test-key-123")
    with page.expect_request("**/v1/models") as models:
        page.get_by_role("button", name="Save key").click()
    assert models.value.headers.get("authorization") == "Bearer test-key-123"
    with page.expect_request("**/v1/chat/completions") as chat:
        send(page, "hello with a key")
    assert chat.value.headers.get("authorization") == "Bearer test-key-123"
    wait_answered(page)

    page.reload()
    expect(page.get_by_label("API key", exact=True)).to_have_value("test-key-123")
    page.locator("#settings summary").click()
    with page.expect_request("**/v1/models") as models:
        page.get_by_role("button", name="Forget key").click()
    assert models.value.headers.get("authorization") is None
    assert context.cookies() == []
    assert ADMIN_TOKEN not in page.content()
