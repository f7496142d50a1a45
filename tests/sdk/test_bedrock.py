"""`protocol: bedrock` end to end: the OpenAI and Anthropic SDKs against a gateway whose
upstream speaks Amazon Bedrock's Converse API, served by `lifeline simulate --protocol bedrock`
over loopback. The simulator checks every request's SigV4 signature with the credentials the
gateway signs with, and streams in AWS's binary event-stream framing. Answers are compared
with the same simulator model reached over the OpenAI protocol, so any translation loss shows.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import anthropic
import openai
import pytest

from conftest import (
    PROMPT,
    SIM_KEY,
    LifelineProcess,
    ProcessStartError,
    SimControl,
    _process_env,
    anthropic_client,
    anthropic_sse_content,
    openai_client,
    openai_sse_content,
    user,
)

# A real Bedrock model id: its ':' must be percent-encoded in the path and signed encoded twice.
MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
KEY_ID = "AKIDLIFELINETEST"
SECRET = "lifeline-test-secret/with+signs"
BEDROCK = "chat-bedrock"
BEDROCK_ONLY = "chat-bedrock-only"
WRONG_SECRET = "chat-bedrock-wrong-secret"
SIMULATED = "chat-bedrock-simulated"
REFERENCE = "chat-reference"
MAX_TOKENS = 200
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def bedrock_sim(lifeline_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifelineProcess]:
    workdir = tmp_path_factory.mktemp("bedrock-sim")
    process = LifelineProcess(
        name="bedrock-sim",
        args_for_port=lambda port: [
            str(lifeline_path), "simulate", "--port", str(port), "--protocol", "bedrock",
            "--aws-access-key-id", KEY_ID, "--aws-secret-access-key-env", "SIM_AWS_SECRET",
        ],
        workdir=workdir,
        env=_process_env(SIM_AWS_SECRET=SECRET),
        fallback_ready_path="/healthz",
    )
    try:
        process.start()
    except ProcessStartError as exc:
        pytest.fail(str(exc))
    yield process
    process.stop()


@pytest.fixture
def bedrock_control(bedrock_sim: LifelineProcess) -> Iterator[SimControl]:
    control = SimControl(bedrock_sim)
    control.reset()
    yield control
    control.reset()


def config(bedrock_port: int, openai_port: int) -> str:
    def bedrock(name: str, priority: int, secret: str = "${BR_SECRET}") -> str:
        return (
            f'      - {{name: {name}, protocol: bedrock, base_url: "http://127.0.0.1:{bedrock_port}", region: us-east-1, '
            f'access_key_id: "${{BR_KEY_ID}}", secret_access_key: "{secret}", model: "{MODEL_ID}", priority: {priority}}}\n'
        )

    def oa(name: str, priority: int) -> str:
        return (
            f'      - {{name: {name}, protocol: openai, base_url: "http://127.0.0.1:{openai_port}/v1", '
            f'api_key: "${{SIM_KEY}}", model: "{MODEL_ID}", priority: {priority}}}\n'
        )

    return (
        "server: {host: 127.0.0.1, port: 0}\n"
        "models:\n"
        f"  - name: {BEDROCK}\n    deployments:\n" + bedrock("br-1", 1) + oa("oa-2", 2)
        + f"  - name: {REFERENCE}\n    deployments:\n" + oa("ref", 1)
        + f"  - name: {BEDROCK_ONLY}\n    deployments:\n" + bedrock("br-only", 1)
        + f"  - name: {WRONG_SECRET}\n    deployments:\n" + bedrock("br-wrong", 1, secret="not-the-secret") + oa("oa-fallback", 2)
        + f"  - name: {SIMULATED}\n    deployments:\n"
        f'      - {{name: br-sim, protocol: bedrock, model: "amazon.nova-lite-v1:0", simulator: {{ttft_ms: 0, tokens_per_second: 0}}}}\n'
    )


def start_gateway(gateway_factory, bedrock_sim: LifelineProcess, name: str) -> LifelineProcess:
    return gateway_factory.start(name, config_text=config(bedrock_sim.port, gateway_factory.sim_a.port),
                                 env={"BR_KEY_ID": KEY_ID, "BR_SECRET": SECRET})


@pytest.fixture(scope="module")
def bedrock_gateway(gateway_factory, bedrock_sim: LifelineProcess) -> Iterator[LifelineProcess]:
    p = start_gateway(gateway_factory, bedrock_sim, "bedrock-gateway")
    yield p
    p.stop()


@pytest.fixture
def fresh_bedrock_gateway(gateway_factory, bedrock_sim: LifelineProcess) -> Iterator[LifelineProcess]:
    """A gateway of its own, for tests whose faults would leave breaker state behind."""
    p = start_gateway(gateway_factory, bedrock_sim, "fresh-bedrock-gateway")
    yield p
    p.stop()


def openai_answer(base: str, model: str, stream: bool, **kw: Any) -> tuple[str, str | None, Any, Any]:
    """(text, finish_reason, usage, headers) through the OpenAI SDK."""
    kw.setdefault("messages", user())
    # The gateway refuses max_tokens beside max_completion_tokens, as OpenAI does.
    if "max_completion_tokens" not in kw:
        kw.setdefault("max_tokens", MAX_TOKENS)
    client = openai_client(base)
    if not stream:
        raw = client.chat.completions.with_raw_response.create(model=model, **kw)
        c = raw.parse()
        return c.choices[0].message.content or "", c.choices[0].finish_reason, c.usage, raw.headers
    raw = client.chat.completions.with_raw_response.create(
        model=model, stream=True, stream_options={"include_usage": True}, **kw
    )
    parts, finish, usage = [], None, None
    with raw.parse() as s:
        for chunk in s:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
                if choice.finish_reason is not None:
                    assert finish is None, "finish_reason sent twice"
                    finish = choice.finish_reason
    return "".join(parts), finish, usage, raw.headers


def anthropic_answer(base: str, model: str, stream: bool, **kw: Any) -> tuple[str, anthropic.types.Message]:
    kw.setdefault("messages", user())
    client = anthropic_client(base)
    if not stream:
        m = client.messages.create(model=model, max_tokens=MAX_TOKENS, **kw)
        return "".join(b.text for b in m.content if b.type == "text"), m
    with client.messages.stream(model=model, max_tokens=MAX_TOKENS, **kw) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    return text, final


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])


# ------------------------------------------------------------ translation


@STREAM
def test_openai_client_gets_the_same_answer_and_usage_through_bedrock(bedrock_gateway, bedrock_control, stream: bool) -> None:
    reference, ref_finish, ref_usage, _ = openai_answer(bedrock_gateway.url, REFERENCE, stream)
    text, finish, usage, headers = openai_answer(bedrock_gateway.url, BEDROCK, stream)
    assert headers.get("x-lifeline-deployment") == "br-1"
    assert headers.get("x-lifeline-attempts") == "1"
    assert text == reference and len(text.split()) > 10
    assert finish == ref_finish == "stop"
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert (usage.prompt_tokens, usage.completion_tokens) == (ref_usage.prompt_tokens, ref_usage.completion_tokens)


@STREAM
def test_anthropic_client_gets_the_same_answer_and_usage_through_bedrock(bedrock_gateway, bedrock_control, stream: bool) -> None:
    reference, ref_message = anthropic_answer(bedrock_gateway.url, REFERENCE, stream)
    text, message = anthropic_answer(bedrock_gateway.url, BEDROCK, stream)
    assert text == reference and len(text.split()) > 10
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == ref_message.usage.input_tokens > 0
    assert message.usage.output_tokens == ref_message.usage.output_tokens > 0


@STREAM
def test_system_prompt_and_max_tokens_reach_bedrock(bedrock_gateway, bedrock_control, stream: bool) -> None:
    messages = [{"role": "system", "content": "You are a lighthouse."}, *user()]
    reference, ref_finish, _, _ = openai_answer(bedrock_gateway.url, REFERENCE, stream, messages=messages, max_completion_tokens=5)
    text, finish, usage, _ = openai_answer(bedrock_gateway.url, BEDROCK, stream, messages=messages, max_completion_tokens=5)
    assert text == reference
    assert finish == ref_finish == "length"
    assert usage.completion_tokens <= 5


@STREAM
def test_stop_sequences_cut_the_answer_for_both_clients(bedrock_gateway, bedrock_control, stream: bool) -> None:
    full, _, _, _ = openai_answer(bedrock_gateway.url, BEDROCK, stream=False)
    words = full.split()
    stop = words[len(words) // 2]
    expected = full[: full.index(stop)]

    text, finish, _, _ = openai_answer(bedrock_gateway.url, BEDROCK, stream, stop=[stop])
    assert text == expected
    assert finish == "stop"

    text, message = anthropic_answer(bedrock_gateway.url, BEDROCK, stream, stop_sequences=[stop])
    assert text == expected
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == stop


@STREAM
def test_tool_calls_round_trip_through_bedrock_for_the_openai_client(bedrock_gateway, bedrock_control, stream: bool) -> None:
    client = openai_client(bedrock_gateway.url)
    question = [{"role": "user", "content": "What is the weather in Oslo?"}]
    kwargs = dict(model=BEDROCK, max_tokens=MAX_TOKENS, messages=question, tools=[WEATHER_TOOL], tool_choice="required")
    if stream:
        calls: dict[int, dict[str, str]] = {}
        finish = None
        with client.chat.completions.create(stream=True, **kwargs) as s:
            for chunk in s:
                for choice in chunk.choices:
                    for delta in choice.delta.tool_calls or []:
                        call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                        call["id"] += delta.id or ""
                        call["name"] += (delta.function.name or "") if delta.function else ""
                        call["arguments"] += (delta.function.arguments or "") if delta.function else ""
                    finish = choice.finish_reason or finish
        assert finish == "tool_calls"
        call = calls[0]
    else:
        completion = client.chat.completions.create(**kwargs)
        assert completion.choices[0].finish_reason == "tool_calls"
        tool_call = completion.choices[0].message.tool_calls[0]
        call = {"id": tool_call.id, "name": tool_call.function.name, "arguments": tool_call.function.arguments}
    assert call["name"] == "get_weather" and call["id"]
    assert isinstance(json.loads(call["arguments"]), dict)

    follow_up = question + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 20C"},
    ]
    text, finish, _, headers = openai_answer(bedrock_gateway.url, BEDROCK, stream, messages=follow_up, tools=[WEATHER_TOOL])
    assert headers.get("x-lifeline-deployment") == "br-1"
    assert finish == "stop" and text


def test_tool_use_reaches_the_anthropic_client_through_bedrock(bedrock_gateway, bedrock_control) -> None:
    tool = {"name": "get_weather", "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    message = anthropic_client(bedrock_gateway.url).messages.create(
        model=BEDROCK, max_tokens=MAX_TOKENS, tools=[tool], tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "What is the weather in Oslo?"}])
    assert message.stop_reason == "tool_use"
    uses = [b for b in message.content if b.type == "tool_use"]
    assert uses and uses[0].name == "get_weather" and isinstance(uses[0].input, dict)


def test_a_simulated_bedrock_deployment_answers_signed_requests(bedrock_gateway) -> None:
    text, finish, usage, headers = openai_answer(bedrock_gateway.url, SIMULATED, stream=True)
    assert headers.get("x-lifeline-deployment") == "br-sim"
    assert text and finish == "stop" and usage.completion_tokens > 0


# ------------------------------------------------------------ failures


@pytest.mark.parametrize("status", [429, 503, 500])
def test_throttled_or_unavailable_bedrock_fails_over_to_openai(fresh_bedrock_gateway, bedrock_control, status: int) -> None:
    reference, _, _, _ = openai_answer(fresh_bedrock_gateway.url, REFERENCE, stream=False)
    bedrock_control.set(error_rate=1.0, error_status=status)
    text, finish, _, headers = openai_answer(fresh_bedrock_gateway.url, BEDROCK, stream=False)
    assert headers.get("x-lifeline-deployment") == "oa-2"
    assert headers.get("x-lifeline-attempts") == "2"
    assert text == reference and finish == "stop"


def test_a_wrong_secret_is_refused_by_the_signature_check_and_fails_over(bedrock_gateway) -> None:
    text, finish, _, headers = openai_answer(bedrock_gateway.url, WRONG_SECRET, stream=False)
    assert headers.get("x-lifeline-deployment") == "oa-fallback"
    assert text and finish == "stop"


def test_a_throttled_bedrock_with_nowhere_to_go_is_a_503_with_retry_after(fresh_bedrock_gateway, bedrock_control) -> None:
    bedrock_control.set(rate_limit_rate=1.0, retry_after_s=7)
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client(fresh_bedrock_gateway.url).chat.completions.create(model=BEDROCK_ONLY, messages=user(), max_tokens=20)
    assert caught.value.status_code == 503
    assert caught.value.response.headers.get("retry-after", "").isdigit()
    body = caught.value.response.json()
    assert body["error"]["message"] and "ThrottlingException" not in body["error"]["message"]


def test_a_bedrock_validation_error_reaches_the_client_in_its_own_shape(fresh_bedrock_gateway, bedrock_control) -> None:
    bedrock_control.set(error_rate=1.0, error_status=400, error_message="messages.0: bad block")
    with pytest.raises(anthropic.BadRequestError) as refused:
        anthropic_client(fresh_bedrock_gateway.url).messages.create(model=BEDROCK_ONLY, max_tokens=20, messages=user())
    assert refused.value.body["type"] == "error"
    assert refused.value.body["error"]["type"] == "invalid_request_error"


# --------------------------------------------------- mid-stream resumption


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_stream_cut_on_bedrock_resumes_on_an_openai_deployment(
    bedrock_gateway, fresh_bedrock_gateway, bedrock_control, http, api: str
) -> None:
    route = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    body = {"model": BEDROCK, "max_tokens": MAX_TOKENS, "messages": user(), "stream": True}
    content = openai_sse_content if api == "openai" else anthropic_sse_content
    with http.stream("POST", bedrock_gateway.url + route, json=body) as r:
        assert r.status_code == 200
        reference = content(list(r.iter_lines()))
    assert len(reference.split()) > 10

    bedrock_control.set(disconnect_after_tokens=5)
    with http.stream("POST", fresh_bedrock_gateway.url + route, json=body) as r:
        assert r.status_code == 200
        assert r.headers.get("x-lifeline-deployment") == "br-1"
        lines = list(r.iter_lines())
    assert content(lines) == reference
    assert len([line for line in lines if line.startswith(": lifeline resumed")]) == 1, "\n".join(lines[:30])

    if api == "openai":
        text, finish = "", None
        with openai_client(fresh_bedrock_gateway.url).chat.completions.create(
            model=BEDROCK, messages=user(), max_tokens=MAX_TOKENS, stream=True
        ) as s:
            for chunk in s:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finish = choice.finish_reason or finish
        assert (text, finish) == (reference, "stop")
    else:
        text, message = anthropic_answer(fresh_bedrock_gateway.url, BEDROCK, stream=True)
        assert (text, message.stop_reason) == (reference, "end_turn")


@pytest.mark.parametrize("status", [429, 503])
def test_a_throttling_exception_inside_a_bedrock_stream_resumes_on_openai(
    bedrock_gateway, fresh_bedrock_gateway, bedrock_control, http, status: int
) -> None:
    """Bedrock reports throttling and unavailability mid-stream as exception messages in the
    event stream (throttlingException, serviceUnavailableException): retryable, so resumed."""
    body = {"model": BEDROCK, "max_tokens": MAX_TOKENS, "messages": user(), "stream": True}
    with http.stream("POST", bedrock_gateway.url + "/v1/chat/completions", json=body) as r:
        reference = openai_sse_content(list(r.iter_lines()))

    bedrock_control.set(stream_error_after_tokens=5, error_status=status)
    with http.stream("POST", fresh_bedrock_gateway.url + "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = list(r.iter_lines())
    assert openai_sse_content(lines) == reference
    assert len([line for line in lines if line.startswith(": lifeline resumed")]) == 1, "\n".join(lines[:30])
    assert not [line for line in lines if '"error"' in line], "the upstream's error reached the client"


# ------------------------------------------------------------ check-config


def test_check_config_names_a_missing_region_or_credential_by_its_path(lifeline_path: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "bedrock.yaml"
    config_file.write_text(
        "models:\n"
        "  - name: chat\n"
        "    deployments:\n"
        "      - {name: openai, protocol: openai, base_url: https://api.openai.com/v1, model: gpt-4o-mini}\n"
        f'      - {{name: claude, protocol: bedrock, model: "{MODEL_ID}", access_key_id: "${{AWS_ACCESS_KEY_ID}}", '
        'secret_access_key: "${AWS_SECRET_ACCESS_KEY}"}\n'
    )
    env = _process_env(AWS_ACCESS_KEY_ID="AKIDEXAMPLE")
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    result = subprocess.run([str(lifeline_path), "check-config", str(config_file)], capture_output=True, text=True,
                            timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "models[0].deployments[1].region: required for protocol bedrock" in output, output
    assert "models[0].deployments[1].secret_access_key: environment variable AWS_SECRET_ACCESS_KEY is not set" in output, output

    config_file.write_text(config_file.read_text().replace("model: \"", "region: eu-central-1, model: \"", 1)
                           .replace("{name: claude, protocol: bedrock, model", "{name: claude, protocol: bedrock, region: eu-central-1, model"))
    env["AWS_SECRET_ACCESS_KEY"] = "secret"
    clean = subprocess.run([str(lifeline_path), "check-config", str(config_file)], capture_output=True, text=True,
                           timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip() == f"{config_file}: ok (1 models, 2 deployments)"
