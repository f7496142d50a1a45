"""Postmortems and status subscribers in the console, in a real browser: a resolved incident's
draft with the figures it was drafted from, edited, redrafted and published there (each after a
confirmation), and then public in incidents.json and on /status; a subscriber registered through
the public API waiting for approval, approved there, and removed after a confirmation."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import ADMIN_TOKEN, DESKTOP, LifelineProcess, MODEL, PHONE, admin, api_answer, free_port, page_at, serious_violations
from test_console import sign_in, wait_for_poll
from test_console_keys_alerts import no_horizontal_scroll, panel_screenshot
from test_console_status import _nothing_left_open, public, status_gateway  # noqa: F401 (fixtures)

GOOD_ANSWERS = 3


def incident_with_traffic(base: str, name: str) -> dict:
    """An open incident about MODEL that saw three answers and then one request failing on every deployment."""
    incident = admin(base, "POST", "/incidents", {
        "name": name, "status": "identified", "components": {MODEL: "partial_outage"},
        "body": "Some answers fail with a server error."}).json()
    for number in range(GOOD_ANSWERS):
        api_answer(base, f"postmortem question {number}")
    for deployment in ("sim-a", "sim-b"):
        r = admin(base, "POST", "/faults", {"deployment": deployment, "kind": "error", "status": 500, "rate": 1.0, "duration_s": 60})
        assert r.status_code in (200, 201), r.text
    failed = httpx.post(base + "/v1/chat/completions", timeout=30,
                        json={"model": MODEL, "messages": [{"role": "user", "content": "this one fails"}]})
    assert failed.status_code >= 500, failed.text
    admin(base, "DELETE", "/faults")
    return incident


def postmortem(base: str, incident_id: str) -> dict:
    r = admin(base, "GET", f"/incidents/{incident_id}/postmortem")
    assert r.status_code == 200, r.text
    return r.json()


def public_incident(base: str, incident_id: str) -> dict:
    return {i["id"]: i for i in public(base, "incidents.json")["incidents"]}[incident_id]


def register_subscriber(base: str, path: str, token: str | None = None) -> dict:
    # A loopback port with nothing on it: an approved subscriber's deliveries go nowhere outside.
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(base + "/api/v2/subscribers", headers=headers, timeout=10,
                   json={"subscriber": {"endpoint": f"http://127.0.0.1:{free_port()}{path}", "components": [MODEL]}})
    assert r.status_code == 201, r.text
    return r.json()


def subscribers(base: str) -> dict[str, dict]:
    return {s["id"]: s for s in admin(base, "GET", "/subscribers").json()["data"]}


def test_a_resolved_incident_s_postmortem_is_edited_and_published_in_the_console(page: Page, status_gateway: LifelineProcess) -> None:
    base = status_gateway.url
    name = "Failed answers from chat-default"
    incident = incident_with_traffic(base, name)
    sign_in(page, base)

    # Resolved in the console; the draft is written as it resolves.
    card = page.locator(f"#incidents-open article[data-incident='{incident['id']}']")
    card.get_by_role("button", name=f"Resolve {name}").click()
    card.get_by_role("button", name=f"Yes, resolve {name}").click()
    row = page.locator(f"#incidents-resolved tr[data-resolved-incident='{incident['id']}']")
    expect(row.locator(".postmortem-word")).to_have_text("draft")
    draft = postmortem(base, incident["id"])
    assert draft["published"] is False and draft["body"]
    assert draft["impact"]["requests"] == GOOD_ANSWERS + 1 and draft["impact"]["failed_requests"] == 1
    assert public_incident(base, incident["id"])["postmortem_body"] is None

    row.get_by_role("button", name=f"Postmortem of {name}").click()
    view = page.locator("#postmortem")
    expect(view).to_be_focused()
    expect(view.locator("#postmortem-incident")).to_have_text(name)
    expect(view.locator(".postmortem-state")).to_contain_text("draft")
    expect(view.locator(".postmortem-state")).to_contain_text("Not public until it is published.")
    figure = lambda key: view.locator(f"[data-figure='{key}'] .figure-value")  # noqa: E731
    expect(figure("requests")).to_have_text(str(GOOD_ANSWERS + 1))
    expect(figure("failed")).to_have_text("1")
    expect(view.locator("[data-figure='failed'] .detail")).to_have_text("25 % of all")
    expect(figure("callers")).to_have_text(str(draft["impact"]["callers_affected"]))
    upstream_failures = sum(sum(outcomes.values()) for outcomes in draft["impact"]["upstream_failures"].values())
    assert upstream_failures >= 2  # both deployments failed that request
    expect(figure("upstream-failures")).to_have_text(str(upstream_failures))
    expect(view.locator("[data-figure='upstream-failures'] .detail")).to_contain_text("sim-a")
    expect(figure("deployments")).to_have_text(", ".join(draft["impact"]["deployments"]))
    text = view.get_by_label("Text (Markdown)")
    expect(text).to_have_value(draft["body"])

    # Redrafting asks first; keeping the text changes nothing, yes writes it anew.
    text.fill("a few words that a redraft replaces")
    view.get_by_role("button", name="Redraft").click()
    expect(view.locator("#postmortem-confirm")).to_contain_text("replaces the text above, edits included")
    expect(view.get_by_role("button", name="Keep my text")).to_be_focused()
    view.get_by_role("button", name="Keep my text").click()
    expect(view.get_by_role("button", name="Redraft")).to_be_focused()
    expect(text).to_have_value("a few words that a redraft replaces")
    assert postmortem(base, incident["id"])["body"] == draft["body"]
    view.get_by_role("button", name="Redraft").click()
    view.get_by_role("button", name=f"Yes, redraft the postmortem of {name}").click()
    expect(text).to_have_value(draft["body"])
    expect(view.locator("#postmortem-status")).to_have_text("Written anew from what was recorded.")

    # The API's validation message, under the form, on the text.
    text.fill("")
    view.get_by_role("button", name="Save").click()
    expect(view.locator("#postmortem-error")).to_have_text(
        "Text (Markdown): (HTTP 400) 'body' must be a string of 1 to 100000 characters.")
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(text).to_be_focused()

    cause = "## Cause\n\nA bad release of <b>sim-a</b>'s upstream answered every request with a 500.\n\n- Follow-up: canary releases"
    edited = draft["body"].rstrip() + "\n\n" + cause
    text.fill(edited)
    view.get_by_role("button", name="Save").click()
    expect(view.locator("#postmortem-status")).to_have_text("Saved.")
    expect(view.locator("#postmortem-error")).to_be_hidden()
    expect(text).not_to_have_attribute("aria-invalid", "true")
    saved = postmortem(base, incident["id"])
    assert saved["body"] == edited and saved["published"] is False
    assert public_incident(base, incident["id"])["postmortem_body"] is None

    # Publishing asks first; "Not yet" publishes nothing.
    view.get_by_role("button", name="Publish").click()
    expect(view.locator("#postmortem-confirm")).to_contain_text("Publish this text?")
    expect(view.get_by_role("button", name="Not yet")).to_be_focused()
    page.wait_for_timeout(2500)  # a poll in between leaves the question and the text alone
    expect(text).to_have_value(edited)
    view.get_by_role("button", name="Not yet").click()
    assert public_incident(base, incident["id"])["postmortem_published_at"] is None
    view.get_by_role("button", name="Publish").click()
    view.get_by_role("button", name=f"Yes, publish the postmortem of {name}").click()
    expect(view.locator(".postmortem-state")).to_contain_text("Published at ")
    expect(view.get_by_role("button", name="Publish")).to_be_hidden()
    expect(row.locator(".postmortem-word")).to_have_text("published")
    assert page.locator("#panel-incidents b").count() == 0  # the markup in the text stays text

    listed = public_incident(base, incident["id"])
    assert listed["postmortem_body"] == edited
    assert listed["postmortem_published_at"]
    assert postmortem(base, incident["id"])["published_at"] == listed["postmortem_published_at"]
    status_page = page.context.new_page()
    status_page.goto(base + "/status")
    section = status_page.get_by_role("region", name=f"Postmortem of {name}")
    expect(section).to_contain_text("Postmortem")
    expect(section).to_contain_text("A bad release of <b>sim-a</b>'s upstream answered every request with a 500.")
    expect(section.get_by_role("heading", name="Cause", exact=True)).to_be_visible()
    status_page.close()

    view.get_by_role("button", name="Close").click()
    expect(view).to_be_hidden()
    expect(row.get_by_role("button", name=f"Postmortem of {name}")).to_be_focused()


def test_a_subscriber_registered_publicly_is_approved_and_removed_in_the_console(page: Page, status_gateway: LifelineProcess) -> None:
    base = status_gateway.url
    registered = register_subscriber(base, "/status-hook?secret=kept-from-the-public")
    assert registered["state"] == "pending"
    sign_in(page, base)
    expect(page.locator("#panel-subscribers")).to_be_visible()
    endpoint = subscribers(base)[registered["id"]]["endpoint"]
    row = page.locator(f"#subscribers tr[data-subscriber='{registered['id']}']")
    expect(row).to_have_attribute("data-state", "pending")
    expect(row.locator(".state:visible")).to_have_text("waiting for approval")
    expect(row.locator("code.endpoint")).to_have_text(endpoint)  # in full, to judge it before approving
    expect(row).to_contain_text(MODEL)

    row.get_by_role("button", name=f"Approve {endpoint}").click()
    expect(row).to_have_attribute("data-state", "active")
    expect(row.locator(".state:visible")).to_have_text("active")
    expect(row.get_by_role("button", name=f"Approve {endpoint}")).to_have_count(0)
    expect(row.get_by_role("button", name=f"Remove {endpoint}")).to_be_focused()
    expect(page.locator("#subscribers-status")).to_have_text("127.0.0.1 is approved and gets updates from now on.")
    approved = subscribers(base)[registered["id"]]
    assert approved["state"] == "active" and approved["approved_at"]

    # Removing asks first; keeping it changes nothing.
    row.get_by_role("button", name=f"Remove {endpoint}").click()
    expect(row.locator(".confirm-text")).to_contain_text("Remove 127.0.0.1? It gets no more updates")
    expect(row.get_by_role("button", name=f"Keep {endpoint}")).to_be_focused()
    page.wait_for_timeout(2500)  # a poll in between keeps the question open
    row.get_by_role("button", name=f"Keep {endpoint}").click()
    expect(row.get_by_role("button", name=f"Remove {endpoint}")).to_be_focused()
    assert registered["id"] in subscribers(base)
    row.get_by_role("button", name=f"Remove {endpoint}").click()
    row.get_by_role("button", name=f"Yes, remove {endpoint}").click()
    expect(row).to_have_count(0)
    expect(page.locator("#subscribers-status")).to_have_text("127.0.0.1 is removed.")
    assert registered["id"] not in subscribers(base)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_postmortem_and_subscriber_panels_are_accessible_and_fit_the_screen(browser: Browser, status_gateway: LifelineProcess,
                                                                            viewport: dict) -> None:
    base = status_gateway.url
    name = "Elevated errors on chat-default"
    incident = incident_with_traffic(base, name)
    admin(base, "POST", f"/incidents/{incident['id']}/resolve", {"body": "Answers have been normal for ten minutes."})
    pending = register_subscriber(base, "/hooks/status")
    active = register_subscriber(base, "/hooks/ops-channel", token=ADMIN_TOKEN)
    phone = viewport is PHONE
    with page_at(browser, viewport) as page:
        sign_in(page, base)
        wait_for_poll(page)
        row = page.locator(f"#incidents-resolved tr[data-resolved-incident='{incident['id']}']")
        row.get_by_role("button", name=f"Postmortem of {name}").click()
        view = page.locator("#postmortem")
        expect(view.locator("[data-figure='requests'] .figure-value")).to_have_text(str(GOOD_ANSWERS + 1))
        view.get_by_role("button", name="Publish").click()  # the confirmation, open
        expect(view.get_by_role("button", name="Not yet")).to_be_visible()
        endpoint = subscribers(base)[active["id"]]["endpoint"]
        page.get_by_role("button", name=f"Remove {endpoint}").click()
        expect(page.get_by_role("button", name=f"Yes, remove {endpoint}")).to_be_visible()
        expect(page.locator(f"#subscribers tr[data-subscriber='{pending['id']}'] .state:visible")).to_have_text("waiting for approval")
        no_horizontal_scroll(page)
        assert serious_violations(page) == []
        size = "phone" if phone else "desktop"
        view.scroll_into_view_if_needed()
        panel_screenshot(view, f"console-postmortem-{size}")
        panel_screenshot(row.locator("xpath=ancestor::div[contains(@class, 'table-scroll')]"), f"console-resolved-incidents-{size}")
        panel_screenshot(page.locator("#panel-subscribers"), f"console-subscribers-{size}")
        for subscriber in (pending, active):
            admin(base, "DELETE", f"/subscribers/{subscriber['id']}")
