"""The operator console in a real browser: sign-in, deployments, drills, traffic, optional panels."""

from __future__ import annotations

import re
import threading
import time

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from conftest import ADMIN_TOKEN, MODEL, Stack, admin

OPTIONAL_PANELS = {
    "incidents": "/incidents",
    "alerts": "/alerts",
    "keys": "/keys",
    "maintenances": "/maintenances",
    "subscribers": "/subscribers",
}


def sign_in(page: Page, base: str, token: str = ADMIN_TOKEN) -> None:
    page.goto(base + "/console")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def wait_for_poll(page: Page) -> None:
    expect(page.locator("#poll-state")).to_contain_text("Updated")


def test_the_console_says_which_instance_answered_whether_it_leads_and_whether_the_store_answers(page: Page, stack: Stack) -> None:
    sign_in(page, stack.url)
    wait_for_poll(page)
    ready = httpx.get(stack.url + "/readyz", timeout=5).json()
    line = page.locator("#instance-state")
    expect(line).to_contain_text(f"Answered by instance {ready['instance']['id']}, which leads")
    expect(line).to_contain_text("The store answers.")


def test_a_wrong_admin_token_is_refused_with_a_clear_message(page: Page, stack: Stack) -> None:
    sign_in(page, stack.url, "not-the-admin-token")
    error = page.locator("#sign-in-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("The server refused this admin token")
    expect(error).to_contain_text("HTTP 401")
    expect(page.locator("#dashboard")).to_be_hidden()
    expect(page.get_by_label("Admin token")).to_be_focused()
    assert page.evaluate("sessionStorage.length") == 0


def test_deployments_can_be_drained_and_drills_injected_and_cleared(page: Page, context: BrowserContext, stack: Stack) -> None:
    sign_in(page, stack.url)
    expect(page.locator("#dashboard")).to_be_visible()
    rows = page.locator("#deployments tr")
    expect(rows).to_have_count(3)
    row = page.locator("#deployments tr[data-deployment='sim-a']")
    expect(row).to_have_attribute("data-state", "healthy")
    expect(row.locator(".state")).to_have_text("healthy")

    row.get_by_role("button", name="Drain sim-a").click()
    expect(row).to_have_attribute("data-state", "draining")
    expect(row.locator(".state")).to_have_text("draining")
    listed = {d["name"]: d for d in admin(stack.url, "GET", "/deployments").json()["data"]}
    assert listed["sim-a"]["drained"] is True
    row.get_by_role("button", name="Undrain sim-a").click()
    expect(row).to_have_attribute("data-state", "healthy")
    assert {d["name"]: d for d in admin(stack.url, "GET", "/deployments").json()["data"]}["sim-a"]["drained"] is False

    page.get_by_label("Deployment", exact=True).select_option("sim-b")
    page.get_by_label("Kind", exact=True).select_option("latency")
    page.get_by_label("Latency (ms)").fill("150")
    page.get_by_label("Duration (s)").fill("30")
    page.get_by_role("button", name="Inject fault").click()
    faults = page.locator("#faults tr[data-fault]")
    expect(faults).to_have_count(1)
    expect(faults.first).to_contain_text("sim-b")
    expect(faults.first).to_contain_text("latency")
    expect(faults.first).to_contain_text("150 ms")
    active = admin(stack.url, "GET", "/faults").json()["data"]
    assert [(f["deployment"], f["kind"], f["latency_ms"], f["duration_s"]) for f in active] == [("sim-b", "latency", 150, 30)]
    expect(page.locator("#deployments tr[data-deployment='sim-b']")).to_have_attribute("data-state", "faulted")

    faults.first.get_by_role("button", name=re.compile("^Clear fault")).click()
    expect(faults).to_have_count(0)
    assert admin(stack.url, "GET", "/faults").json()["data"] == []

    # The token lives in this tab's sessionStorage: a reload stays signed in; no cookie is ever set.
    page.reload()
    expect(page.locator("#dashboard")).to_be_visible()
    assert context.cookies() == []
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#sign-in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_deployment_refusing_credentials_shows_its_problem_and_a_page(page: Page, stack: Stack) -> None:
    gateway = stack.start_gateway("refused-gateway", "alerting: {evaluation_interval_s: 0.2}\n")  # its own breakers and alerts
    try:
        r = admin(gateway.url, "POST", "/faults", {"deployment": "sim-a", "kind": "error", "status": 401, "rate": 1.0, "duration_s": 60})
        assert r.status_code == 201, r.text
        for _ in range(2):
            reply = httpx.post(gateway.url + "/v1/chat/completions", timeout=30,
                               json={"model": MODEL, "messages": [{"role": "user", "content": "credentials"}]})
            assert reply.status_code == 200, reply.text
            assert reply.headers["x-lifeline-deployment"] == "sim-b"

        sign_in(page, gateway.url)
        problem = page.locator("#deployments tr[data-deployment='sim-a'] .deployment-problem")
        expect(problem).to_have_attribute("data-problem", "credentials_rejected")
        expect(problem).to_contain_text("rejected our credentials (HTTP 401")
        expect(page.locator("#deployments tr[data-deployment='sim-b'] .deployment-problem")).to_have_count(0)
        alert = page.locator("[data-alert='deployment:sim-a:credentials_rejected']")
        expect(alert).to_contain_text("check its api_key", timeout=15_000)
        expect(alert).to_contain_text("Deployment sim-a answers HTTP 401: no traffic will fix it.")
    finally:
        gateway.stop()


def _traffic(base: str, stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            with client.stream("POST", base + "/v1/chat/completions",
                               json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "ping"}]}) as r:
                for _ in r.iter_bytes():
                    pass
            time.sleep(0.15)


def test_traffic_shows_request_rate_errors_and_first_token_latency(page: Page, stack: Stack) -> None:
    gateway = stack.start_gateway("traffic-gateway")  # drills here must not eject deployments elsewhere
    stop = threading.Event()
    worker = threading.Thread(target=_traffic, args=(gateway.url, stop), daemon=True)
    try:
        sign_in(page, gateway.url)
        wait_for_poll(page)
        worker.start()
        expect(page.locator("[data-stat='ttft-p50'] .stat-value")).to_have_text(re.compile(r"^\d+ ms$|^\d+\.\d\d s$"), timeout=8000)
        expect(page.locator("[data-stat='ttft-p99'] .stat-value")).to_have_text(re.compile(r"^\d+ ms$|^\d+\.\d\d s$"))
        expect(page.locator("[data-stat='rate'] .stat-value")).to_have_text(re.compile(r"^[1-9]\d*\.\d+ /s$|^0\.[0-9]*[1-9][0-9]* /s$"))
        expect(page.locator("[data-stat='errors'] .stat-value")).to_have_text("0.0 %")
        expect(page.locator("[data-stat='rate'] svg polyline")).to_have_count(1, timeout=6000)

        for deployment in ("sim-a", "sim-b"):
            admin(gateway.url, "POST", "/faults", {"deployment": deployment, "kind": "error", "status": 500, "duration_s": 30})
        expect(page.locator("[data-stat='errors'] .stat-value")).to_have_text("100 %", timeout=8000)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(timeout=10)
        gateway.stop()


def test_optional_panels_appear_only_for_admin_apis_that_exist(page: Page, stack: Stack) -> None:
    sign_in(page, stack.url)
    wait_for_poll(page)
    for panel, path in OPTIONAL_PANELS.items():
        exists = admin(stack.url, "GET", path).status_code == 200
        locator = page.locator(f"#panel-{panel}")
        if exists:
            expect(locator).to_be_visible()
        else:
            expect(locator).to_be_hidden()


def test_server_text_in_the_console_is_shown_as_text(page: Page, stack: Stack) -> None:
    sign_in(page, stack.url)
    wait_for_poll(page)
    # The console escapes by construction; an error message from the API that contains markup
    # shows literally. A fault for an unknown deployment makes the API echo the name back.
    page.evaluate("""() => {
        const select = document.querySelector('#fault-deployment');
        const option = document.createElement('option');
        option.value = '<img src=x onerror="window.__pwned=1">';
        option.textContent = 'injected';
        select.append(option);
        select.value = option.value;
        document.querySelector('#fault-form').requestSubmit();  // at once, before a poll redraws the list
    }""")
    error = page.locator("#fault-error")
    expect(error).to_contain_text('No deployment is named \'<img src=x onerror="window.__pwned=1">\'')
    assert page.locator("#fault-error img").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_traffic_numbers_follow_prometheus_arithmetic(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/console")
    numbers = page.evaluate("""async () => {
        const m = await import('/assets/metrics.js');
        const scrape = (ok, failed, buckets) => m.parsePrometheus([
            '# HELP lifeline_requests_total Client requests.',
            '# TYPE lifeline_requests_total counter',
            `lifeline_requests_total{route="chat_completions",model="a",status="200"} ${ok}`,
            `lifeline_requests_total{route="chat_completions",model="a",status="503"} ${failed}`,
            ...Object.entries(buckets).map(([le, n]) => `lifeline_time_to_first_token_seconds_bucket{model="a",le="${le}"} ${n}`),
        ].join('\\n'));
        const before = scrape(10, 2, { '0.1': 5, '0.5': 8, '+Inf': 8 });
        const after = scrape(40, 12, { '0.1': 15, '0.5': 38, '+Inf': 40 });
        const restarted = scrape(4, 0, { '0.1': 2, '0.5': 2, '+Inf': 2 });
        return { window: m.trafficBetween(before, after, 2), reset: m.trafficBetween(after, restarted, 2),
                 idle: m.trafficBetween(after, after, 2) };
    }""")
    window = numbers["window"]
    assert window["requestsPerSecond"] == 20  # (30 + 10) requests in 2 s
    assert window["errorRatio"] == 0.25  # 10 of the 40 were 5xx
    assert abs(window["ttftP50"] - 0.22) < 1e-9  # rank 16 of 32: 0.1 + 0.4 × (16 − 10) / (30 − 10)
    assert window["ttftP99"] == 0.5  # in the +Inf bucket: the highest finite bound
    assert numbers["reset"]["requestsPerSecond"] == 2  # a restarted server counts from zero
    assert numbers["idle"] == {"requestsPerSecond": 0, "errorRatio": None, "ttftP50": None, "ttftP99": None}
