"""The console's concurrency-limit and load-shedding panels in a real browser, against /metrics:
limits and in-flight counts while streams are held open, requests shed by priority, and the
arithmetic behind both panels on hand-worked scrapes."""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import DESKTOP, LifelineProcess, MODEL, PHONE, Stack, page_at, serious_violations
from test_console import sign_in, wait_for_poll
from test_console_keys_alerts import no_horizontal_scroll, panel_screenshot

GATEWAY_LIMIT = 2
DEPLOYMENT_LIMIT = 5
# Fixed limits (min = max) so the numbers are known; no queue, so a request over the limit is shed at once.
CAPACITY = f"""\
admission:
  concurrency: {{initial: {GATEWAY_LIMIT}, min: {GATEWAY_LIMIT}, max: {GATEWAY_LIMIT}}}
  deployment_concurrency: {{initial: {DEPLOYMENT_LIMIT}, min: {DEPLOYMENT_LIMIT}, max: {DEPLOYMENT_LIMIT}}}
  queue: {{max_length: 0}}
"""
HOLD_TTFT_MS = 7000


@pytest.fixture(scope="module")
def capacity_gateway(stack: Stack) -> Iterator[LifelineProcess]:
    gateway = stack.start_gateway("capacity-gateway", extra_config=CAPACITY)
    yield gateway
    gateway.stop()


def metric(base: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples with these labels in a live scrape of /metrics (0 when there are none yet)."""
    text = httpx.get(base + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def hold_streams(base: str, count: int) -> tuple[list[threading.Thread], list[int]]:
    """`count` streamed requests that stay open while the simulators wait before the first token."""
    statuses: list[int] = []

    def one() -> None:
        with httpx.Client(timeout=30) as client:
            with client.stream("POST", base + "/v1/chat/completions",
                               json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hold on"}]}) as r:
                statuses.append(r.status_code)
                for _ in r.iter_bytes():
                    pass

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, statuses


def wait_in_flight(base: str, count: int) -> None:
    deadline = time.monotonic() + 5
    while metric(base, "lifeline_in_flight_requests") < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(base, "lifeline_in_flight_requests") == count


def shed_one(base: str, priority: str) -> httpx.Response:
    return httpx.post(base + "/v1/chat/completions", timeout=10, headers={"x-lifeline-priority": priority},
                      json={"model": MODEL, "messages": [{"role": "user", "content": "one more"}]})


def test_limits_and_in_flight_requests_match_metrics_while_streams_are_held(page: Page, stack: Stack,
                                                                          capacity_gateway: LifelineProcess) -> None:
    base = capacity_gateway.url
    sign_in(page, base)
    wait_for_poll(page)
    limits = page.locator("#panel-limits")
    expect(limits.locator("[data-stat='gateway-limit'] .stat-value")).to_have_text(str(GATEWAY_LIMIT))
    expect(limits.locator("[data-stat='gateway-in-flight'] .stat-value")).to_have_text("0")
    expect(limits.locator("[data-stat='gateway-queued'] .stat-value")).to_have_text("0")
    for name in ("sim-a", "sim-b", "sim-c"):
        row = limits.locator(f"tr[data-limit-deployment='{name}']")
        expect(row.locator("[data-cell='limit']")).to_have_text(str(DEPLOYMENT_LIMIT))
        expect(row.locator("[data-cell='in-flight']")).to_have_text("0")
        assert metric(base, "lifeline_concurrency_limit", scope=name) == DEPLOYMENT_LIMIT
    assert metric(base, "lifeline_concurrency_limit", scope="gateway") == GATEWAY_LIMIT

    stack.set_knobs(ttft_ms=HOLD_TTFT_MS)
    threads, statuses = hold_streams(base, GATEWAY_LIMIT)
    try:
        wait_in_flight(base, GATEWAY_LIMIT)
        expect(limits.locator("[data-stat='gateway-in-flight'] .stat-value")).to_have_text(str(GATEWAY_LIMIT), timeout=5000)
        # The preferred deployment (priority 1) holds both attempts; the panel says what /metrics says.
        for name in ("sim-a", "sim-b", "sim-c"):
            expected = metric(base, "lifeline_deployment_in_flight_requests", deployment=name)
            expect(limits.locator(f"tr[data-limit-deployment='{name}'] [data-cell='in-flight']")).to_have_text(f"{expected:.0f}")
        assert metric(base, "lifeline_deployment_in_flight_requests", deployment="sim-a") == GATEWAY_LIMIT
        expect(limits.locator("tr[data-limit-deployment='sim-a']")).to_contain_text("40 %")  # 2 of 5
    finally:
        stack.set_knobs(ttft_ms=0)
        for thread in threads:
            thread.join(timeout=20)
    assert statuses == [200] * GATEWAY_LIMIT
    expect(limits.locator("[data-stat='gateway-in-flight'] .stat-value")).to_have_text("0", timeout=5000)
    expect(limits.locator("tr[data-limit-deployment='sim-a'] [data-cell='in-flight']")).to_have_text("0")


def test_requests_shed_by_priority_show_as_metrics_count_them(page: Page, stack: Stack, capacity_gateway: LifelineProcess) -> None:
    base = capacity_gateway.url
    before = {p: metric(base, "lifeline_shed_total", priority=p, reason="queue_full") for p in ("critical", "high", "normal", "low")}
    sign_in(page, base)
    wait_for_poll(page)
    shedding = page.locator("#panel-shedding")
    for priority in ("critical", "high", "normal", "low"):
        expect(shedding.locator(f"tr[data-priority='{priority}'] [data-cell='total']")).to_have_text(f"{before[priority]:.0f}")

    stack.set_knobs(ttft_ms=HOLD_TTFT_MS)
    threads, _ = hold_streams(base, GATEWAY_LIMIT)
    try:
        wait_in_flight(base, GATEWAY_LIMIT)
        # Every slot is taken and nothing may queue: each of these is refused with 503 and Retry-After.
        for priority in ("low", "low", "low", "normal", "normal"):
            r = shed_one(base, priority)
            assert r.status_code == 503 and r.headers.get("retry-after"), (r.status_code, r.text)
        # Some poll measures them as a rate (per second over the 2 s between scrapes).
        expect(shedding.locator("[data-stat='shed-rate'] .stat-value")).to_have_text(re.compile(r"^(?!0\.00 )\d+\.\d+ /s$"), timeout=6000)
        expect(shedding.locator("tr[data-priority='low'] [data-cell='rate']")).to_have_text(re.compile(r"^(?!0\.00 )\d+\.\d+ /s$"), timeout=6000)
    finally:
        stack.set_knobs(ttft_ms=0)
        for thread in threads:
            thread.join(timeout=20)

    after = {p: metric(base, "lifeline_shed_total", priority=p, reason="queue_full") for p in ("critical", "high", "normal", "low")}
    assert after["low"] - before["low"] == 3 and after["normal"] - before["normal"] == 2
    assert after["critical"] == before["critical"] and after["high"] == before["high"]
    for priority, count in after.items():
        row = shedding.locator(f"tr[data-priority='{priority}']")
        expect(row.locator("[data-cell='total']")).to_have_text(f"{count:.0f}", timeout=5000)
        expect(row.locator("[data-cell='queue_full']")).to_have_text(f"{count:.0f}")
        expect(row.locator("[data-cell='queue_timeout']")).to_have_text(
            f"{metric(base, 'lifeline_shed_total', priority=priority, reason='queue_timeout'):.0f}")
    expect(shedding.locator("[data-stat='shed-total'] .stat-value")).to_have_text(f"{metric(base, 'lifeline_shed_total'):.0f}")
    expect(shedding.locator("[data-stat='shed-rate'] .stat-value")).to_have_text("0.00 /s", timeout=6000)


def shed_until(base: str, stop: threading.Event) -> None:
    """Requests over the limit, one every 0.4 s, while the held streams last or until stopped."""
    priorities = ("low", "normal", "low")
    sent = 0
    while not stop.is_set() and metric(base, "lifeline_in_flight_requests") >= GATEWAY_LIMIT:
        shed_one(base, priorities[sent % len(priorities)])
        sent += 1
        stop.wait(0.4)


def keep_busy(base: str, seconds: float) -> None:
    """Waves of held streams with requests shed beside them, so the panels' lines have a history."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        threads, _ = hold_streams(base, GATEWAY_LIMIT)
        wait_in_flight(base, GATEWAY_LIMIT)
        stop = threading.Event()
        shedder = threading.Thread(target=shed_until, args=(base, stop), daemon=True)
        shedder.start()
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for thread in [*threads, shedder]:
            thread.join(timeout=20)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_limit_and_shedding_panels_are_accessible_and_fit_the_screen(browser: Browser, stack: Stack, capacity_gateway: LifelineProcess,
                                                                    viewport: dict) -> None:
    base = capacity_gateway.url
    phone = viewport is PHONE
    threads: list[threading.Thread] = []
    stop = threading.Event()
    with page_at(browser, viewport) as page:
        try:
            sign_in(page, base)
            wait_for_poll(page)
            stack.set_knobs(ttft_ms=HOLD_TTFT_MS)
            # LIFELINE_SCREENSHOT_TRAFFIC_S (e.g. 40) gives the lines a history first, for docs/screenshots.
            keep_busy(base, float(os.environ.get("LIFELINE_SCREENSHOT_TRAFFIC_S", "0")))
            threads, _ = hold_streams(base, GATEWAY_LIMIT)
            wait_in_flight(base, GATEWAY_LIMIT)
            shedder = threading.Thread(target=shed_until, args=(base, stop), daemon=True)
            shedder.start()
            threads.append(shedder)
            expect(page.locator("[data-stat='gateway-in-flight'] .stat-value")).to_have_text(str(GATEWAY_LIMIT), timeout=5000)
            expect(page.locator("[data-stat='shed-rate'] .stat-value")).to_have_text(re.compile(r"^(?!0\.00 )\d+\.\d+ /s$"), timeout=6000)
            no_horizontal_scroll(page)
            assert serious_violations(page) == []
            name = "phone" if phone else "desktop"
            panel_screenshot(page.locator("#panel-limits"), f"console-limits-{name}")
            panel_screenshot(page.locator("#panel-shedding"), f"console-shedding-{name}")
            if not phone:
                panel_screenshot(page.locator(".panel-pair"), "console-capacity-desktop")
        finally:
            stop.set()
            stack.set_knobs(ttft_ms=0)
            for thread in threads:
                thread.join(timeout=20)


def test_limit_and_shedding_numbers_follow_the_scrapes(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/console")
    numbers = page.evaluate("""async () => {
        const m = await import('/assets/metrics.js');
        const scrape = (lines) => m.parsePrometheus(lines.join('\\n'));
        const gauges = scrape([
            '# TYPE lifeline_concurrency_limit gauge',
            'lifeline_concurrency_limit{scope="gateway"} 48.0',
            'lifeline_concurrency_limit{scope="sim-b"} 9',
            'lifeline_concurrency_limit{scope="sim-a"} 12',
            'lifeline_in_flight_requests 7',
            'lifeline_admission_queue_length 3',
            'lifeline_deployment_in_flight_requests{deployment="sim-a"} 5',
            'lifeline_deployment_in_flight_requests{deployment="sim-b"} 2',
        ]);
        const before = scrape([
            'lifeline_shed_total{reason="queue_full",priority="low"} 10',
            'lifeline_shed_total{reason="queue_timeout",priority="low"} 2',
            'lifeline_shed_total{reason="queue_full",priority="normal"} 1',
        ]);
        const after = scrape([
            'lifeline_shed_total{reason="queue_full",priority="low"} 16',
            'lifeline_shed_total{reason="queue_timeout",priority="low"} 4',
            'lifeline_shed_total{reason="queue_full",priority="normal"} 1',
            'lifeline_shed_total{reason="queue_timeout",priority="high"} 2',
        ]);
        const restarted = scrape(['lifeline_shed_total{reason="queue_full",priority="low"} 3']);
        return { limits: m.limitsIn(gauges), none: m.limitsIn(scrape(['lifeline_requests_total 1'])),
                 shed: m.sheddingBetween(before, after, 2), first: m.sheddingBetween(null, after, 0),
                 reset: m.sheddingBetween(after, restarted, 2) };
    }""")
    assert numbers["limits"] == {
        "gateway": {"limit": 48, "inFlight": 7, "queued": 3},
        "deployments": [{"name": "sim-a", "limit": 12, "inFlight": 5}, {"name": "sim-b", "limit": 9, "inFlight": 2}],
    }
    assert numbers["none"] == {"gateway": {"limit": None, "inFlight": None, "queued": None}, "deployments": []}
    shed = numbers["shed"]
    assert shed["total"] == 23 and shed["perSecond"] == 5  # (6 + 2 + 0 + 2) shed in 2 s
    rows = {row["priority"]: row for row in shed["byPriority"]}
    assert [row["priority"] for row in shed["byPriority"]] == ["critical", "high", "normal", "low"]
    assert rows["low"] == {"priority": "low", "total": 20, "byReason": {"queue_full": 16, "queue_timeout": 4}, "perSecond": 4}
    assert rows["high"]["total"] == 2 and rows["high"]["perSecond"] == 1  # a new series counts from zero
    assert rows["normal"]["perSecond"] == 0 and rows["critical"] == {
        "priority": "critical", "total": 0, "byReason": {"queue_full": 0, "queue_timeout": 0}, "perSecond": 0}
    assert numbers["first"]["perSecond"] is None and numbers["first"]["total"] == 23  # one scrape: counts, no rate
    assert numbers["reset"]["perSecond"] == 1.5  # a restarted server counts from zero: 3 in 2 s
