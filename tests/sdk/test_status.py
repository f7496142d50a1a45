"""The status page end to end: a fault users see (both deployments of a model failing) opens a
public incident in the Statuspage JSON, the feeds and the page within the configured delay and
resolves after recovery; a fault hidden by failover opens none; a restart keeps the history and
reopens nothing; planned maintenance drains its deployment, shows under maintenance and restores
it. Delays from fault to public incident and from recovery to resolution are measured and printed."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import feedparser
import pytest

from conftest import (
    ADMIN_TOKEN,
    DEPLOYMENTS,
    OPENAI_MODEL,
    GatewayFactory,
    LifelineProcess,
    ProcessStartError,
    Traffic,
    httpx,
    wait_for,
)

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
OPEN_AFTER_S = 1.0
STATUS_CONFIG = f"""
status:
  page_name: Lifeline test
  evaluation_interval_s: 0.1
  window_s: 2
  minimum_requests: 3
  open_after_s: {OPEN_AFTER_S}
  monitor_after_s: 0.5
  resolve_after_s: 1.5
  update_interval_s: 2
"""


@pytest.fixture
def status_gateway(gateway_factory: GatewayFactory) -> Iterator[LifelineProcess]:
    p = gateway_factory.start("status-gateway", extra_config=STATUS_CONFIG)
    yield p
    p.stop()


def get(gw: LifelineProcess, path: str) -> Any:
    r = httpx.get(gw.url + path, timeout=10)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json() if path.endswith(".json") else r.text


def admin(gw: LifelineProcess, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, gw.url + "/admin/v1" + path, json=body, headers=ADMIN, timeout=10)
    assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
    return r.json()



def check_statuspage_shape(summary: dict[str, Any]) -> None:
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert set(summary["page"]) == {"id", "name", "url", "time_zone", "updated_at"}
    assert summary["status"]["indicator"] in ("none", "minor", "major", "critical", "maintenance")
    for component in summary["components"]:
        for key in ("id", "name", "status", "created_at", "updated_at", "position", "description", "showcase", "group_id",
                    "page_id", "group", "only_show_if_degraded"):
            assert key in component, key
        assert component["status"] in ("operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance")
    for incident in summary["incidents"]:
        for key in ("id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact", "shortlink",
                    "started_at", "page_id", "incident_updates", "components"):
            assert key in incident, key
        for update in incident["incident_updates"]:
            assert set(update) >= {"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at", "affected_components"}
        datetime.fromisoformat(incident["created_at"].replace("Z", "+00:00"))


def test_an_outage_users_see_opens_a_public_incident_that_resolves_and_survives_a_restart(
    status_gateway: LifelineProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = status_gateway
    traffic = Traffic(gw.url, OPENAI_MODEL)
    try:
        time.sleep(1.0)
        summary = get(gw, "/api/v2/summary.json")
        check_statuspage_shape(summary)
        assert summary["status"]["indicator"] == "none", summary["status"]
        assert [c["name"] for c in summary["components"]] == ["API", "Chat", "chat-openai", "chat-anthropic"]

        faults = [admin(gw, "POST", "/faults", {"deployment": d, "kind": "error", "status": 500, "rate": 1.0, "duration_s": 60})["id"]
                  for d in DEPLOYMENTS[OPENAI_MODEL]]
        fault_at = time.monotonic()
        incident = wait_for(lambda: get(gw, "/api/v2/incidents/unresolved.json")["incidents"], 15, "a public incident")[0]
        opened_delay = time.monotonic() - fault_at
        assert opened_delay >= OPEN_AFTER_S * 0.9, "opened before the configured delay"
        assert incident["status"] == "investigating"
        assert incident["impact"] in ("major", "critical")
        assert "chat-openai" in [c["name"] for c in incident["components"]]
        body = incident["incident_updates"][0]["body"]
        assert "chat-openai" in body and "requests failed" in body, body

        summary = get(gw, "/api/v2/summary.json")
        check_statuspage_shape(summary)
        assert summary["status"]["indicator"] in ("major", "critical")
        assert [i["id"] for i in summary["incidents"]] == [incident["id"]]
        statuses = {c["name"]: c["status"] for c in summary["components"]}
        assert statuses["chat-openai"] in ("partial_outage", "major_outage")
        assert statuses["chat-anthropic"] == "operational"
        page = get(gw, "/status")
        assert incident["name"] in page and "Active incidents" in page
        atom = feedparser.parse(get(gw, "/history.atom"))
        assert not atom.bozo, atom.bozo_exception
        assert [e.title for e in atom.entries] == [incident["name"]]

        for fault in faults:
            admin(gw, "DELETE", f"/faults/{fault}")
        recovered_at = time.monotonic()
        wait_for(lambda: not get(gw, "/api/v2/incidents/unresolved.json")["incidents"], 30, "the incident to resolve")
        resolved_delay = time.monotonic() - recovered_at
    finally:
        traffic.stop()
    resolved = get(gw, "/api/v2/incidents.json")["incidents"]
    assert [i["id"] for i in resolved] == [incident["id"]], "one event, one incident"
    assert resolved[0]["status"] == "resolved" and resolved[0]["resolved_at"] and resolved[0]["monitoring_at"]
    assert [u["status"] for u in resolved[0]["incident_updates"]][:2] == ["resolved", "monitoring"]
    assert get(gw, "/api/v2/status.json")["status"]["indicator"] == "none"
    rss = feedparser.parse(get(gw, "/history.rss"))
    assert not rss.bozo, rss.bozo_exception
    assert len(rss.entries) == 1 and "Resolved" in rss.entries[0].description
    with capsys.disabled():
        print(f"\n[status] fault -> public incident: {opened_delay:.2f} s (open_after_s {OPEN_AFTER_S}); "
              f"recovery -> resolved: {resolved_delay:.2f} s (window 2 s + monitor 0.5 s + quiet 1.5 s)")

    # A restart keeps the history and reopens nothing.
    gw.stop()
    restarted = LifelineProcess(name="status-restarted", args_for_port=gw.args_for_port, workdir=gw.workdir, env=gw.env)
    try:
        restarted.start()
    except ProcessStartError as exc:
        pytest.fail(str(exc))
    try:
        time.sleep(1.5)
        after = get(restarted, "/api/v2/incidents.json")["incidents"]
        assert [(i["id"], i["status"]) for i in after] == [(incident["id"], "resolved")]
        assert after[0]["incident_updates"] == resolved[0]["incident_updates"]
        assert not get(restarted, "/api/v2/incidents/unresolved.json")["incidents"]
    finally:
        restarted.stop()


def test_a_fault_hidden_by_failover_opens_no_public_incident(status_gateway: LifelineProcess) -> None:
    gw = status_gateway
    admin(gw, "POST", "/faults", {"deployment": DEPLOYMENTS[OPENAI_MODEL][0], "kind": "error", "status": 500, "rate": 1.0, "duration_s": 60})
    traffic = Traffic(gw.url, OPENAI_MODEL)
    try:
        time.sleep(OPEN_AFTER_S + 3)
    finally:
        traffic.stop()
    assert traffic.statuses and set(traffic.statuses) == {200}, "failover hides the fault from clients"
    assert get(gw, "/api/v2/incidents.json")["incidents"] == []
    assert {c["status"] for c in get(gw, "/api/v2/components.json")["components"]} == {"operational"}
    assert get(gw, "/api/v2/status.json")["status"] == {"indicator": "none", "description": "All Systems Operational"}


def test_planned_maintenance_is_announced_drains_and_restores(status_gateway: LifelineProcess, lifeline_path: Any) -> None:
    gw = status_gateway
    deployment = DEPLOYMENTS[OPENAI_MODEL][0]
    now = datetime.now(timezone.utc)
    later = admin(gw, "POST", "/maintenances", {
        "name": "Database upgrade", "message": "Upgrading the second region.", "deployments": [DEPLOYMENTS[OPENAI_MODEL][1]],
        "scheduled_for": (now + timedelta(hours=2)).isoformat(), "scheduled_until": (now + timedelta(hours=3)).isoformat()})
    upcoming = get(gw, "/api/v2/scheduled-maintenances/upcoming.json")["scheduled_maintenances"]
    assert [(m["id"], m["status"], m["impact"]) for m in upcoming] == [(later["id"], "scheduled", "maintenance")]
    assert upcoming[0]["scheduled_for"] and upcoming[0]["scheduled_until"]
    assert "Database upgrade" in get(gw, "/status")

    # Through the CLI, as an operator would: from now for a few seconds.
    until = (datetime.now(timezone.utc) + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cli = subprocess.run([str(lifeline_path), "maintenance", "schedule", "--server", gw.url, "--deployment", deployment,
                          "--from", "now", "--until", until, "--message", "Rotating certificates on oa-1."],
                         env={**gw.env, "LIFELINE_ADMIN_TOKEN": ADMIN_TOKEN}, capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0, cli.stderr
    traffic = Traffic(gw.url, OPENAI_MODEL)
    try:
        def drained() -> bool:
            rows = {d["name"]: d for d in admin(gw, "GET", "/deployments")["data"]}
            return rows[deployment]["drained"]

        wait_for(drained, 5, f"{deployment} to be drained")
        active = get(gw, "/api/v2/scheduled-maintenances/active.json")["scheduled_maintenances"]
        assert len(active) == 1 and active[0]["status"] == "in_progress"
        components = {c["name"]: c["status"] for c in get(gw, "/api/v2/components.json")["components"]}
        assert components[OPENAI_MODEL] == "under_maintenance"
        assert get(gw, "/api/v2/status.json")["status"]["indicator"] == "maintenance"
        wait_for(lambda: not drained(), 10, f"{deployment} to come back")
        done = [m for m in get(gw, "/api/v2/scheduled-maintenances.json")["scheduled_maintenances"] if m["id"] == active[0]["id"]]
        assert done[0]["status"] == "completed"
        assert [u["status"] for u in done[0]["incident_updates"]] == ["completed", "in_progress", "scheduled"]
        components = {c["name"]: c["status"] for c in get(gw, "/api/v2/components.json")["components"]}
        assert components[OPENAI_MODEL] == "operational"
    finally:
        traffic.stop()
    assert set(traffic.statuses) == {200}, "the other deployment answered throughout"
    assert get(gw, "/api/v2/incidents.json")["incidents"] == []


def test_incidents_by_hand_through_the_cli(status_gateway: LifelineProcess, lifeline_path: Any) -> None:
    gw = status_gateway
    env = {**gw.env, "LIFELINE_ADMIN_TOKEN": ADMIN_TOKEN, "LIFELINE_URL": gw.url}

    def cli(*args: str) -> str:
        done = subprocess.run([str(lifeline_path), "incidents", *args], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = cli("create", "--name", "Slow answers from <chat-anthropic>", "--message", "We are looking into it.",
                  "--component", "chat-anthropic=degraded_performance")
    incident_id = created.split()[0]
    status = get(gw, "/api/v2/summary.json")
    assert status["status"]["indicator"] == "minor"
    assert {c["name"]: c["status"] for c in status["components"]}["chat-anthropic"] == "degraded_performance"
    cli("update", incident_id, "--status", "identified", "--message", "A slow upstream.")
    assert incident_id in cli("list")
    page = get(gw, "/status")
    assert "Slow answers from &lt;chat-anthropic&gt;" in page and "<chat-anthropic>" not in page
    cli("resolve", incident_id, "--message", "Fixed.")
    incidents = get(gw, "/api/v2/incidents.json")["incidents"]
    assert [u["status"] for u in incidents[0]["incident_updates"]] == ["resolved", "identified", "investigating"]
    assert get(gw, "/api/v2/status.json")["status"]["indicator"] == "none"
