"""The /metrics scrape of a running gateway after real traffic: names from the design, and a
clean bill from `promtool check metrics` (Prometheus' own linter)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ANTHROPIC_MODEL, OPENAI_MODEL, LifelineProcess, httpx, user

REQUIRED = (
    "lifeline_requests_total",
    "lifeline_request_duration_seconds",
    "lifeline_time_to_first_token_seconds",
    "lifeline_upstream_requests_total",
    "lifeline_circuit_state",
    "lifeline_tokens_total",
    "lifeline_slo_burn_rate",
    "lifeline_slo_objective",
    "lifeline_slo_error_budget_remaining",
    "lifeline_alerts_firing",
    "lifeline_deployment_info",
    "lifeline_build_info",
)


def scrape_after_traffic(gw: LifelineProcess) -> str:
    with httpx.Client(timeout=30) as c:
        assert c.post(gw.url + "/v1/chat/completions", json={"model": OPENAI_MODEL, "messages": user()}).status_code == 200
        with c.stream("POST", gw.url + "/v1/messages", json={
            "model": ANTHROPIC_MODEL, "max_tokens": 40, "stream": True, "messages": user()}) as s:
            s.read()
        assert c.post(gw.url + "/v1/chat/completions", json={"model": "missing", "messages": user()}).status_code == 404
        assert c.post(gw.url + "/v1/embeddings", json={"model": OPENAI_MODEL, "input": "hello"}).status_code == 200
        r = c.get(gw.url + "/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        return r.text


def test_metrics_scrape_passes_promtool_and_has_the_design_names(gateway: LifelineProcess) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (apt-get install prometheus)")
    text = scrape_after_traffic(gateway)
    for name in REQUIRED:
        assert f"\n{name}" in "\n" + text, f"{name} missing from /metrics"
    assert 'lifeline_time_to_first_token_seconds_bucket{model="chat-openai",le="2.0"}' in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"promtool check metrics:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr
