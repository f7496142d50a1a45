"""Failover, resumed streams and request hygiene, with faults injected into simA.

Fault tests run against a gateway of their own (fresh_gateway) so breaker and
health state from one test cannot decide another; the simulators are reset
before and after every test by an autouse fixture in conftest.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import anthropic
import openai
import pytest

from conftest import (
    ADMIN_TOKEN,
    ANTHROPIC_MODEL,
    DEPLOYMENTS,
    OPENAI_MODEL,
    PROMPT,
    PUBLIC_MODELS,
    anthropic_client,
    anthropic_sse_content,
    anthropic_sse_events,
    openai_client,
    openai_sse_content,
    user,
    wait_for,
)

APIS = ("openai", "anthropic")
CASES = [pytest.param(api, model, id=f"{api}-api-{model}") for api in APIS for model in PUBLIC_MODELS]
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
MAX_TOKENS = 200
ROUTES = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
FINISHED = {"openai": "stop", "anthropic": "end_turn"}


def call_with_headers(base: str, api: str, model: str, stream: bool) -> tuple[str, str | None, Any]:
    """(text, finish or stop reason, response headers) through the SDK of `api`."""
    if api == "openai":
        client = openai_client(base)
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=user(), max_tokens=MAX_TOKENS, stream=stream
        )
        if not stream:
            c = raw.parse()
            return c.choices[0].message.content or "", c.choices[0].finish_reason, raw.headers
        parts, finish = [], None
        with raw.parse() as s:
            for chunk in s:
                for choice in chunk.choices:
                    parts.append(choice.delta.content or "")
                    if choice.finish_reason is not None:
                        assert finish is None, "finish_reason sent twice"
                        finish = choice.finish_reason
        return "".join(parts), finish, raw.headers

    client = anthropic_client(base)
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=MAX_TOKENS, messages=user(), stream=stream
    )
    if not stream:
        m = raw.parse()
        return "".join(b.text for b in m.content if b.type == "text"), m.stop_reason, raw.headers
    parts, stop_reason = [], None
    with raw.parse() as s:
        for ev in s:
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                parts.append(ev.delta.text)
            elif ev.type == "message_delta":
                stop_reason = ev.delta.stop_reason
    return "".join(parts), stop_reason, raw.headers


def sdk_stream_text(base: str, api: str, model: str) -> tuple[str, str | None]:
    """Streamed text through the SDK's own streaming helpers."""
    if api == "openai":
        parts, finish = [], None
        with openai_client(base).chat.completions.create(
            model=model, messages=user(), max_tokens=MAX_TOKENS, stream=True
        ) as s:
            for chunk in s:
                for choice in chunk.choices:
                    parts.append(choice.delta.content or "")
                    if choice.finish_reason is not None:
                        assert finish is None, "finish_reason sent twice"
                        finish = choice.finish_reason
        return "".join(parts), finish
    with anthropic_client(base).messages.stream(model=model, max_tokens=MAX_TOKENS, messages=user()) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert "".join(b.text for b in final.content if b.type == "text") == text
    return text, final.stop_reason


def request_body(api: str, model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "max_tokens": MAX_TOKENS, "messages": user(), "stream": stream}


def stream_lines(http, url: str, body: dict[str, Any]) -> list[str]:
    with http.stream("POST", url, json=body) as r:
        assert r.status_code == 200, r.read().decode(errors="replace")
        assert r.headers.get("content-type", "").startswith("text/event-stream")
        return list(r.iter_lines())


def assert_error_shape(api: str, body: dict[str, Any]) -> dict[str, Any]:
    if api == "openai":
        error = body.get("error")
        assert isinstance(error, dict), f"not the OpenAI error shape: {body}"
        assert {"message", "type", "param", "code"} <= set(error), body
    else:
        assert body.get("type") == "error", f"not the Anthropic error shape: {body}"
        error = body.get("error")
        assert isinstance(error, dict) and isinstance(error.get("type"), str), body
    assert isinstance(error.get("message"), str) and error["message"], body
    return error


# ------------------------------------------- failover before the first byte


@STREAM
@pytest.mark.parametrize("api,model", CASES)
def test_primary_errors_fail_over_to_the_priority_2_deployment(
    fresh_gateway, sim_a_control, api: str, model: str, stream: bool
) -> None:
    primary, secondary = DEPLOYMENTS[model]
    reference, _, headers = call_with_headers(fresh_gateway.url, api, model, stream)
    assert reference
    assert headers.get("x-lifeline-deployment") == primary
    assert headers.get("x-lifeline-attempts") == "1"

    sim_a_control.set(error_rate=1.0, error_status=500)
    text, finish, headers = call_with_headers(fresh_gateway.url, api, model, stream)
    assert headers.get("x-lifeline-deployment") == secondary
    assert headers.get("x-lifeline-attempts") == "2"
    assert text == reference
    assert finish == FINISHED[api]


@pytest.mark.parametrize("api,model", [("openai", OPENAI_MODEL), ("anthropic", ANTHROPIC_MODEL)])
def test_rate_limited_primary_fails_over_to_the_priority_2_deployment(
    fresh_gateway, sim_a_control, api: str, model: str
) -> None:
    sim_a_control.set(rate_limit_rate=1.0, retry_after_s=30)
    text, finish, headers = call_with_headers(fresh_gateway.url, api, model, stream=False)
    assert text
    assert finish == FINISHED[api]
    assert headers.get("x-lifeline-deployment") == DEPLOYMENTS[model][1]
    assert headers.get("x-lifeline-attempts") == "2"


# ------------------------------------------------ failover in mid-stream


@pytest.mark.parametrize("api,model", CASES)
def test_stream_cut_mid_way_is_resumed_with_identical_content(
    gateway, fresh_gateway, sim_a_control, api: str, model: str
) -> None:
    reference, finish = sdk_stream_text(gateway.url, api, model)
    assert len(reference.split()) > 10, f"reference too short to cut after 5 tokens: {reference!r}"
    assert finish == FINISHED[api]

    sim_a_control.set(disconnect_after_tokens=5)
    text, finish = sdk_stream_text(fresh_gateway.url, api, model)
    assert text == reference
    assert finish == FINISHED[api]


@pytest.mark.parametrize("api,model", CASES)
def test_resumed_stream_marks_the_splice_and_ends_once(
    gateway, fresh_gateway, sim_a_control, http, api: str, model: str
) -> None:
    route = ROUTES[api]
    body = request_body(api, model, stream=True)
    reference_lines = stream_lines(http, gateway.url + route, body)
    assert not [l for l in reference_lines if l.startswith(": lifeline resumed")]

    sim_a_control.set(disconnect_after_tokens=5)
    lines = stream_lines(http, fresh_gateway.url + route, body)
    markers = [i for i, l in enumerate(lines) if l.startswith(": lifeline resumed")]
    assert len(markers) == 1, f"expected one splice marker, got {len(markers)}:\n" + "\n".join(lines[:40])
    data_lines = [i for i, l in enumerate(lines) if l.startswith("data:")]
    assert data_lines and data_lines[0] < markers[0] < data_lines[-1], "marker is not between content lines"

    if api == "openai":
        assert openai_sse_content(lines) == openai_sse_content(reference_lines)
        done = [l for l in lines if l.strip() == "data: [DONE]"]
        assert len(done) == 1, f"{len(done)} [DONE] lines"
        assert lines[data_lines[-1]].strip() == "data: [DONE]", "[DONE] is not the last data line"
        finishes = []
        for i in data_lines[:-1]:
            chunk = json.loads(lines[i][len("data:"):])
            finishes += [c["finish_reason"] for c in chunk.get("choices", []) if c.get("finish_reason")]
        assert finishes == ["stop"]
    else:
        assert anthropic_sse_content(lines) == anthropic_sse_content(reference_lines)
        types = [e["type"] for e in anthropic_sse_events(lines) if e.get("type") != "ping"]
        for once in ("message_start", "content_block_start", "content_block_stop", "message_delta", "message_stop"):
            assert types.count(once) == 1, f"{once} appears {types.count(once)} times: {types}"
        assert types[0] == "message_start" and types[-1] == "message_stop", types
        named = [l[len("event:"):].strip() for l in lines if l.startswith("event:")]
        assert named.count("message_stop") == 1


@pytest.mark.parametrize("api,model", [("openai", OPENAI_MODEL)])
def test_a_cut_stream_waits_for_room_on_the_other_deployment_and_resumes_there(
    gateway_factory, sim_a_control, sim_b_control, http, api: str, model: str
) -> None:
    """Every deployment's concurrency limit is pinned at 1. A slow stream holds oa-2's one slot
    while a stream on oa-1 is cut after 5 tokens: its continuation waits (bounded by the
    first-token timeout) until the slow stream ends, then resumes on oa-2, instead of failing
    at once or going back to the deployment that just cut it."""
    gw = gateway_factory.start(
        "wait-for-room-gateway",
        extra_config="admission: {deployment_concurrency: {initial: 1, min: 1, max: 1}}\n"
                     "routing: {backoff: {base_ms: 0, max_ms: 0}}\n")
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    route = ROUTES[api]
    body = request_body(api, model, stream=True)
    reference = openai_sse_content(stream_lines(http, gw.url + route, body))
    assert len(reference.split()) > 10, reference

    sim_a_control.set(disconnect_after_tokens=5)
    sim_b_control.set(tokens_per_second=10)
    # The slow stream goes to oa-2 while oa-1 is drained, and keeps its slot for a few seconds.
    assert http.post(gw.url + "/admin/v1/deployments/oa-1/drain", headers=admin).status_code == 200
    slow_body = {**body, "messages": user("A slow answer that holds the second deployment's only slot.")}
    with http.stream("POST", gw.url + route, json=slow_body) as slow:
        assert slow.status_code == 200
        assert slow.headers.get("x-lifeline-deployment") == "oa-2"
        assert http.post(gw.url + "/admin/v1/deployments/oa-1/undrain", headers=admin).status_code == 200
        metrics = http.get(gw.url + "/metrics").text
        assert 'lifeline_deployment_in_flight_requests{deployment="oa-2"} 1' in metrics, metrics

        with http.stream("POST", gw.url + route, json=body) as cut:
            assert cut.status_code == 200
            assert cut.headers.get("x-lifeline-deployment") == "oa-1"
            lines = list(cut.iter_lines())
        slow_lines = list(slow.iter_lines())

    markers = [line for line in lines if line.startswith(": lifeline resumed")]
    assert len(markers) == 1 and markers[0].startswith(": lifeline resumed on oa-2"), lines[:40]
    assert not [line for line in lines if "stream_interrupted" in line], lines
    assert openai_sse_content(lines) == reference
    assert [line for line in lines if line.startswith("data:")][-1].strip() == "data: [DONE]"
    assert openai_sse_content(slow_lines)
    assert [line for line in slow_lines if line.startswith("data:")][-1].strip() == "data: [DONE]"
    metrics = http.get(gw.url + "/metrics").text
    assert f'lifeline_failovers_total{{model="{model}",phase="mid_stream",outcome="attempted"}} 1' in metrics, metrics
    assert f'lifeline_failovers_total{{model="{model}",phase="mid_stream",outcome="refused"}} 0' in metrics, metrics
    gw.stop()


# --------------------------------------------------- nothing left to try


@STREAM
@pytest.mark.parametrize("api", APIS)
def test_all_deployments_failing_gives_503_with_retry_after(
    fresh_gateway, sim_a_control, sim_b_control, http, api: str, stream: bool
) -> None:
    sim_a_control.set(error_rate=1.0, error_status=500)
    sim_b_control.set(error_rate=1.0, error_status=500)
    model = OPENAI_MODEL if api == "openai" else ANTHROPIC_MODEL
    with http.stream("POST", fresh_gateway.url + ROUTES[api], json=request_body(api, model, stream)) as r:
        r.read()
    assert r.status_code in (502, 503), f"{r.status_code} {r.text}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers.get("content-type")
    retry_after = r.headers.get("retry-after")
    assert retry_after is not None, "no Retry-After header"
    assert retry_after.strip().isdigit(), f"Retry-After {retry_after!r} is not delta-seconds"
    assert r.headers.get("x-request-id")
    assert_error_shape(api, r.json())

    if api == "openai":
        with pytest.raises(openai.APIStatusError) as caught:
            openai_client(fresh_gateway.url).chat.completions.create(model=model, messages=user())
    else:
        with pytest.raises(anthropic.APIStatusError) as caught:
            anthropic_client(fresh_gateway.url).messages.create(model=model, max_tokens=MAX_TOKENS, messages=user())
    assert caught.value.status_code in (502, 503)


# ------------------------------------- upstreams that refuse the deployment

LEAKY_401 = "Incorrect API key provided: sk-upstream-9fQ2xL7pA3mBzR81. You can find your API key in your account."


@STREAM
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("status", [401, 404])
def test_a_primary_refusing_credentials_or_not_found_fails_over_unseen(
    fresh_gateway, sim_a_control, api: str, status: int, stream: bool
) -> None:
    sim_a_control.set(error_rate=1.0, error_status=status, error_message=LEAKY_401)
    model = OPENAI_MODEL if api == "openai" else ANTHROPIC_MODEL
    text, finish, headers = call_with_headers(fresh_gateway.url, api, model, stream)
    assert text
    assert finish == FINISHED[api]
    assert headers.get("x-lifeline-deployment") == DEPLOYMENTS[model][1]
    assert headers.get("x-lifeline-attempts") == "2"


@pytest.mark.parametrize("api", APIS)
def test_every_deployment_refusing_credentials_gives_502_naming_the_config_not_the_key(
    fresh_gateway, sim_a_control, sim_b_control, http, api: str
) -> None:
    sim_a_control.set(error_rate=1.0, error_status=401, error_message=LEAKY_401)
    sim_b_control.set(error_rate=1.0, error_status=403, error_message=LEAKY_401)
    model = OPENAI_MODEL if api == "openai" else ANTHROPIC_MODEL
    r = http.post(fresh_gateway.url + ROUTES[api], json=request_body(api, model, False))
    assert r.status_code == 502, f"{r.status_code} {r.text}"
    assert "sk-upstream" not in r.text and "Incorrect API key" not in r.text, r.text
    error = assert_error_shape(api, r.json())
    assert "rejected Lifeline's credentials; check its api_key" in error["message"], error
    primary, secondary = DEPLOYMENTS[model]
    assert f"'{primary}'" in error["message"] and f"'{secondary}'" in error["message"], error

    if api == "openai":
        with pytest.raises(openai.APIStatusError) as caught:
            openai_client(fresh_gateway.url).chat.completions.create(model=model, messages=user())
    else:
        with pytest.raises(anthropic.APIStatusError) as caught:
            anthropic_client(fresh_gateway.url).messages.create(model=model, max_tokens=MAX_TOKENS, messages=user())
    assert caught.value.status_code == 502
    assert "sk-upstream" not in str(caught.value)


def slo_budget(gw, http, slo: str) -> tuple[float | None, float | None]:
    """(error_budget_remaining from /admin/v1/alerts, lifeline_slo_error_budget_remaining) of `slo`."""
    alerts = http.get(gw.url + "/admin/v1/alerts", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    admin = next((s["error_budget_remaining"] for s in alerts["slos"] if s["slo"] == slo), None)
    match = re.search(r'^lifeline_slo_error_budget_remaining\{slo="' + re.escape(slo) + r'"\} (\S+)$',
                      http.get(gw.url + "/metrics").text, re.MULTILINE)
    return admin, float(match.group(1)) if match else None


def test_an_all_refused_502_spends_the_models_error_budget(gateway_factory, sim_a_control, sim_b_control, http) -> None:
    slo = f"{OPENAI_MODEL}:availability"
    gw = gateway_factory.start(
        "slo-refusal-gateway",
        extra_config=f"slos:\n  - model: {OPENAI_MODEL}\n    availability: {{target: 0.99, period_days: 30}}\n"
                     "alerting: {evaluation_interval_s: 0.2}\n")
    body = request_body("openai", OPENAI_MODEL, False)
    for _ in range(3):
        assert http.post(gw.url + "/v1/chat/completions", json=body).status_code == 200
    wait_for(lambda: slo_budget(gw, http, slo) == (1, 1), 10, "the full error budget after good answers", step=0.2)

    sim_a_control.set(error_rate=1.0, error_status=401, error_message=LEAKY_401)
    sim_b_control.set(error_rate=1.0, error_status=403, error_message=LEAKY_401)
    for _ in range(3):
        r = http.post(gw.url + "/v1/chat/completions", json=body)
        assert r.status_code == 502, r.text
    # 3 failures in 6 requests against a 1 % error budget: the budget is overspent.
    def overspent() -> bool:
        admin, metric = slo_budget(gw, http, slo)
        return admin is not None and admin < 0 and metric is not None and metric < 0

    wait_for(overspent, 10, "the 502s to spend the error budget", step=0.2)
    gw.stop()


# ------------------------------------------------------- request hygiene


MALFORMED = [
    pytest.param(b'{"model": "chat-openai", "messages": [', id="truncated"),
    pytest.param(b"not json at all", id="not-json"),
    pytest.param(b"[1, 2, 3]", id="not-an-object"),
]


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize(
    "route,api",
    [("/v1/chat/completions", "openai"), ("/v1/embeddings", "openai"), ("/v1/messages", "anthropic"),
     ("/v1/responses", "openai")],
)
def test_malformed_json_is_400_in_the_route_error_shape(gateway, http, route: str, api: str, body: bytes) -> None:
    r = http.post(gateway.url + route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, f"{r.status_code} {r.text}"
    error = assert_error_shape(api, r.json())
    assert error["type"] == "invalid_request_error"
    assert r.headers.get("x-request-id")


def post_oversized(port: int, path: str, body: bytes) -> int:
    """Status of a POST whose body the server may refuse before reading it all."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
            try:
                s.sendall(head)
                view = memoryview(body)
                for i in range(0, len(body), 1 << 16):
                    s.sendall(view[i:i + (1 << 16)])
            except OSError:
                pass  # refused mid-body: the answer may still be waiting
            data = b""
            try:
                while b"\r\n" not in data and len(data) < 65536:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
        if data.startswith(b"HTTP/1."):
            return int(data.split(b" ", 2)[1])
    raise AssertionError(f"no HTTP answer to a {len(body)}-byte body on {path}")


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/responses"])
def test_body_over_4_mib_is_413(gateway, http, route: str) -> None:
    filler = "x" * (4 * 1024 * 1024 + 64 * 1024)
    body = json.dumps(
        {"model": OPENAI_MODEL, "max_tokens": 10, "input": PROMPT, "messages": [{"role": "user", "content": filler}]}
    ).encode()
    assert len(body) > 4 * 1024 * 1024
    assert post_oversized(gateway.port, route, body) == 413
    assert http.get(gateway.url + "/healthz").status_code == 200
