"""Gemini and Azure OpenAI upstreams, with the official OpenAI and Anthropic SDKs as clients.

Two more simulators run here, one speaking Gemini's API (`lifeline simulate --protocol gemini`)
and one Azure OpenAI's (`--protocol azure_openai`), beside simB from conftest (OpenAI and
Anthropic). The simulators answer the same request with the same text whatever their protocol,
so every answer through a Gemini or Azure deployment is compared with simB's own answer over
OpenAI's API: the translation must lose nothing. Faults are set on the simulators' knobs.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import anthropic
import openai
import pytest

from conftest import (
    SIM_KEY,
    LifelineProcess,
    ProcessStartError,
    anthropic_client as new_anthropic_client,
    anthropic_sse_content,
    anthropic_sse_events,
    anthropic_text,
    openai_client as new_openai_client,
    openai_sse_content,
    openai_text,
    process_env,
    ADMIN_TOKEN,
    httpx,
)

UPSTREAM_MODEL = "sim-model"
SYSTEM = "Answer like a lighthouse keeper."
PROMPT = "Describe the morning routine of a lighthouse keeper in a few sentences."
MAX_TOKENS = 200
APIS = ("openai", "anthropic")
# Public models whose first deployment speaks the new protocol.
GEMINI, AZURE, AZURE_V1 = "chat-gemini", "chat-azure", "chat-azure-v1"
NEW_PROTOCOL_MODELS = (GEMINI, AZURE, AZURE_V1)
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
MATRIX = pytest.mark.parametrize("api,model", [pytest.param(a, m, id=f"{a}-client-{m}") for a in APIS for m in NEW_PROTOCOL_MODELS])
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False},
}


def _start_simulator(name: str, protocol: str, binary: Path, workdir: Path) -> LifelineProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    process = LifelineProcess(
        name=name,
        args_for_port=lambda port: [str(binary), "simulate", "--port", str(port), "--protocol", protocol, "--model", UPSTREAM_MODEL],
        workdir=workdir,
        env=process_env(ADMIN_TOKEN),
        fallback_ready_path="/healthz",
    )
    try:
        return process.start()
    except ProcessStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def gemini_sim(lifeline_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifelineProcess]:
    p = _start_simulator("simGemini", "gemini", lifeline_path, tmp_path_factory.mktemp("simGemini"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def azure_sim(lifeline_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifelineProcess]:
    p = _start_simulator("simAzure", "azure_openai", lifeline_path, tmp_path_factory.mktemp("simAzure"))
    yield p
    p.stop()


# One HTTP client for every knob change, and one SDK client per base URL: building a client costs
# a fifth of a second here (its TLS context), more than the requests these tests make.
KNOBS_HTTP = httpx.Client(timeout=10.0)
TOUCHED: set[str] = set()


class SimControl:
    """A simulator's fault knobs (`/sim/control`); the knobs set are reset after the test."""

    def __init__(self, sim: LifelineProcess):
        self.url = sim.url + "/sim/control"

    def set(self, **knobs: Any) -> None:
        TOUCHED.add(self.url)
        r = KNOBS_HTTP.post(self.url, json=knobs)
        assert r.status_code == 200, f"POST {self.url} {knobs} -> {r.status_code} {r.text}"
        state = r.json()
        for key, value in knobs.items():
            assert state[key] == value, f"simulator knob {key}={state[key]!r}, expected {value!r}"


@pytest.fixture(autouse=True)
def _reset_simulators(gemini_sim: LifelineProcess, azure_sim: LifelineProcess, sim_b: LifelineProcess) -> Iterator[None]:
    """Replaces conftest's reset for this module: only the simulators a test changed are reset, after it."""
    yield
    while TOUCHED:
        url = TOUCHED.pop()
        r = KNOBS_HTTP.delete(url)
        assert r.status_code == 200, f"DELETE {url} -> {r.status_code} {r.text}"


@functools.lru_cache(maxsize=None)
def openai_client(base: str) -> openai.OpenAI:
    return new_openai_client(base)


@functools.lru_cache(maxsize=None)
def anthropic_client(base: str) -> anthropic.Anthropic:
    return new_anthropic_client(base)


def providers_config(gemini_port: int, azure_port: int, sim_b_port: int) -> str:
    key = f'api_key: "${{SIM_KEY}}", model: {UPSTREAM_MODEL}'
    gemini = f'protocol: gemini, base_url: "http://127.0.0.1:{gemini_port}/v1beta", {key}'
    azure = f'protocol: azure_openai, base_url: "http://127.0.0.1:{azure_port}", {key}'
    oa = f'protocol: openai, base_url: "http://127.0.0.1:{sim_b_port}/v1", {key}'
    an = f'protocol: anthropic, base_url: "http://127.0.0.1:{sim_b_port}", {key}'
    simulated = f"model: {UPSTREAM_MODEL}, simulator: {{ttft_ms: 0, tokens_per_second: 0}}"
    return f"""server: {{host: 127.0.0.1, port: 0}}
models:
  - name: {GEMINI}
    deployments:
      - {{name: gm-1, {gemini}, priority: 1}}
      - {{name: gm-then-oa, {oa}, priority: 2}}
  - name: {AZURE}
    deployments:
      - {{name: az-1, {azure}, api_version: "2024-10-21", deployment: {UPSTREAM_MODEL}, priority: 1}}
      - {{name: az-then-an, {an}, priority: 2}}
  - name: {AZURE_V1}
    deployments:
      - {{name: az-v1, {azure}, api_version: v1}}
  - name: chat-gemini-only
    deployments:
      - {{name: gm-only, {gemini}}}
  - name: chat-openai-then-gemini
    deployments:
      - {{name: oa-first, {oa}, priority: 1}}
      - {{name: gm-second, {gemini}, priority: 2}}
  - name: chat-anthropic-then-azure
    deployments:
      - {{name: an-first, {an}, priority: 1}}
      - {{name: az-second, {azure}, priority: 2}}
  - name: chat-simulated
    deployments:
      - {{name: gm-sim, protocol: gemini, {simulated}, priority: 1}}
      - {{name: az-sim, protocol: azure_openai, {simulated}, priority: 2}}
  - name: chat-bedrock-then-gemini
    deployments:
      - {{name: bd-sim, protocol: bedrock, {simulated}, priority: 1}}
      - {{name: gm-after-bd, {gemini}, priority: 2}}
"""


@pytest.fixture(scope="module")
def providers_config_text(gemini_sim: LifelineProcess, azure_sim: LifelineProcess, sim_b: LifelineProcess) -> str:
    return providers_config(gemini_sim.port, azure_sim.port, sim_b.port)


@pytest.fixture(scope="module")
def providers_gateway(gateway_factory, providers_config_text: str) -> Iterator[LifelineProcess]:
    p = gateway_factory.start("providers-gateway", config_text=providers_config_text)
    yield p
    p.stop()


@pytest.fixture
def fresh_providers_gateway(gateway_factory, providers_config_text: str) -> Iterator[LifelineProcess]:
    """A gateway of its own, for tests that inject faults (no breaker state leaks)."""
    p = gateway_factory.start("fresh-providers-gateway", config_text=providers_config_text)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def reference(sim_b: LifelineProcess) -> Any:
    """simB's own answer over OpenAI's API: what every protocol must give."""
    return openai_client(sim_b.url).chat.completions.create(
        model=UPSTREAM_MODEL, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS
    )


def ask(base: str, api: str, model: str, stream: bool, **kw: Any) -> tuple[str, str | None]:
    if api == "openai":
        messages = kw.pop("messages", [{"role": "user", "content": PROMPT}])
        return openai_text(openai_client(base), model, stream, messages=[{"role": "system", "content": SYSTEM}, *messages],
                           max_tokens=MAX_TOKENS, **kw)
    return anthropic_text(anthropic_client(base), model, stream, max_tokens=MAX_TOKENS, system=SYSTEM, **kw)


FINISHED = {"openai": "stop", "anthropic": "end_turn"}
CUT_SHORT = {"openai": "length", "anthropic": "max_tokens"}
FILTERED = {"openai": "content_filter", "anthropic": "refusal"}


# ------------------------------------------------------------ text and usage


@MATRIX
@STREAM
def test_answer_equals_the_same_request_over_openai(providers_gateway, reference, api: str, model: str, stream: bool) -> None:
    text, finish = ask(providers_gateway.url, api, model, stream)
    assert text == reference.choices[0].message.content
    assert finish == FINISHED[api]


@MATRIX
def test_usage_is_the_upstreams_own_count(providers_gateway, reference, api: str, model: str) -> None:
    if api == "openai":
        r = openai_client(providers_gateway.url).chat.completions.create(
            model=model, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS)
        assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (reference.usage.prompt_tokens, reference.usage.completion_tokens)
        chunks = list(openai_client(providers_gateway.url).chat.completions.create(
            model=model, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS,
            stream=True, stream_options={"include_usage": True}))
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == reference.usage.completion_tokens
    else:
        client = anthropic_client(providers_gateway.url)
        m = client.messages.create(model=model, max_tokens=MAX_TOKENS, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}])
        assert (m.usage.input_tokens, m.usage.output_tokens) == (reference.usage.prompt_tokens, reference.usage.completion_tokens)
        with client.messages.stream(model=model, max_tokens=MAX_TOKENS, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}]) as s:
            final = s.get_final_message()
        assert final.usage.output_tokens == reference.usage.completion_tokens


@MATRIX
@STREAM
def test_token_limit_cuts_the_answer(providers_gateway, reference, api: str, model: str, stream: bool) -> None:
    if api == "openai":
        text, finish = openai_text(openai_client(providers_gateway.url), model, stream,
                                   messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}], max_tokens=4)
    else:
        text, finish = anthropic_text(anthropic_client(providers_gateway.url), model, stream, max_tokens=4, system=SYSTEM)
    assert finish == CUT_SHORT[api]
    assert text and reference.choices[0].message.content.startswith(text) and len(text.split()) == 4


# ------------------------------------------------------------ stop sequences


@MATRIX
@STREAM
def test_stop_sequence_ends_the_answer_before_it(providers_gateway, reference, api: str, model: str, stream: bool) -> None:
    full = reference.choices[0].message.content
    word = full.split()[5]
    expected = full[: full.find(word)]
    if api == "openai":
        text, finish = openai_text(openai_client(providers_gateway.url), model, stream,
                                   messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
                                   max_tokens=MAX_TOKENS, stop=[word])
        assert (text, finish) == (expected, "stop")
        return
    client = anthropic_client(providers_gateway.url)
    kw = dict(model=model, max_tokens=MAX_TOKENS, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}], stop_sequences=[word])
    if stream:
        with client.messages.stream(**kw) as s:
            text = "".join(s.text_stream)
            message = s.get_final_message()
    else:
        message = client.messages.create(**kw)
        text = "".join(b.text for b in message.content if b.type == "text")
    assert text == expected
    # Neither Gemini nor Azure says which sequence matched: the gateway finds it itself.
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", word)


# ------------------------------------------------------------------ tools


@MATRIX
@STREAM
def test_tool_call_and_its_result_round_trip(providers_gateway, sim_b, api: str, model: str, stream: bool) -> None:
    question = "What is the weather in Oslo?"
    if api == "openai":
        client = openai_client(providers_gateway.url)
        tools = [{"type": "function", "function": WEATHER_TOOL}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        if stream:
            calls: dict[int, dict[str, str]] = {}
            finish = None
            with client.chat.completions.create(model=model, messages=messages, tools=tools, stream=True) as s:
                for chunk in s:
                    for choice in chunk.choices:
                        for call in choice.delta.tool_calls or []:
                            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                            entry["id"] = call.id or entry["id"]
                            entry["name"] += (call.function.name or "") if call.function else ""
                            entry["arguments"] += (call.function.arguments or "") if call.function else ""
                        finish = choice.finish_reason or finish
            call = calls[0]
        else:
            r = client.chat.completions.create(model=model, messages=messages, tools=tools)
            finish = r.choices[0].finish_reason
            first = r.choices[0].message.tool_calls[0]
            call = {"id": first.id, "name": first.function.name, "arguments": first.function.arguments}
        assert finish == "tool_calls"
        assert call["name"] == "get_weather" and call["id"]
        assert set(json.loads(call["arguments"])) == {"city"}
        follow_up = messages + [
            {"role": "assistant", "content": None, "tool_calls": [{"id": call["id"], "type": "function",
                                                                   "function": {"name": call["name"], "arguments": call["arguments"]}}]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 20 degrees"},
        ]
        text, finish = openai_text(client, model, stream, messages=follow_up, tools=tools)
        expected = openai_client(sim_b.url).chat.completions.create(model=UPSTREAM_MODEL, messages=follow_up, tools=tools)
        assert (text, finish) == (expected.choices[0].message.content, "stop")
        return
    client = anthropic_client(providers_gateway.url)
    tools = [{"name": WEATHER_TOOL["name"], "description": WEATHER_TOOL["description"], "input_schema": WEATHER_TOOL["parameters"]}]
    kw = dict(model=model, max_tokens=MAX_TOKENS, tools=tools, messages=[{"role": "user", "content": question}])
    if stream:
        with client.messages.stream(**kw) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kw)
    assert message.stop_reason == "tool_use"
    use = next(b for b in message.content if b.type == "tool_use")
    assert use.name == "get_weather" and set(use.input) == {"city"} and use.id
    follow_up = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 20 degrees"}]},
    ]
    answer = client.messages.create(model=model, max_tokens=MAX_TOKENS, tools=tools, messages=follow_up)
    expected = anthropic_client(sim_b.url).messages.create(model=UPSTREAM_MODEL, max_tokens=MAX_TOKENS, tools=tools, messages=follow_up)
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].text == expected.content[0].text


# ------------------------------------------------------------------ errors


def sim_for(model: str, gemini_sim: LifelineProcess, azure_sim: LifelineProcess) -> SimControl:
    return SimControl(gemini_sim if model == GEMINI else azure_sim)


@MATRIX
@STREAM
def test_a_request_the_upstream_refuses_is_400_in_the_clients_shape(
    providers_gateway, gemini_sim, azure_sim, api: str, model: str, stream: bool
) -> None:
    sim_for(model, gemini_sim, azure_sim).set(error_rate=1.0, error_status=400, error_message="Invalid value at 'contents[0]'")
    error_type = openai.BadRequestError if api == "openai" else anthropic.BadRequestError
    with pytest.raises(error_type) as caught:
        ask(providers_gateway.url, api, model, stream)
    assert caught.value.status_code == 400


@MATRIX
@STREAM
def test_a_content_filter_refusing_the_prompt_is_400_content_filter(
    providers_gateway, gemini_sim, azure_sim, api: str, model: str, stream: bool
) -> None:
    sim_for(model, gemini_sim, azure_sim).set(content_filter="prompt")
    error_type = openai.BadRequestError if api == "openai" else anthropic.BadRequestError
    with pytest.raises(error_type) as caught:
        ask(providers_gateway.url, api, model, stream)
    assert caught.value.status_code == 400
    if api == "openai":
        assert caught.value.code == "content_filter"
    else:
        assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "content filter" in caught.value.message


@MATRIX
@STREAM
def test_an_answer_the_filter_cuts_ends_with_content_filter(
    providers_gateway, gemini_sim, azure_sim, reference, api: str, model: str, stream: bool
) -> None:
    sim_for(model, gemini_sim, azure_sim).set(content_filter="completion")
    text, finish = ask(providers_gateway.url, api, model, stream)
    assert finish == FILTERED[api]
    assert reference.choices[0].message.content.startswith(text) and len(text) < len(reference.choices[0].message.content)


@pytest.mark.parametrize("model,deployment", [(GEMINI, "gm-then-oa"), (AZURE, "az-then-an")])
@pytest.mark.parametrize("status", [429, 503])
def test_an_unavailable_primary_fails_over_to_another_protocol(
    fresh_providers_gateway, gemini_sim, azure_sim, reference, http, model: str, deployment: str, status: int
) -> None:
    knobs = {"rate_limit_rate": 1.0} if status == 429 else {"error_rate": 1.0, "error_status": status}
    sim_for(model, gemini_sim, azure_sim).set(**knobs)
    r = http.post(fresh_providers_gateway.url + "/v1/chat/completions", json={
        "model": model, "max_tokens": MAX_TOKENS,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-lifeline-deployment"] == deployment
    assert r.json()["choices"][0]["message"]["content"] == reference.choices[0].message.content


@pytest.mark.parametrize("model", ["chat-gemini-only", AZURE_V1])
def test_a_rate_limited_only_deployment_gives_503_with_its_retry_after(
    fresh_providers_gateway, gemini_sim, azure_sim, http, model: str
) -> None:
    # Gemini says how long to wait in a RetryInfo detail; Azure in Retry-After and retry-after-ms.
    SimControl(gemini_sim if model == "chat-gemini-only" else azure_sim).set(rate_limit_rate=1.0, retry_after_s=7)
    r = http.post(fresh_providers_gateway.url + "/v1/chat/completions",
                  json={"model": model, "messages": [{"role": "user", "content": PROMPT}]})
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "7"
    assert r.json()["error"]["code"] == "upstream_unavailable"


# ------------------------------------------------- streams cut and resumed


CUTS = [
    pytest.param("chat-gemini", "gemini", id="gemini-cut-openai-resumes"),
    pytest.param("chat-azure", "azure", id="azure-cut-anthropic-resumes"),
    pytest.param("chat-openai-then-gemini", "simB", id="openai-cut-gemini-resumes"),
    pytest.param("chat-anthropic-then-azure", "simB", id="anthropic-cut-azure-resumes"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("model,cut", CUTS)
def test_stream_cut_midway_resumes_on_another_protocol_with_identical_content(
    fresh_providers_gateway, gemini_sim, azure_sim, sim_b, reference, http, api: str, model: str, cut: str
) -> None:
    {"gemini": SimControl(gemini_sim), "azure": SimControl(azure_sim), "simB": SimControl(sim_b)}[cut].set(disconnect_after_tokens=5)
    lines = stream_lines(fresh_providers_gateway, http, api, model)
    markers = [l for l in lines if l.startswith(": lifeline resumed")]
    assert len(markers) == 1, "\n".join(lines[:30])
    if api == "openai":
        assert openai_sse_content(lines) == reference.choices[0].message.content
        assert [l for l in lines if l.startswith("data:")][-1].strip() == "data: [DONE]"
    else:
        assert anthropic_sse_content(lines) == reference.choices[0].message.content
        types = [e["type"] for e in anthropic_sse_events(lines)]
        assert types.count("message_stop") == 1 and types[-1] == "message_stop"


def stream_lines(gateway: LifelineProcess, http, api: str, model: str) -> list[str]:
    """The lines of one streamed answer to PROMPT, through the client API `api`."""
    if api == "openai":
        route = "/v1/chat/completions"
        body = {"model": model, "max_tokens": MAX_TOKENS, "stream": True,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]}
    else:
        route = "/v1/messages"
        body = {"model": model, "max_tokens": MAX_TOKENS, "stream": True, "system": SYSTEM, "messages": [{"role": "user", "content": PROMPT}]}
    with http.stream("POST", gateway.url + route, json=body) as r:
        assert r.status_code == 200
        return list(r.iter_lines())


@pytest.mark.parametrize("api", APIS)
def test_a_stream_cut_on_bedrock_resumes_on_gemini_with_identical_content(fresh_providers_gateway, reference, http, api: str) -> None:
    # Bedrock's binary event stream is cut by a drill; Gemini's SSE goes on from the same word.
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = http.post(fresh_providers_gateway.url + "/admin/v1/faults", headers=admin,
                  json={"deployment": "bd-sim", "kind": "disconnect", "rate": 1.0, "after_tokens": 5, "duration_s": 60})
    assert r.status_code == 201, r.text
    lines = stream_lines(fresh_providers_gateway, http, api, "chat-bedrock-then-gemini")
    markers = [l for l in lines if l.startswith(": lifeline resumed")]
    assert len(markers) == 1 and "gm-after-bd" in markers[0], "\n".join(lines[:30])
    content = openai_sse_content(lines) if api == "openai" else anthropic_sse_content(lines)
    assert content == reference.choices[0].message.content


def test_an_error_inside_a_gemini_stream_resumes_on_another_protocol(fresh_providers_gateway, gemini_sim, reference, http) -> None:
    # The simulator ends the stream with Gemini's in-band error chunk after 5 tokens, paced so the
    # first tokens reach the client before the error does.
    SimControl(gemini_sim).set(stream_error_after_tokens=5, error_status=503, tokens_per_second=200)
    with http.stream("POST", f"{gemini_sim.url}/v1beta/models/{UPSTREAM_MODEL}:streamGenerateContent?alt=sse",
                     json={"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}) as r:
        data = [json.loads(l[5:]) for l in r.iter_lines() if l.startswith("data:")]
    assert data[-1]["error"]["code"] == 503 and data[-1]["error"]["status"] == "UNAVAILABLE", data[-1]
    lines = stream_lines(fresh_providers_gateway, http, "openai", GEMINI)
    markers = [l for l in lines if l.startswith(": lifeline resumed")]
    assert len(markers) == 1 and "gm-then-oa" in markers[0], "\n".join(lines[:30])
    assert openai_sse_content(lines) == reference.choices[0].message.content


@pytest.mark.parametrize("model,deployment", [(GEMINI, "gm-1"), (AZURE, "az-1")])
def test_a_disconnect_drill_on_a_new_protocol_deployment_is_resumed_elsewhere(
    fresh_providers_gateway, reference, http, model: str, deployment: str
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = http.post(fresh_providers_gateway.url + "/admin/v1/faults", headers=admin,
                  json={"deployment": deployment, "kind": "disconnect", "rate": 1.0, "after_tokens": 5, "duration_s": 60})
    assert r.status_code == 201, r.text
    text, finish = openai_text(openai_client(fresh_providers_gateway.url), model, True,
                               messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS)
    assert (text, finish) == (reference.choices[0].message.content, "stop")


# ----------------------------------------- simulated deployments and config


@pytest.mark.parametrize("api", APIS)
def test_simulated_deployments_of_the_new_protocols_answer(providers_gateway, reference, http, api: str) -> None:
    text, finish = ask(providers_gateway.url, api, "chat-simulated", stream=True)
    assert (text, finish) == (reference.choices[0].message.content, FINISHED[api])
    r = http.post(providers_gateway.url + "/v1/chat/completions", json={"model": "chat-simulated", "messages": [{"role": "user", "content": "hi"}]})
    assert r.headers["x-lifeline-deployment"] == "gm-sim"


def test_check_config_names_a_missing_credential_by_its_path(lifeline_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "providers.yaml"
    config.write_text("""models:
  - name: m
    deployments:
      - {name: g, protocol: gemini, model: gemini-2.5-flash}
      - {name: a, protocol: azure_openai, base_url: "https://res.openai.azure.com", model: gpt-4o, api_key: "${AZURE_OPENAI_KEY}"}
""")
    env = process_env(ADMIN_TOKEN)
    env.pop("AZURE_OPENAI_KEY", None)
    result = subprocess.run([str(lifeline_path), "check-config", str(config)], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "models[0].deployments[0].api_key: required for protocol gemini" in output
    assert "models[0].deployments[1].api_key: environment variable AZURE_OPENAI_KEY is not set" in output


def test_check_config_probe_reaches_gemini_and_azure_deployments(
    lifeline_path: Path, tmp_path: Path, gemini_sim: LifelineProcess, azure_sim: LifelineProcess
) -> None:
    config = tmp_path / "probe.yaml"
    key = f'api_key: "${{SIM_KEY}}", model: {UPSTREAM_MODEL}'
    config.write_text(f"""models:
  - name: m
    deployments:
      - {{name: gemini, protocol: gemini, base_url: "http://127.0.0.1:{gemini_sim.port}/v1beta", {key}}}
      - {{name: azure, protocol: azure_openai, base_url: "http://127.0.0.1:{azure_sim.port}", {key}}}
      - {{name: azure-v1, protocol: azure_openai, base_url: "http://127.0.0.1:{azure_sim.port}", {key}, api_version: v1}}
      - {{name: gemini-wrong-url, protocol: gemini, base_url: "http://127.0.0.1:{gemini_sim.port}/v1", {key}}}
""")
    result = subprocess.run([str(lifeline_path), "check-config", "--probe", str(config)], capture_output=True, text=True,
                            env=process_env(ADMIN_TOKEN, SIM_KEY=SIM_KEY), timeout=60)
    lines = result.stdout.splitlines()
    assert "gemini (model m): ok (model list)" in lines, result.stdout
    assert "azure (model m): ok (model list)" in lines, result.stdout
    assert "azure-v1 (model m): ok (model list)" in lines, result.stdout
    assert "gemini-wrong-url (model m): not found (HTTP 404): check base_url and model" in lines, result.stdout
    assert result.returncode == 1


# ------------------------------------------------------------ the Responses API on every protocol


@pytest.mark.parametrize("model", [*NEW_PROTOCOL_MODELS, "chat-bedrock-then-gemini"])
@STREAM
def test_responses_client_gets_the_same_answer_through_each_protocol(providers_gateway, reference, model: str, stream: bool) -> None:
    client = openai_client(providers_gateway.url)
    kw = dict(model=model, instructions=SYSTEM, input=PROMPT, max_output_tokens=MAX_TOKENS)
    if stream:
        with client.responses.stream(**kw) as s:
            deltas = "".join(e.delta for e in s if e.type == "response.output_text.delta")
            final = s.get_final_response()
        assert deltas == final.output_text
    else:
        final = client.responses.create(**kw)
    assert final.status == "completed"
    assert final.output_text == reference.choices[0].message.content
    assert final.usage.output_tokens == reference.usage.completion_tokens
