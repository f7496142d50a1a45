"""The gateway's OpenAI-compatible API, driven by the official OpenAI SDK."""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

import openai
import pytest

from conftest import (
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    PUBLIC_MODELS,
    anthropic_text,
    httpx,
    openai_client,
    openai_text,
    user,
)

OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}


def assert_openai_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("error"), dict), f"not the OpenAI error shape: {body}"
    error = body["error"]
    assert OPENAI_ERROR_KEYS <= set(error), f"error object lacks {OPENAI_ERROR_KEYS - set(error)}: {body}"
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str) and error["type"], body
    assert response.headers.get("x-request-id"), "error response without x-request-id"
    return error


# ------------------------------------------------------------------ models


def test_models_list_names_exactly_the_public_models(oai: openai.OpenAI) -> None:
    models = list(oai.models.list())
    ids = sorted(m.id for m in models)
    assert ids == sorted(PUBLIC_MODELS)
    for m in models:
        assert m.object == "model"


# ---------------------------------------------------------- chat, no stream


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_non_stream_chat_returns_content_usage_and_public_model_name(oai: openai.OpenAI, model: str) -> None:
    r = oai.chat.completions.create(model=model, messages=user())
    assert r.id
    assert r.object == "chat.completion"
    assert r.model == model
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason == "stop"
    usage = r.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_same_request_gives_same_content_twice(oai: openai.OpenAI, model: str) -> None:
    first, _ = openai_text(oai, model, stream=False, seed=11)
    second, _ = openai_text(oai, model, stream=False, seed=11)
    assert first and first == second


# -------------------------------------------------------------- streaming


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_stream_chunks_concatenate_to_the_non_stream_content(oai: openai.OpenAI, model: str) -> None:
    reference = oai.chat.completions.create(model=model, messages=user(), seed=7)
    expected = reference.choices[0].message.content
    assert expected

    parts: list[str] = []
    finish_reasons: list[str] = []
    ids: set[str] = set()
    chunk_count = 0
    with oai.chat.completions.create(model=model, messages=user(), seed=7, stream=True) as stream:
        for chunk in stream:
            chunk_count += 1
            assert chunk.object == "chat.completion.chunk"
            assert chunk.model == model
            assert chunk.usage is None, "usage sent without stream_options.include_usage"
            ids.add(chunk.id)
            for choice in chunk.choices:
                assert choice.index == 0
                if choice.delta.content:
                    parts.append(choice.delta.content)
                if choice.finish_reason is not None:
                    finish_reasons.append(choice.finish_reason)
    assert chunk_count > 1, "a stream of one chunk is not streaming"
    assert len(ids) == 1, f"chunks carry different ids: {ids}"
    assert "".join(parts) == expected
    assert finish_reasons == ["stop"]


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_stream_with_include_usage_ends_with_a_usage_chunk_without_choices(
    oai: openai.OpenAI, model: str
) -> None:
    reference = oai.chat.completions.create(model=model, messages=user(), seed=5)
    with oai.chat.completions.create(
        model=model, messages=user(), seed=5, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    assert len(chunks) >= 2
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    for chunk in chunks[:-1]:
        assert chunk.usage is None, "usage must come only in the final chunk"
    content = "".join(c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices)
    assert content == reference.choices[0].message.content
    assert last.usage.prompt_tokens == reference.usage.prompt_tokens
    assert last.usage.completion_tokens == reference.usage.completion_tokens
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


# -------------------------------------------------------------- n and stop


def test_n_2_returns_two_choices(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model=OPENAI_MODEL, messages=user(), n=2, seed=3)
    assert sorted(c.index for c in r.choices) == [0, 1]
    for c in r.choices:
        assert c.message.content and c.message.content.strip()
        assert c.finish_reason == "stop"
    assert r.usage.completion_tokens > 0


@pytest.mark.parametrize("model", PUBLIC_MODELS)
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_stop_sequence_cuts_the_text_before_it(oai: openai.OpenAI, model: str, stream: bool) -> None:
    full, finish = openai_text(oai, model, stream=False, seed=9, max_tokens=200)
    words = full.split()
    assert len(words) >= 4, f"answer too short to cut: {full!r}"
    stop_word, cut_at = "", -1
    for w in words[len(words) // 2:] + words[1:len(words) // 2]:
        idx = full.find(w)
        if idx > 0:
            stop_word, cut_at = w, idx
            break
    assert cut_at > 0, f"no usable stop word in {full!r}"

    text, finish = openai_text(oai, model, stream=stream, seed=9, max_tokens=200, stop=[stop_word])
    assert text == full[:cut_at], f"stop={stop_word!r}"
    assert finish == "stop"


# ----------------------------------------------------------------- headers


def test_raw_response_shows_request_id_deployment_and_attempts(fresh_gateway) -> None:
    client = openai_client(fresh_gateway.url)
    seen_ids = set()
    for model, deployment in ((OPENAI_MODEL, "oa-1"), (ANTHROPIC_MODEL, "an-1")):
        raw = client.chat.completions.with_raw_response.create(model=model, messages=user())
        assert raw.http_request.url.path == "/v1/chat/completions"
        request_id = raw.headers.get("x-request-id")
        assert request_id
        seen_ids.add(request_id)
        assert raw.headers.get("x-lifeline-deployment") == deployment
        assert raw.headers.get("x-lifeline-attempts") == "1"
        completion = raw.parse()
        assert completion.choices[0].message.content
    assert len(seen_ids) == 2, "two requests got the same x-request-id"

    with client.chat.completions.with_streaming_response.create(
        model=OPENAI_MODEL, messages=user(), stream=True
    ) as streamed:
        assert streamed.headers.get("x-request-id")
        assert streamed.headers.get("x-lifeline-deployment") == "oa-1"
        assert streamed.headers.get("x-lifeline-attempts") == "1"
        assert streamed.headers.get("content-type", "").startswith("text/event-stream")
        body = b"".join(streamed.iter_bytes())
    assert b"data: [DONE]" in body


def test_client_request_id_is_echoed(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user(), extra_headers={"x-request-id": "sdk-test-req-0001"}
    )
    assert raw.headers.get("x-request-id") == "sdk-test-req-0001"


def test_every_response_carries_a_request_id(gateway, http) -> None:
    for method, path, body in (
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", {"model": "no-such-model", "messages": user()}),
        ("POST", "/v1/messages", {"model": "no-such-model", "max_tokens": 10, "messages": user()}),
    ):
        r = http.request(method, gateway.url + path, json=body)
        assert r.headers.get("x-request-id"), f"{method} {path} -> {r.status_code} without x-request-id"


# ------------------------------------------------------------------ errors


def test_unknown_model_raises_not_found_in_openai_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="no-such-model", messages=user())
    error = assert_openai_error(caught.value.response, 404)
    assert "no-such-model" in error["message"]


def test_unknown_model_on_embeddings_raises_not_found(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.embeddings.create(model="no-such-model", input="hello")
    assert_openai_error(caught.value.response, 404)


BAD_REQUESTS = [
    pytest.param({"model": OPENAI_MODEL, "messages": openai.omit}, "messages", id="missing-messages"),
    pytest.param({"model": OPENAI_MODEL, "messages": []}, "messages", id="empty-messages"),
    pytest.param({"model": OPENAI_MODEL, "messages": "hello"}, "messages", id="messages-not-a-list"),
    pytest.param(
        {"model": OPENAI_MODEL, "messages": [{"role": "wizard", "content": "hi"}]}, "messages", id="bad-role"
    ),
    pytest.param({"model": openai.omit, "messages": user()}, "model", id="missing-model"),
    pytest.param({"model": OPENAI_MODEL, "messages": user(), "temperature": "hot"}, "temperature", id="temperature-type"),
    pytest.param({"model": OPENAI_MODEL, "messages": user(), "temperature": 3.5}, "temperature", id="temperature-range"),
]


@pytest.mark.parametrize("kwargs,param", BAD_REQUESTS)
def test_invalid_request_raises_bad_request_naming_the_param(
    oai: openai.OpenAI, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(**kwargs)
    error = assert_openai_error(caught.value.response, 400)
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["param"], str), f"param not named: {error}"
    # A nested field is named from its top field down, e.g. "messages[0].role".
    assert error["param"] == param or error["param"].startswith((param + ".", param + "[")), error
    assert caught.value.param == error["param"]


# -------------------------------------------------------------- embeddings


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7) for x, y in zip(a, b))


def test_embeddings_default_base64_decodes_to_the_float_vector(oai: openai.OpenAI, gateway, http) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    default = oai.embeddings.create(model=OPENAI_MODEL, input=text)
    assert default.object == "list"
    assert default.model == OPENAI_MODEL
    assert len(default.data) == 1 and default.data[0].index == 0
    vec = default.data[0].embedding
    assert isinstance(vec, list) and len(vec) > 0
    assert all(isinstance(x, float) and math.isfinite(x) for x in vec)
    assert any(x != 0.0 for x in vec)
    assert default.usage.prompt_tokens > 0

    floats = oai.embeddings.create(model=OPENAI_MODEL, input=text, encoding_format="float")
    assert _close(floats.data[0].embedding, vec)

    # The wire format itself: base64 of little-endian float32.
    raw = http.post(
        gateway.url + "/v1/embeddings", json={"model": OPENAI_MODEL, "input": text, "encoding_format": "base64"}
    )
    assert raw.status_code == 200, raw.text
    encoded = raw.json()["data"][0]["embedding"]
    assert isinstance(encoded, str), "encoding_format=base64 answered with something other than a string"
    blob = base64.b64decode(encoded)
    assert len(blob) == 4 * len(vec)
    assert _close(list(struct.unpack(f"<{len(vec)}f", blob)), floats.data[0].embedding)


def test_embeddings_batch_returns_one_vector_per_input_in_order(oai: openai.OpenAI) -> None:
    inputs = ["alpha", "bravo", "alpha"]
    r = oai.embeddings.create(model=OPENAI_MODEL, input=inputs, encoding_format="float")
    assert [d.index for d in r.data] == [0, 1, 2]
    dims = {len(d.embedding) for d in r.data}
    assert len(dims) == 1 and dims.pop() > 0
    assert _close(r.data[0].embedding, r.data[2].embedding), "same input, different vector"
    assert not _close(r.data[0].embedding, r.data[1].embedding), "different inputs, same vector"


# ------------------------------------------------------------------- tools


def _stream_tool_calls(oai: openai.OpenAI, model: str, messages: list[dict[str, Any]]) -> tuple[list[dict], str | None]:
    calls: dict[int, dict[str, str]] = {}
    finish: str | None = None
    with oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], stream=True) as s:
        for chunk in s:
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or []:
                    slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                    if delta.id:
                        slot["id"] = delta.id
                    if delta.function and delta.function.name:
                        slot["name"] += delta.function.name
                    if delta.function and delta.function.arguments:
                        slot["arguments"] += delta.function.arguments
                if choice.finish_reason is not None:
                    finish = choice.finish_reason
    return [calls[i] for i in sorted(calls)], finish


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_tool_call_round_trip(oai: openai.OpenAI, model: str) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris right now?"}]
    r = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls, f"no tool call: {choice.message}"
    call = choice.message.tool_calls[0]
    assert call.id
    assert call.type == "function"
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args, dict)
    assert isinstance(args.get("city"), str) and args["city"], f"required argument missing: {args}"

    streamed, stream_finish = _stream_tool_calls(oai, model, messages)
    assert stream_finish == "tool_calls"
    assert len(streamed) == len(choice.message.tool_calls)
    assert streamed[0]["id"]
    assert streamed[0]["name"] == "get_weather"
    assert json.loads(streamed[0]["arguments"]) == args

    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 18, "sky": "clear"})},
    ]
    final = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    answer = final.choices[0]
    assert answer.finish_reason == "stop"
    assert not answer.message.tool_calls
    assert answer.message.content and answer.message.content.strip()


# ------------------------------------------------------------- translation


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_openai_client_on_anthropic_model_gets_the_anthropic_api_text(oai: openai.OpenAI, ant, stream: bool) -> None:
    via_openai, finish = openai_text(oai, ANTHROPIC_MODEL, stream=stream, max_tokens=200)
    native, stop_reason = anthropic_text(ant, ANTHROPIC_MODEL, stream=False, max_tokens=200)
    assert native
    assert via_openai == native
    assert {"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop"}[stop_reason] == finish


def test_an_unknown_path_names_the_closest_route_in_the_sdk_error(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.post("/chat/completion", cast_to=httpx.Response, body={"model": OPENAI_MODEL, "messages": user()})
    error = assert_openai_error(caught.value.response, 404)
    assert error["code"] == "unknown_url"
    assert "Did you mean /v1/chat/completions?" in error["message"]
    assert "Did you mean /v1/chat/completions?" in str(caught.value)


def test_an_unknown_model_lists_the_models_to_use(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="chat-opnai", messages=user())
    error = assert_openai_error(caught.value.response, 404)
    assert "Did you mean 'chat-openai'?" in error["message"]
    assert "Available models: chat-openai, chat-anthropic." in str(caught.value)
