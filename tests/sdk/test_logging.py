"""Structured logs: one JSON object per line with `--log-format json`, and no secret in any
log output, whatever happens (failures, refused admin calls, reloads good and bad)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    ADMIN_TOKEN,
    OPENAI_MODEL,
    ANTHROPIC_MODEL,
    GatewayFactory,
    LifelineProcess,
    _process_env,
    httpx,
    user,
)

UPSTREAM_SECRET = "upstream-key-7f3a9c2e51d84b6f"
ADMIN_SECRET = "admin-token-c81d4e0b2a6f97d3"


def log_text(p: LifelineProcess) -> str:
    assert p.log_path is not None
    return p.log_path.read_text(errors="replace")


def json_lines(p: LifelineProcess) -> list[dict[str, Any]]:
    lines = [line for line in log_text(p).splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"log line is not JSON: {line!r}")
    return parsed


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)


def test_json_log_has_one_line_per_request_with_its_fields(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory.start("json-log-gateway", args=("--log-format", "json"))
    try:
        with httpx.Client(timeout=30) as c:
            ok = c.post(gw.url + "/v1/chat/completions", headers={"x-request-id": "req-json-1"},
                        json={"model": OPENAI_MODEL, "messages": user("hello there")})
            assert ok.status_code == 200, ok.text
            with c.stream("POST", gw.url + "/v1/messages", headers={"x-request-id": "req-json-2"},
                          json={"model": ANTHROPIC_MODEL, "max_tokens": 50, "stream": True,
                                "messages": user("stream please")}) as s:
                assert s.status_code == 200
                s.read()
            missing = c.post(gw.url + "/v1/chat/completions", headers={"x-request-id": "req-json-3"},
                             json={"model": "no-such-model", "messages": user()})
            assert missing.status_code == 404
        wait_for(lambda: log_text(gw).count('"message":"request"') >= 3)
    finally:
        gw.stop()

    lines = json_lines(gw)
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    requests = {line.get("request_id"): line for line in lines if line["message"] == "request"}
    assert {"req-json-1", "req-json-2", "req-json-3"} <= set(requests), requests

    plain = requests["req-json-1"]
    assert plain["route"] == "chat_completions"
    assert plain["model"] == OPENAI_MODEL
    assert plain["deployment"] == "oa-1"
    assert plain["status"] == 200
    assert plain["attempts"] == 1
    assert plain["resumptions"] == 0
    assert plain["stream"] is False
    assert isinstance(plain["latency_ms"], (int, float)) and plain["latency_ms"] >= 0
    assert isinstance(plain["prompt_tokens"], int) and plain["prompt_tokens"] > 0
    assert isinstance(plain["completion_tokens"], int) and plain["completion_tokens"] > 0
    assert plain["level"] == "info"

    streamed = requests["req-json-2"]
    assert streamed["route"] == "messages"
    assert streamed["stream"] is True
    assert 0 <= streamed["ttft_ms"] <= streamed["latency_ms"]
    assert streamed["completion_tokens"] > 0

    refused = requests["req-json-3"]
    assert refused["status"] == 404
    assert refused["attempts"] == 0
    assert "deployment" not in refused


def secret_config(sim_a_port: int, sim_b_port: int) -> str:
    return (
        "server: {host: 127.0.0.1, port: 0}\n"
        'admin: {token: "${LL_TEST_ADMIN_SECRET}"}\n'
        "models:\n"
        f"  - name: {OPENAI_MODEL}\n"
        "    deployments:\n"
        f'      - {{name: oa-1, protocol: openai, base_url: "http://127.0.0.1:{sim_a_port}/v1", '
        'api_key: "${LL_TEST_UPSTREAM_SECRET}", model: sim-model, priority: 1}\n'
        f'      - {{name: oa-2, protocol: openai, base_url: "http://127.0.0.1:{sim_b_port}/v1", '
        'api_key: "${LL_TEST_UPSTREAM_SECRET}", model: sim-model, priority: 2}\n'
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_never_appear_in_any_log_output(gateway_factory: GatewayFactory, log_format: str) -> None:
    config = secret_config(gateway_factory.sim_a.port, gateway_factory.sim_b.port)
    gw = gateway_factory.start(
        f"secret-log-{log_format}", config_text=config,
        args=("--log-format", log_format, "--log-level", "trace"),
        env={"LL_TEST_UPSTREAM_SECRET": UPSTREAM_SECRET, "LL_TEST_ADMIN_SECRET": ADMIN_SECRET},
    )
    admin = {"authorization": f"Bearer {ADMIN_SECRET}"}
    try:
        with httpx.Client(timeout=30) as c:
            assert c.post(gw.url + "/v1/chat/completions", json={"model": OPENAI_MODEL, "messages": user()}).status_code == 200
            with c.stream("POST", gw.url + "/v1/chat/completions",
                          json={"model": OPENAI_MODEL, "stream": True, "messages": user()}) as s:
                s.read()
            # Failures of every kind: bad JSON, unknown model, wrong admin token, upstream errors.
            assert c.post(gw.url + "/v1/chat/completions", content=b"{nope").status_code == 400
            assert c.post(gw.url + "/v1/chat/completions", json={"model": "missing", "messages": user()}).status_code == 404
            assert c.get(gw.url + "/admin/v1/faults", headers={"authorization": f"Bearer {UPSTREAM_SECRET}"}).status_code == 401
            for deployment in ("oa-1", "oa-2"):
                r = c.post(gw.url + "/admin/v1/faults", headers=admin,
                           json={"deployment": deployment, "kind": "error", "status": 500, "rate": 1.0, "duration_s": 30})
                assert r.status_code == 201, r.text
            failed = c.post(gw.url + "/v1/chat/completions", json={"model": OPENAI_MODEL, "messages": user()})
            assert failed.status_code == 503
            assert c.delete(gw.url + "/admin/v1/faults", headers=admin).status_code == 200
            # A good reload, then a bad one that is refused with its errors.
            assert c.post(gw.url + "/admin/v1/config/reload", headers=admin).status_code == 200
            config_path = gw.workdir / "lifeline.yaml"
            config_path.write_text(config + "  - name: broken\n    deployments: []\n")
            assert c.post(gw.url + "/admin/v1/config/reload", headers=admin).status_code == 400
        wait_for(lambda: "reload refused" in log_text(gw))
    finally:
        gw.stop()

    output = log_text(gw)
    assert "configuration reloaded" in output and "reload refused" in output, output[-2000:]
    assert output.count("request") >= 5
    assert UPSTREAM_SECRET not in output
    assert ADMIN_SECRET not in output
    if log_format == "json":
        json_lines(gw)


def test_a_clean_sigterm_logs_no_error_line(lifeline_path: Path, tmp_path: Path) -> None:
    """The zero config (two simulated upstreams run in-process) through traffic and a SIGTERM:
    it exits 0 and nothing is logged at error level or above (the simulators' servers used to
    be cancelled and log "Waiting on child channel: CancellationError()" each)."""
    workdir = tmp_path / "sigterm"
    workdir.mkdir()
    p = LifelineProcess(
        name="sigterm-zero-config",
        args_for_port=lambda port: [str(lifeline_path), "serve", "--port", str(port), "--log-format", "json"],
        workdir=workdir,
        env=_process_env(),
    )
    p.start()
    try:
        with httpx.Client(timeout=30) as c:
            for api in ("/v1/chat/completions", "/v1/messages"):
                with c.stream("POST", p.url + api, json={"model": "chat-default", "max_tokens": 50, "stream": True,
                                                          "messages": user("hello before shutdown")}) as s:
                    assert s.status_code == 200
                    s.read()
        assert p.proc is not None
        p.proc.send_signal(signal.SIGTERM)
        assert p.proc.wait(timeout=30) == 0
    finally:
        p.stop()
    lines = json_lines(p)
    assert any(line["message"] == "lifeline is ready" for line in lines)
    errors = [line for line in lines if line["level"] in ("error", "critical")]
    assert errors == [], errors


def test_a_stream_the_retry_budget_refuses_to_resume_is_logged_with_that_reason(
    gateway_factory: GatewayFactory, sim_a_control, sim_b_control
) -> None:
    """Both deployments cut every stream after 5 tokens and the retry budget is empty: the cut on
    oa-1 resumes free on oa-2 (healthy, with room), the cut there needs the budget, which refuses.
    The client gets the `stream_interrupted` error event; the log says why, naming the budget."""
    gw = gateway_factory.start(
        "interrupted-log-gateway", args=("--log-format", "json"),
        extra_config="routing: {retry_budget: {ratio: 0, min_per_second: 0}, backoff: {base_ms: 0, max_ms: 0}}\n")
    try:
        sim_a_control.set(disconnect_after_tokens=5)
        sim_b_control.set(disconnect_after_tokens=5)
        with httpx.Client(timeout=30) as c:
            with c.stream("POST", gw.url + "/v1/chat/completions", headers={"x-request-id": "req-interrupted"},
                          json={"model": OPENAI_MODEL, "max_tokens": 200, "stream": True, "messages": user()}) as s:
                assert s.status_code == 200
                lines = list(s.iter_lines())
            events = [json.loads(line[len("data:"):]) for line in lines
                      if line.startswith("data:") and line[len("data:"):].strip() != "[DONE]"]
            errors = [event for event in events if "error" in event]
            assert [e["error"]["code"] for e in errors] == ["stream_interrupted"], lines
            assert [line for line in lines if line.startswith(": lifeline resumed on oa-2")], lines
            metrics = c.get(gw.url + "/metrics").text
            assert f'lifeline_failovers_total{{model="{OPENAI_MODEL}",phase="mid_stream",outcome="refused"}} 1' in metrics
        wait_for(lambda: '"message":"stream interrupted"' in log_text(gw))
    finally:
        gw.stop()

    interrupted = [line for line in json_lines(gw) if line["message"] == "stream interrupted"]
    assert len(interrupted) == 1, interrupted
    line = interrupted[0]
    assert line["level"] == "warning"
    assert line["reason"] == "the retry budget is spent and no healthy deployment had room", line
    assert line["deployment"] == "oa-2"
    assert str(line["resumptions"]) == "1"
    assert line.get("request_id") == "req-interrupted", line
