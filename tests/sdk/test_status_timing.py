"""The status page's timing with the default configuration, every status duration scaled down by
one factor (`status.time_scale`) so the run takes seconds instead of minutes: a major outage
(every request of a model failing) is public within 20–30 s at the defaults, a degradation only
after longer, the incident resolves within 5 minutes of recovery, and a fault that failover hid
opens nothing. The delays are measured on the real binary and printed, scaled back."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

from conftest import ADMIN_TOKEN, DEPLOYMENTS, OPENAI_MODEL, GatewayFactory, LifelineProcess, Traffic, httpx, wait_for

SCALE = 0.05
# Real seconds allowed on top of a scaled bound: process scheduling on a busy machine, request
# round trips and the test's own polling. At the defaults this is 15 s, far less than the gaps
# between the promises it separates.
SLACK_S = 0.75
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}

# The defaults these bounds come from (docs/status-page.md): major outage 20 s, degradation 45 s
# after the problem began; 30 s window; monitoring after 30 s of normal figures, resolved 180 s later.
MAJOR_OPEN_S = 20
MAJOR_PROMISE_S = 30
DEGRADED_OPEN_S = 45
DEGRADED_PROMISE_S = 60
MONITOR_PLUS_RESOLVE_S = 30 + 180
RESOLVE_PROMISE_S = 300


@pytest.fixture
def scaled_gateway(gateway_factory: GatewayFactory) -> Iterator[LifelineProcess]:
    p = gateway_factory.start("status-timing", extra_config=f"status: {{time_scale: {SCALE}}}\n")
    yield p
    p.stop()


def get(gw: LifelineProcess, path: str) -> Any:
    r = httpx.get(gw.url + path, timeout=10)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json()


def inject(gw: LifelineProcess, body: dict[str, Any]) -> str:
    r = httpx.post(gw.url + "/admin/v1/faults", json={"duration_s": 120, **body}, headers=ADMIN, timeout=10)
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


def clear(gw: LifelineProcess, fault: str) -> None:
    r = httpx.delete(gw.url + f"/admin/v1/faults/{fault}", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text



def unresolved(gw: LifelineProcess) -> list[dict[str, Any]]:
    return get(gw, "/api/v2/incidents/unresolved.json")["incidents"]


def test_a_major_outage_is_public_within_30_s_and_resolves_within_5_minutes_at_the_default_timings(
    scaled_gateway: LifelineProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = scaled_gateway
    traffic = Traffic(gw.url, OPENAI_MODEL)
    try:
        time.sleep(DEGRADED_PROMISE_S * SCALE)
        assert unresolved(gw) == []
        faults = [inject(gw, {"deployment": d, "kind": "error", "status": 500, "rate": 1.0}) for d in DEPLOYMENTS[OPENAI_MODEL]]
        fault_at = time.monotonic()
        incident = wait_for(lambda: unresolved(gw), MAJOR_PROMISE_S * SCALE + 5, "a public incident", step=0.02)[0]
        opened = time.monotonic() - fault_at
        assert incident["impact"] == "critical", incident
        assert opened >= MAJOR_OPEN_S * SCALE * 0.9, f"opened after {opened:.2f} s, before the major-outage delay"
        assert opened <= MAJOR_PROMISE_S * SCALE + SLACK_S, f"opened after {opened:.2f} s"

        for fault in faults:
            clear(gw, fault)
        recovered_at = time.monotonic()
        wait_for(lambda: not unresolved(gw), RESOLVE_PROMISE_S * SCALE + 10, "the incident to resolve", step=0.02)
        resolved = time.monotonic() - recovered_at
    finally:
        traffic.stop()
    assert resolved >= MONITOR_PLUS_RESOLVE_S * SCALE * 0.9, f"resolved after {resolved:.2f} s, before monitoring and quiet"
    assert resolved <= RESOLVE_PROMISE_S * SCALE + SLACK_S, f"resolved after {resolved:.2f} s"
    history = get(gw, "/api/v2/incidents.json")["incidents"]
    assert [i["id"] for i in history] == [incident["id"]], "one event, one incident"
    statuses = [u["status"] for u in history[0]["incident_updates"]]
    assert statuses[:2] == ["resolved", "monitoring"], statuses
    with capsys.disabled():
        print(f"\n[status timing] major outage -> public incident: {opened:.2f} s (at the defaults {opened / SCALE:.0f} s); "
              f"recovery -> resolved: {resolved:.2f} s (at the defaults {resolved / SCALE:.0f} s); time_scale {SCALE}")


def test_a_degradation_opens_later_than_a_major_outage(
    gateway_factory: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # Slow answers, not failures: the only setting changed besides the scale is what counts as slow.
    gw = gateway_factory.start("status-timing-slow", extra_config=f"status: {{time_scale: {SCALE}, latency_threshold_ms: 250}}\n")
    traffic = [Traffic(gw.url, OPENAI_MODEL) for _ in range(6)]
    try:
        time.sleep(DEGRADED_PROMISE_S * SCALE)
        assert unresolved(gw) == []
        for deployment in DEPLOYMENTS[OPENAI_MODEL]:
            inject(gw, {"deployment": deployment, "kind": "latency", "latency_ms": 500, "rate": 1.0})
        fault_at = time.monotonic()
        incident = wait_for(lambda: unresolved(gw), DEGRADED_PROMISE_S * SCALE + 5, "a public incident", step=0.02)[0]
        opened = time.monotonic() - fault_at
    finally:
        for t in traffic:
            t.stop()
        gw.stop()
    assert incident["impact"] == "minor", incident
    assert opened >= DEGRADED_OPEN_S * SCALE * 0.9, f"opened after {opened:.2f} s, before the degradation delay"
    assert opened > MAJOR_PROMISE_S * SCALE, "a degradation waits longer than a major outage"
    # The first slow answer arrives 0.5 s after the fault: the window cannot see it sooner.
    assert opened <= DEGRADED_PROMISE_S * SCALE + 0.5 + SLACK_S, f"opened after {opened:.2f} s"
    with capsys.disabled():
        print(f"\n[status timing] degradation -> public incident: {opened:.2f} s (at the defaults {(opened - 0.5) / SCALE:.0f} s "
              f"after the first slow answer); time_scale {SCALE}")


def test_a_fault_failover_hides_opens_nothing_at_the_default_timings(scaled_gateway: LifelineProcess) -> None:
    gw = scaled_gateway
    inject(gw, {"deployment": DEPLOYMENTS[OPENAI_MODEL][0], "kind": "error", "status": 500, "rate": 1.0})
    traffic = Traffic(gw.url, OPENAI_MODEL)
    try:
        time.sleep((DEGRADED_PROMISE_S + 30) * SCALE + 1)
    finally:
        traffic.stop()
    assert traffic.statuses and set(traffic.statuses) == {200}, "failover hides the fault from clients"
    assert get(gw, "/api/v2/incidents.json")["incidents"] == []
    assert {c["status"] for c in get(gw, "/api/v2/components.json")["components"]} == {"operational"}
