"""OpenTelemetry traces end to end: a gateway with `tracing:` exports OTLP/HTTP protobuf to a real
receiver here (http.server decoding `ExportTraceServiceRequest` with opentelemetry-proto), and the
simulators record the `traceparent` each upstream attempt carried (`GET /sim/traceparents`).

One request's span tree is checked through a failover (a drill on the first deployment) and through
a mid-stream resumption (the simulator cuts the stream): parent and child ids, GenAI attributes,
the trace id reaching the upstreams, a client's `traceparent` honoured, and the request log line's
trace id. With tracing off, nothing is sent upstream.
"""

from __future__ import annotations

import gzip
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from conftest import (
    ADMIN_TOKEN,
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    GatewayFactory,
    LifelineProcess,
    LoopbackHTTPServer,
    anthropic_client,
    httpx,
    openai_client,
    user,
    wait_for,
)

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
SERVICE = "lifeline-under-test"


class Collector(LoopbackHTTPServer):
    """An OTLP/HTTP traces receiver on a free loopback port: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(min(length, 64 * 1024 * 1024))
                if self.headers.get("content-encoding") == "gzip":
                    raw = gzip.decompress(raw)
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(raw)
                with collector.lock:
                    collector.paths.append(self.path)
                    collector.spans += [
                        span_dict(span, resource.resource)
                        for resource in request.resource_spans
                        for scope in resource.scope_spans
                        for span in scope.spans
                    ]
                body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.serve(Handler)

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]


def attribute_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def span_dict(span: trace_pb2.Span, resource: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent": span.parent_span_id.hex(),
        "kind": span.kind,
        "attributes": {a.key: attribute_value(a.value) for a in span.attributes},
        "events": [(e.name, {a.key: attribute_value(a.value) for a in e.attributes}) for e in span.events],
        "status": span.status.code,
        "service": {a.key: attribute_value(a.value) for a in resource.attributes}.get("service.name"),
    }


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


@pytest.fixture
def traced_gateway(gateway_factory: GatewayFactory, collector: Collector) -> Iterator[LifelineProcess]:
    # Spans are exported every 100 ms instead of OpenTelemetry's default 5 s, to keep the test short.
    gw = gateway_factory.start(
        "traced-gateway",
        extra_config=f"tracing: {{otlp_endpoint: \"{collector.url}\", sample_ratio: 1.0, service_name: {SERVICE}}}\n",
        args=("--log-format", "json"),
        env={"OTEL_BSP_SCHEDULE_DELAY": "100"},
    )
    yield gw
    gw.stop()


def traceparents(sim: LifelineProcess) -> list[str]:
    r = httpx.get(sim.url + "/sim/traceparents", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["traceparents"]


def request_tree(collector: Collector, request_id: str, attempts: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the request's chat span, every span of its trace) once the request's spans have all arrived."""

    def complete() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        with collector.lock:
            chats = [s for s in collector.spans if s["attributes"].get("lifeline.request_id") == request_id]
        if not chats:
            return None
        spans = collector.trace(chats[0]["trace_id"])
        upstream = [s for s in spans if s["name"].startswith("upstream ")]
        servers = [s for s in spans if s["kind"] == trace_pb2.Span.SPAN_KIND_SERVER]
        return (chats[0], spans) if len(upstream) >= attempts and servers else None

    found = wait_for(complete, timeout=15, what=f"the spans of request {request_id}")
    return found


def children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in spans if s["parent"] == parent["span_id"]]


def request_log_line(gw: LifelineProcess, request_id: str) -> dict[str, Any]:
    assert gw.log_path is not None

    def line() -> dict[str, Any] | None:
        for text in gw.log_path.read_text(errors="replace").splitlines():
            if request_id in text:
                parsed = json.loads(text)
                if parsed.get("message") == "request" and parsed.get("request_id") == request_id:
                    return parsed
        return None

    return wait_for(line, timeout=10, what=f"the log line of request {request_id}")


def sent_under(sim: LifelineProcess, spans: list[dict[str, Any]], attempt: dict[str, Any]) -> None:
    """The simulator got a `traceparent` of the attempt's trace whose parent is the HTTP client
    span (AsyncHTTPClient's) under that attempt's span."""
    http = [s for s in children(spans, attempt) if s["kind"] == trace_pb2.Span.SPAN_KIND_CLIENT]
    assert [s["name"] for s in http] == ["POST"], [s["name"] for s in children(spans, attempt)]
    # AsyncHTTPClient names the status with the older semantic-convention key.
    assert http[0]["attributes"]["http.status_code"] == 200
    assert f"00-{attempt['trace_id']}-{http[0]['span_id']}-01" in traceparents(sim)


def check_upstream_span(span: dict[str, Any], deployment: str, protocol: str) -> None:
    a = span["attributes"]
    assert span["kind"] == trace_pb2.Span.SPAN_KIND_CLIENT
    assert a["lifeline.deployment"] == deployment
    assert a["lifeline.protocol"] == protocol
    assert a["gen_ai.system"] == protocol
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "sim-model"


def test_a_failover_is_one_trace_under_the_clients_traceparent(
    traced_gateway: LifelineProcess, collector: Collector, sim_b: LifelineProcess
) -> None:
    gw = traced_gateway
    r = httpx.post(gw.url + "/admin/v1/faults", headers=ADMIN, timeout=10,
                   json={"deployment": "oa-1", "kind": "error", "status": 503, "rate": 1.0, "duration_s": 60})
    assert r.status_code == 201, r.text

    client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
    raw = openai_client(gw.url).chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user(), max_tokens=40,
        extra_headers={"traceparent": f"00-{client_trace}-{client_span}-01", "x-request-id": "trace-failover"},
    )
    answer = raw.parse()
    assert answer.choices[0].message.content
    assert raw.headers["x-lifeline-deployment"] == "oa-2"
    assert raw.headers["x-lifeline-attempts"] == "2"

    chat, spans = request_tree(collector, "trace-failover", attempts=2)
    # The client's trace is continued: its span is the parent of the gateway's server span.
    assert chat["trace_id"] == client_trace
    assert {s["trace_id"] for s in spans} == {client_trace}
    (server,) = [s for s in spans if s["kind"] == trace_pb2.Span.SPAN_KIND_SERVER]
    assert server["parent"] == client_span
    assert server["attributes"]["http.route"] == "/v1/chat/completions"
    assert server["attributes"]["http.response.status_code"] == 200
    assert chat["parent"] == server["span_id"]
    assert chat["name"] == f"chat {OPENAI_MODEL}"

    a = chat["attributes"]
    assert a["gen_ai.request.model"] == OPENAI_MODEL
    assert a["gen_ai.system"] == "openai"
    assert a["gen_ai.response.model"]
    assert a["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens > 0
    assert a["lifeline.attempts"] == 2
    assert a["lifeline.deployment"] == "oa-2"
    assert a["http.response.status_code"] == 200

    below = children(spans, chat)
    assert sorted(s["name"] for s in below) == ["admission", "upstream oa-1", "upstream oa-2"]
    (admission,) = [s for s in below if s["name"] == "admission"]
    assert {s["service"] for s in spans} == {SERVICE}
    assert admission["attributes"]["lifeline.outcome"] == "admitted"
    (first,) = [s for s in below if s["name"] == "upstream oa-1"]
    (second,) = [s for s in below if s["name"] == "upstream oa-2"]
    check_upstream_span(first, "oa-1", "openai")
    check_upstream_span(second, "oa-2", "openai")
    assert first["attributes"]["lifeline.outcome"] == "http_503"
    assert first["attributes"]["http.response.status_code"] == 503
    assert first["status"] == trace_pb2.Status.STATUS_CODE_ERROR
    assert second["attributes"]["lifeline.outcome"] == "success"
    assert second["attributes"]["lifeline.retry"] is True
    assert second["attributes"]["http.response.status_code"] == 200
    assert second["attributes"]["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert second["attributes"]["gen_ai.response.model"]
    assert ("failover", {"lifeline.phase": "before_first_byte", "lifeline.deployment": "oa-2",
                         "lifeline.failed_deployment": "oa-1"}) in chat["events"]

    # The attempt that reached an upstream sent it the trace; the drilled one never left the gateway.
    sent_under(sim_b, spans, second)
    assert children(spans, first) == []
    assert request_log_line(gw, "trace-failover")["trace_id"] == client_trace


def test_a_resumed_stream_is_one_trace_with_both_attempts(
    traced_gateway: LifelineProcess, collector: Collector, sim_a_control, sim_a: LifelineProcess,
    sim_b: LifelineProcess,
) -> None:
    gw = traced_gateway
    sim_a_control.set(disconnect_after_tokens=5)
    text = ""
    with anthropic_client(gw.url).messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=200, messages=user(), extra_headers={"x-request-id": "trace-resume"},
    ) as stream:
        for part in stream.text_stream:
            text += part
        final = stream.get_final_message()
    assert len(text.split()) > 10
    assert final.stop_reason == "end_turn"

    chat, spans = request_tree(collector, "trace-resume", attempts=2)
    trace_id = chat["trace_id"]
    assert chat["attributes"]["lifeline.resumptions"] == 1
    assert chat["attributes"]["lifeline.failover_phase"] == "mid_stream"
    # As in the log line: the deployment that began the answer; the provider is the one that ended it.
    assert chat["attributes"]["lifeline.deployment"] == "an-1"
    assert chat["attributes"]["gen_ai.system"] == "anthropic"
    assert chat["attributes"]["gen_ai.usage.output_tokens"] > 0
    upstream = [s for s in children(spans, chat) if s["name"].startswith("upstream ")]
    assert sorted(s["name"] for s in upstream) == ["upstream an-1", "upstream an-2"]
    (cut,) = [s for s in upstream if s["name"] == "upstream an-1"]
    (resumed,) = [s for s in upstream if s["name"] == "upstream an-2"]
    check_upstream_span(cut, "an-1", "anthropic")
    check_upstream_span(resumed, "an-2", "anthropic")
    # A cut connection reaches the gateway as a closed connection or a truncated response.
    assert cut["attributes"]["lifeline.outcome"] in ("disconnected", "connect_error")
    assert cut["attributes"]["error.type"] == cut["attributes"]["lifeline.outcome"]
    assert cut["attributes"]["gen_ai.usage.output_tokens"] > 0
    assert cut["status"] == trace_pb2.Status.STATUS_CODE_ERROR
    assert resumed["attributes"]["lifeline.outcome"] == "success"
    assert resumed["attributes"]["lifeline.phase"] == "mid_stream"

    events = [name for name, _ in chat["events"]]
    assert events.index("stream_failed") < events.index("resumption")
    (resumption,) = [attrs for name, attrs in chat["events"] if name == "resumption"]
    assert resumption["lifeline.deployment"] == "an-2"
    assert resumption["lifeline.failed_deployment"] == "an-1"

    # Each upstream got the trace, under its own attempt's span.
    sent_under(sim_a, spans, cut)
    sent_under(sim_b, spans, resumed)
    assert request_log_line(gw, "trace-resume")["trace_id"] == trace_id


def test_with_tracing_off_nothing_goes_upstream(gateway: LifelineProcess, sim_a: LifelineProcess) -> None:
    client_trace = secrets.token_hex(16)
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=30,
                   headers={"traceparent": f"00-{client_trace}-{secrets.token_hex(8)}-01"},
                   json={"model": OPENAI_MODEL, "max_tokens": 8, "messages": user("tracing off")})
    assert r.status_code == 200, r.text
    assert r.headers["x-lifeline-deployment"] == "oa-1"
    # No trace context went upstream: the gateway made none and passed the client's on to no one.
    assert not [t for t in traceparents(sim_a) if client_trace in t]
