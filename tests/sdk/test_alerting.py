"""SLO burn-rate alerting end to end: an outage of both deployments of a model (drill faults)
pages within seconds (windows scaled down), a real local HTTP receiver gets the Slack, JSON and
Alertmanager notifications, and when the faults are cleared the alert resolves and each
resolved notification arrives once."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

import openai
import pytest

from conftest import ADMIN_TOKEN, OPENAI_MODEL, GatewayFactory, LifelineProcess, Receiver, httpx, openai_client, user

PAGE = f"{OPENAI_MODEL}:availability:burn-1h"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
# One hour lasts 5 s, five minutes 0.42 s; buckets are 1/12 s.
WINDOW_SCALE = 1 / 720


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def alerting_config(receiver_url: str) -> str:
    return (
        "slos:\n"
        f"  - model: {OPENAI_MODEL}\n"
        "    availability: {target: 0.999, period_days: 30}\n"
        f"alerting: {{window_scale: {WINDOW_SCALE}, evaluation_interval_s: 0.2}}\n"
        "routing: {backoff: {base_ms: 0, max_ms: 0}}\n"
        "notifications:\n"
        "  allow_private_targets: true\n"  # the receiver listens on loopback
        "  max_attempts: 3\n"
        "  backoff: {base_ms: 10, max_ms: 100}\n"
        "  webhooks:\n"
        f'    - {{name: ops-slack, format: slack, url: "{receiver_url}/slack"}}\n'
        f'    - {{name: ops-json, format: json, url: "{receiver_url}/json"}}\n'
        f'    - {{name: ops-alertmanager, format: alertmanager, url: "{receiver_url}/am"}}\n'
    )


def is_page(path: str, body: Any, state: str) -> bool:
    """Whether a received post is the 1 h page of our SLO in `state` (firing or resolved)."""
    if path == "/json":
        return body.get("alert") == PAGE and body.get("state") == state
    if path == "/slack":
        return body.get("text", "").startswith(f"[{state.upper()}] page") and "(1h/5m)" in body.get("text", "")
    if path == "/am/api/v2/alerts":
        alert = body[0]
        return (
            alert["labels"].get("slo") == f"{OPENAI_MODEL}:availability"
            and alert["labels"].get("long_window") == "1h"
            and (alert["annotations"]["summary"].startswith(f"[{state.upper()}]"))
        )
    return False


def wait_until(predicate: Callable[[], bool], timeout: float, step: Callable[[], None] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if step:
            step()
        else:
            time.sleep(0.1)
    return predicate()


def alerts(gw: LifelineProcess) -> dict[str, Any]:
    r = httpx.get(gw.url + "/admin/v1/alerts", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def firing_names(gw: LifelineProcess) -> list[str]:
    return [a["alert"] for a in alerts(gw)["firing"]]


def test_an_outage_pages_notifies_every_format_and_resolves_once(
    gateway_factory: GatewayFactory, receiver: Receiver
) -> None:
    gw = gateway_factory.start("alerting-gateway", extra_config=alerting_config(receiver.url))
    client = openai_client(gw.url)
    try:
        # The alerts API needs the admin token.
        assert httpx.get(gw.url + "/admin/v1/alerts", timeout=10).status_code == 401
        assert alerts(gw)["window_scale"] == pytest.approx(WINDOW_SCALE)

        fault_ids = []
        for deployment in ("oa-1", "oa-2"):
            r = httpx.post(gw.url + "/admin/v1/faults", headers=ADMIN, timeout=10, json={
                "deployment": deployment, "kind": "error", "status": 500, "rate": 1.0, "duration_s": 30})
            assert r.status_code == 201, r.text
            fault_ids.append(r.json()["id"])

        failures = 0

        def failing_request() -> None:
            nonlocal failures
            with pytest.raises(openai.APIStatusError) as error:
                client.chat.completions.create(model=OPENAI_MODEL, messages=user("are you there?"))
            assert error.value.status_code == 503
            failures += 1

        assert wait_until(lambda: PAGE in firing_names(gw), timeout=15, step=failing_request), alerts(gw)
        assert failures > 0
        page = next(a for a in alerts(gw)["firing"] if a["alert"] == PAGE)
        assert page["severity"] == "page"
        assert page["state"] == "firing"
        assert page["slo"] == f"{OPENAI_MODEL}:availability"
        assert page["burn_rates"]["1h"] >= 14.4 and page["burn_rates"]["5m"] >= 14.4
        assert page["since"].endswith("Z") and page["until"] is None
        slo = next(s for s in alerts(gw)["slos"] if s["slo"] == f"{OPENAI_MODEL}:availability")
        assert slo["target"] == 0.999 and slo["burn_rates"]["1h"] > 14.4

        # Each format reached the receiver with the firing page.
        for path in ("/slack", "/json", "/am/api/v2/alerts"):
            assert wait_until(lambda: receiver.matching(lambda p, b: p == path and is_page(p, b, "firing")), 10), (
                path, receiver.posts)
        slack = receiver.matching(lambda p, b: p == "/slack" and is_page(p, b, "firing"))[0][1]
        assert isinstance(slack["text"], str) and slack["blocks"][0]["type"] == "header"
        generic = receiver.matching(lambda p, b: p == "/json" and is_page(p, b, "firing"))[0][1]
        assert generic["severity"] == "page" and generic["slo"] == f"{OPENAI_MODEL}:availability"
        assert generic["burn_rates"]["1h"] >= 14.4 and generic["started_at"] and generic["resolved_at"] is None
        assert generic["summary"]
        am = receiver.matching(lambda p, b: p == "/am/api/v2/alerts" and is_page(p, b, "firing"))[0][1][0]
        assert am["labels"]["alertname"] == "LifelineAvailabilityBudgetBurn"
        assert am["labels"]["severity"] == "page"
        assert am["startsAt"] < am["endsAt"]
        assert am["generatorURL"].endswith("/admin/v1/alerts")
        assert am["annotations"]["description"]

        # Recovery: clear the faults, users get answers again, the page resolves.
        for fault_id in fault_ids:
            assert httpx.delete(gw.url + f"/admin/v1/faults/{fault_id}", headers=ADMIN, timeout=10).status_code == 200

        def good_request() -> None:
            r = client.chat.completions.create(model=OPENAI_MODEL, messages=user("back?"))
            assert r.choices[0].message.content
            time.sleep(0.05)

        assert wait_until(lambda: PAGE not in firing_names(gw), timeout=25, step=good_request), alerts(gw)
        resolved = next(a for a in alerts(gw)["resolved"] if a["alert"] == PAGE)
        assert resolved["state"] == "resolved"
        assert resolved["since"] < resolved["until"]

        for path in ("/slack", "/json", "/am/api/v2/alerts"):
            assert wait_until(lambda: receiver.matching(lambda p, b: p == path and is_page(p, b, "resolved")), 10), (
                path, receiver.posts)
        time.sleep(1.0)  # a duplicate, if there were one, would have arrived by now
        for path in ("/slack", "/json", "/am/api/v2/alerts"):
            assert len(receiver.matching(lambda p, b: p == path and is_page(p, b, "firing"))) == 1, path
            assert len(receiver.matching(lambda p, b: p == path and is_page(p, b, "resolved"))) == 1, path
        generic_resolved = receiver.matching(lambda p, b: p == "/json" and is_page(p, b, "resolved"))[0][1]
        assert generic_resolved["resolved_at"] and generic_resolved["started_at"] == generic["started_at"]
        am_resolved = receiver.matching(lambda p, b: p == "/am/api/v2/alerts" and is_page(p, b, "resolved"))[0][1][0]
        assert am_resolved["startsAt"] == am["startsAt"] and am_resolved["endsAt"] < am["endsAt"]

        # The delivery log shows each of them, delivered.
        log = httpx.get(gw.url + "/admin/v1/notifications", headers=ADMIN, timeout=10).json()["data"]
        ours = [d for d in log if d["alert"] == PAGE]
        assert sorted((d["target"], d["transition"]) for d in ours) == sorted(
            (t, s) for t in ("ops-slack", "ops-json", "ops-alertmanager") for s in ("firing", "resolved"))
        assert all(d["status"] == "delivered" and d["attempts"] >= 1 for d in ours)
        assert not any(receiver.url in json.dumps(d) for d in log), "delivery log must not show webhook URLs"
    finally:
        gw.stop()
