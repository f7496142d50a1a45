"""The console's incidents and maintenance panels in a real browser: what is done there shows on
the admin API, the Statuspage API and the status page; the API's validation errors show beside
the forms; resolving asks first; a maintenance starting now drains its deployment until it ends."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from conftest import DESKTOP, LifelineProcess, MODEL, PHONE, SECOND_MODEL, Stack, admin, page_at, serious_violations
from test_console import sign_in, wait_for_poll
from test_console_keys_alerts import no_horizontal_scroll, panel_screenshot

# Status evaluated every 0.2 s, so a maintenance starts and ends within one console poll.
# Subscribers registered on this gateway (test_console_postmortems) listen on loopback.
STATUS = "status: {evaluation_interval_s: 0.2}\nnotifications: {allow_private_targets: true}\n"


@pytest.fixture(scope="module")
def status_gateway(stack: Stack) -> Iterator[LifelineProcess]:
    """A gateway of its own, so incidents and maintenance made here never reach other tests."""
    gateway = stack.start_gateway("console-status", extra_config=STATUS)
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _nothing_left_open(status_gateway: LifelineProcess) -> Iterator[None]:
    yield
    for incident in admin(status_gateway.url, "GET", "/incidents").json()["data"]:
        if incident["status"] != "resolved":
            admin(status_gateway.url, "POST", f"/incidents/{incident['id']}/resolve")
    for maintenance in admin(status_gateway.url, "GET", "/maintenances").json()["data"]:
        if maintenance["status"] != "completed":
            admin(status_gateway.url, "POST", f"/maintenances/{maintenance['id']}/complete")


def public(base: str, path: str) -> dict:
    r = httpx.get(base + "/api/v2/" + path, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def unresolved(base: str) -> dict[str, dict]:
    return {i["id"]: i for i in public(base, "incidents/unresolved.json")["incidents"]}


def admin_incident(base: str, name: str) -> dict:
    found = [i for i in admin(base, "GET", "/incidents").json()["data"] if i["name"] == name]
    assert len(found) == 1, found
    return found[0]


def deployment(base: str, name: str) -> dict:
    return {d["name"]: d for d in admin(base, "GET", "/deployments").json()["data"]}[name]


def eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    """For what the status evaluation (every 0.2 s here) does in the background."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not true within the time"
        time.sleep(0.05)


def component_status(base: str, name: str) -> str:
    return {c["name"]: c["status"] for c in public(base, "components.json")["components"]}[name]


def test_an_incident_opened_in_the_console_is_updated_edited_and_resolved_there(page: Page, context: BrowserContext,
                                                                                status_gateway: LifelineProcess) -> None:
    base = status_gateway.url
    sign_in(page, base)
    panel = page.locator("#panel-incidents")
    expect(panel).to_be_visible()
    form = page.locator("#incident-form")

    # The API's validation message appears under the form and marks the field it names.
    form.get_by_role("button", name="Open incident").click()
    expect(page.locator("#incident-form-error")).to_contain_text("'name' must be a string of 1 to 200 characters.")
    expect(page.locator("#incident-form-error")).to_contain_text("Title: (HTTP 400)")
    expect(form.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Title")).to_be_focused()

    name = "Slow answers from chat-default"
    message = 'Answers start slowly. <img src=x onerror="window.__pwned=1"> We are moving traffic.'
    form.get_by_label("Title").fill(name)
    form.get_by_label("Status").select_option("identified")
    expect(form.get_by_label(MODEL, exact=True)).to_be_attached()
    form.get_by_label(MODEL, exact=True).select_option("partial_outage")
    form.get_by_label("Message").fill(message)
    form.get_by_role("button", name="Open incident").click()

    card = page.locator("#incidents-open article.incident")
    expect(card).to_have_count(1)
    incident = admin_incident(base, name)
    card = page.locator(f"#incidents-open article[data-incident='{incident['id']}']")
    expect(card).to_be_focused()
    expect(card).to_have_attribute("data-status", "identified")
    expect(card.locator(".incident-name")).to_have_text(name)
    expect(card.locator(".update-body")).to_have_text(message)  # as text, never as markup
    expect(card).to_contain_text(f"components: {MODEL} partial outage")
    expect(page.locator("#incident-form-error")).to_be_hidden()
    expect(form.get_by_label("Title")).not_to_have_attribute("aria-invalid", "true")
    assert page.locator("#panel-incidents img").count() == 0 and page.evaluate("window.__pwned") is None

    listed = unresolved(base)[incident["id"]]
    assert (listed["name"], listed["status"]) == (name, "identified")
    assert listed["incident_updates"][0]["body"] == message
    assert [(c["name"], c["status"]) for c in listed["components"]] == [(MODEL, "partial_outage")]
    assert component_status(base, MODEL) == "partial_outage"
    status_page = context.new_page()
    status_page.goto(base + "/status")
    expect(status_page.get_by_text(name).first).to_be_visible()
    expect(status_page.get_by_text(message).first).to_be_visible()
    status_page.close()

    # An update: status and message.
    card.get_by_role("button", name=f"Post an update to {name}").click()
    editor = card.locator("form.incident-editor")
    expect(editor.get_by_label("Status")).to_be_focused()
    editor.get_by_label("Status").select_option("monitoring")
    editor.get_by_label("Message").fill("A fix is in place; first tokens are back under a second.")
    page.wait_for_timeout(2500)  # a poll in between keeps the form and what is typed in it
    expect(editor.get_by_label("Message")).to_have_value("A fix is in place; first tokens are back under a second.")
    editor.get_by_role("button", name="Post update", exact=True).click()
    expect(card).to_have_attribute("data-status", "monitoring")
    expect(card.locator(".update-body").first).to_have_text("A fix is in place; first tokens are back under a second.")
    expect(page.locator("#incidents-status")).to_contain_text(f"Update posted to {name}")
    listed = unresolved(base)[incident["id"]]
    assert listed["status"] == "monitoring"
    assert [u["status"] for u in listed["incident_updates"]] == ["monitoring", "identified"]

    # Its wording: the title and impact.
    new_name = "Slow first tokens on chat-default"
    card.get_by_role("button", name=f"Edit the title and impact of {name}").click()
    card.get_by_label("Title").fill("")
    card.get_by_role("button", name="Save").click()
    expect(card.locator(".failure")).to_contain_text("'name' must be a string of 1 to 200 characters.")
    expect(card.get_by_label("Title")).to_be_focused()
    card.get_by_label("Title").fill(new_name)
    card.get_by_label("Impact").select_option("minor")
    card.get_by_role("button", name="Save").click()
    expect(card.locator(".incident-name")).to_have_text(new_name)
    expect(card.locator(".impact")).to_have_text("minor impact")
    listed = unresolved(base)[incident["id"]]
    assert (listed["name"], listed["impact"], len(listed["incident_updates"])) == (new_name, "minor", 2)

    # Resolving asks first; keeping it open changes nothing.
    card.get_by_role("button", name=f"Resolve {new_name}").click()
    expect(card.locator(".confirm-text")).to_contain_text(f"Resolve {new_name}?")
    expect(card.get_by_role("button", name="Keep open")).to_be_focused()
    page.wait_for_timeout(2500)
    card.get_by_role("button", name="Keep open").click()
    expect(card.get_by_role("button", name=f"Resolve {new_name}")).to_be_focused()
    assert incident["id"] in unresolved(base)

    card.get_by_role("button", name=f"Resolve {new_name}").click()
    card.get_by_label("Closing message (optional)").fill("First tokens have been fast for ten minutes.")
    card.get_by_role("button", name=f"Yes, resolve {new_name}").click()
    expect(page.locator(f"#incidents-open article[data-incident='{incident['id']}']")).to_have_count(0)
    resolved_row = page.locator(f"#incidents-resolved tr[data-resolved-incident='{incident['id']}']")
    expect(resolved_row).to_contain_text(new_name)
    expect(resolved_row).to_contain_text("First tokens have been fast for ten minutes.")
    expect(page.locator("#incidents-open")).to_contain_text("No open incidents")
    assert incident["id"] not in unresolved(base)
    everything = {i["id"]: i for i in public(base, "incidents.json")["incidents"]}
    assert everything[incident["id"]]["status"] == "resolved"
    assert everything[incident["id"]]["incident_updates"][0]["body"] == "First tokens have been fast for ten minutes."
    assert admin_incident(base, new_name)["status"] == "resolved"


def test_a_draft_opened_in_the_console_reaches_the_status_page_when_published(page: Page, status_gateway: LifelineProcess) -> None:
    base = status_gateway.url
    sign_in(page, base)
    form = page.locator("#incident-form")
    name = "Embeddings slower than usual"
    form.get_by_label("Title").fill(name)
    form.get_by_label("Keep as a draft").check()
    form.get_by_role("button", name="Open incident").click()
    incident = admin_incident(base, name)
    card = page.locator(f"#incidents-open article[data-incident='{incident['id']}']")
    expect(card).to_contain_text("draft: not on the status page")
    expect(page.locator("#incidents-status")).to_contain_text("saved as a draft")
    assert incident["published"] is False and incident["id"] not in unresolved(base)

    card.get_by_role("button", name=f"Publish {name}").click()
    expect(card.locator(".flag-draft")).to_have_count(0)
    expect(card.get_by_role("button", name=f"Publish {name}")).to_have_count(0)
    assert unresolved(base)[incident["id"]]["incident_updates"][0]["body"] == "We are investigating."


def local_time_input(page: Page, hours_from_now: float) -> str:
    """A `datetime-local` value in the browser's own time zone."""
    return page.evaluate("""(hours) => {
        const d = new Date(Date.now() + hours * 3600e3);
        const p = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    }""", hours_from_now)


def test_maintenance_scheduled_in_the_console_drains_its_deployment_until_it_is_ended(page: Page, status_gateway: LifelineProcess) -> None:
    base = status_gateway.url
    sign_in(page, base)
    wait_for_poll(page)
    panel = page.locator("#panel-maintenances")
    expect(panel).to_be_visible()
    form = page.locator("#maintenance-form")

    # Nothing ticked: the API refuses, and the message sits under the form, on the deployments.
    form.get_by_label("Title").fill("Certificate rotation on sim-c")
    form.get_by_role("button", name="Schedule").click()
    expect(page.locator("#maintenance-form-error")).to_have_text("Deployments: (HTTP 400) 'deployments' must name at least one deployment.")
    expect(form.locator("fieldset[name='deployments']")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("sim-a", exact=True)).to_be_focused()

    form.get_by_label("sim-c", exact=True).check()
    form.get_by_label("Lasts (minutes)").fill("30")
    form.get_by_label("Message").fill("sim-c is drained while its certificates are rotated; other deployments answer.")
    form.get_by_role("button", name="Schedule").click()
    expect(page.locator("#maintenance-form-error")).to_be_hidden()
    maintenance = [m for m in admin(base, "GET", "/maintenances").json()["data"] if m["name"] == "Certificate rotation on sim-c"]
    assert len(maintenance) == 1 and maintenance[0]["deployments"] == ["sim-c"]
    row = page.locator(f"#maintenances tr[data-maintenance='{maintenance[0]['id']}']")
    expect(row).to_have_attribute("data-status", "in_progress", timeout=6000)
    expect(row.locator(".state")).to_have_text("in progress")
    expect(row).to_contain_text("sim-c is drained while its certificates are rotated")

    # At its start the deployment is drained and its model shows under maintenance.
    eventually(lambda: deployment(base, "sim-c")["drained"] is True)
    eventually(lambda: component_status(base, SECOND_MODEL) == "under_maintenance")
    assert [m["id"] for m in public(base, "scheduled-maintenances/active.json")["scheduled_maintenances"]] == [maintenance[0]["id"]]
    expect(page.locator("#deployments tr[data-deployment='sim-c']")).to_have_attribute("data-state", "draining")

    # Ending it early asks first.
    row.get_by_role("button", name="End Certificate rotation on sim-c").click()
    expect(row).to_contain_text("End it now? Traffic goes to sim-c again at once.")
    expect(row.get_by_role("button", name="Keep Certificate rotation on sim-c")).to_be_focused()
    row.get_by_role("button", name="Keep Certificate rotation on sim-c").click()
    assert deployment(base, "sim-c")["drained"] is True
    row.get_by_role("button", name="End Certificate rotation on sim-c").click()
    row.get_by_role("button", name="Yes, end Certificate rotation on sim-c").click()
    expect(row).to_have_attribute("data-status", "completed")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(page.locator("#maintenances-status")).to_contain_text("is over")
    expect(page.locator("#deployments tr[data-deployment='sim-c']")).to_have_attribute("data-state", "healthy", timeout=6000)
    eventually(lambda: deployment(base, "sim-c")["drained"] is False)
    eventually(lambda: component_status(base, SECOND_MODEL) == "operational")
    assert public(base, "scheduled-maintenances/active.json")["scheduled_maintenances"] == []


def test_maintenance_scheduled_ahead_is_announced_and_can_be_cancelled(page: Page, status_gateway: LifelineProcess) -> None:
    base = status_gateway.url
    sign_in(page, base)
    wait_for_poll(page)
    form = page.locator("#maintenance-form")
    starts = local_time_input(page, 2)
    form.get_by_label("Title").fill("Upstream upgrade")
    form.get_by_label("sim-b", exact=True).check()
    form.get_by_label("Starts").fill(starts)
    form.get_by_label("Lasts (minutes)").fill("0")
    form.get_by_role("button", name="Schedule").click()
    expect(page.locator("#maintenance-form-error")).to_contain_text("Lasts (minutes): give the length in minutes, 1 or more.")
    expect(form.get_by_label("Lasts (minutes)")).to_be_focused()
    form.get_by_label("Lasts (minutes)").fill("45")
    form.get_by_role("button", name="Schedule").click()

    upcoming = public(base, "scheduled-maintenances/upcoming.json")["scheduled_maintenances"]
    assert [m["name"] for m in upcoming] == ["Upstream upgrade"]
    expected_start = page.evaluate("(value) => new Date(value).getTime() / 1000", starts)
    start = datetime.fromisoformat(upcoming[0]["scheduled_for"].replace("Z", "+00:00")).timestamp()
    until = datetime.fromisoformat(upcoming[0]["scheduled_until"].replace("Z", "+00:00")).timestamp()
    assert abs(start - expected_start) < 1 and abs(until - start - 45 * 60) < 1
    row = page.locator(f"#maintenances tr[data-maintenance='{upcoming[0]['id']}']")
    expect(row).to_have_attribute("data-status", "scheduled")
    assert deployment(base, "sim-b")["drained"] is False

    row.get_by_role("button", name="Cancel Upstream upgrade").click()
    row.get_by_role("button", name="Yes, cancel Upstream upgrade").click()
    expect(row).to_have_attribute("data-status", "completed")
    expect(page.locator("#maintenances-status")).to_contain_text("Upstream upgrade is cancelled")
    assert public(base, "scheduled-maintenances/upcoming.json")["scheduled_maintenances"] == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_incident_and_maintenance_panels_are_accessible_and_fit_the_screen(browser: Browser, status_gateway: LifelineProcess,
                                                                           viewport: dict) -> None:
    base = status_gateway.url
    opened = admin(base, "POST", "/incidents", {
        "name": "Elevated errors on chat-default", "status": "identified",
        "body": "Some answers fail with a server error; requests are moving to the other deployment.",
        "components": {MODEL: "partial_outage", "API": "degraded_performance"}}).json()
    admin(base, "POST", f"/incidents/{opened['id']}/updates", {"status": "monitoring", "body": "Errors are back under 0.1 %; watching."})
    admin(base, "POST", "/incidents", {"name": "Slow embeddings", "published": False})
    now = datetime.now().astimezone()
    admin(base, "POST", "/maintenances", {"name": "Certificate rotation", "deployments": ["sim-c"],
                                          "message": "sim-c is drained while its certificates are rotated.",
                                          "scheduled_for": now.isoformat(), "scheduled_until": now.replace(year=now.year + 1).isoformat()})
    phone = viewport is PHONE
    with page_at(browser, viewport) as page:
        sign_in(page, base)
        wait_for_poll(page)
        card = page.locator(f"article[data-incident='{opened['id']}']")
        expect(card).to_be_visible()
        card.get_by_role("button", name="Resolve Elevated errors on chat-default").click()
        expect(page.locator("#maintenances tr[data-status='in_progress']")).to_have_count(1, timeout=6000)
        page.locator("#maintenance-form").get_by_role("button", name="Schedule").click()  # the validation message, shown
        expect(page.locator("#maintenance-form-error")).to_be_visible()
        no_horizontal_scroll(page)
        assert serious_violations(page) == []
        name = "phone" if phone else "desktop"
        panel_screenshot(page.locator("#panel-incidents"), f"console-incidents-{name}")
        panel_screenshot(page.locator("#panel-maintenances"), f"console-maintenance-{name}")
