"""The gateway's Anthropic-compatible API, driven by the official Anthropic SDK."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from conftest import (
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    PUBLIC_MODELS,
    anthropic_text,
    httpx,
    openai_text,
    user,
)

LONG = 1024  # room for the whole answer, so it ends on its own

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}


def assert_anthropic_error(response: Any, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.get("type") == "error", f"not the Anthropic error shape: {body}"
    error = body.get("error")
    assert isinstance(error, dict), body
    assert error.get("type") == error_type, body
    assert isinstance(error.get("message"), str) and error["message"], body
    assert response.headers.get("x-request-id"), "error response without x-request-id"
    return error


def pick_stop_word(full: str) -> tuple[str, int]:
    words = full.split()
    assert len(words) >= 4, f"answer too short to cut: {full!r}"
    for w in words[len(words) // 2:] + words[1:len(words) // 2]:
        idx = full.find(w)
        if idx > 0:
            return w, idx
    raise AssertionError(f"no usable stop word in {full!r}")


# ----------------------------------------------------------------- basics


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_non_stream_message_has_text_usage_and_end_turn(ant: anthropic.Anthropic, model: str) -> None:
    m = ant.messages.create(model=model, max_tokens=LONG, messages=user())
    assert m.id
    assert m.type == "message"
    assert m.role == "assistant"
    assert m.model == model
    assert len(m.content) >= 1
    assert m.content[0].type == "text"
    assert m.content[0].text.strip()
    assert m.stop_reason == "end_turn"
    assert m.stop_sequence is None
    assert m.usage.input_tokens > 0
    assert 0 < m.usage.output_tokens <= LONG


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_stream_text_equals_the_non_stream_text(ant: anthropic.Anthropic, model: str) -> None:
    reference = ant.messages.create(model=model, max_tokens=LONG, messages=user())
    expected = "".join(b.text for b in reference.content if b.type == "text")
    assert expected

    with ant.messages.stream(model=model, max_tokens=LONG, messages=user()) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(deltas) > 1, "a stream of one delta is not streaming"
    assert "".join(deltas) == expected
    assert final.stop_reason == "end_turn"
    assert final.model == model
    assert final.usage.input_tokens == reference.usage.input_tokens
    assert final.usage.output_tokens == reference.usage.output_tokens


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_raw_stream_events_come_in_the_documented_order(ant: anthropic.Anthropic, model: str) -> None:
    with ant.messages.create(model=model, max_tokens=LONG, messages=user(), stream=True) as stream:
        events = list(stream)
    all_types = [e.type for e in events]
    types = [t for t in all_types if t != "ping"]  # the SDK drops pings itself
    assert types[:2] == ["message_start", "content_block_start"], types
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"], types
    middle = types[2:-3]
    assert middle and set(middle) == {"content_block_delta"}, types

    start = events[all_types.index("message_start")]
    assert start.message.model == model
    assert start.message.role == "assistant"
    assert start.message.content == []
    block_start = events[all_types.index("content_block_start")]
    assert block_start.index == 0 and block_start.content_block.type == "text"
    for e in events:
        if e.type == "content_block_delta":
            assert e.index == 0 and e.delta.type == "text_delta"
    delta = events[all_types.index("message_delta")]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 0
    # Input tokens may be known only at the end when the upstream speaks another
    # protocol; they must be reported in message_start or in message_delta.
    assert max(start.message.usage.input_tokens, delta.usage.input_tokens or 0) > 0


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_wire_stream_names_every_event_and_pings(gateway, http, model: str) -> None:
    body = {"model": model, "max_tokens": LONG, "messages": user(), "stream": True}
    with http.stream("POST", gateway.url + "/v1/messages", json=body) as r:
        assert r.status_code == 200
        assert r.headers.get("content-type", "").startswith("text/event-stream")
        lines = list(r.iter_lines())
    names: list[str] = []
    pending: str | None = None
    for line in lines:
        if line.startswith("event:"):
            assert pending is None, f"two event: lines without data: {line!r}"
            pending = line[len("event:"):].strip()
        elif line.startswith("data:"):
            payload = json.loads(line[len("data:"):])
            assert pending == payload["type"], f"event: {pending!r} carries data of type {payload['type']!r}"
            names.append(pending)
            pending = None
    assert "ping" in names, f"no ping event on the wire: {names}"
    assert names[0] == "message_start" and names[-1] == "message_stop", names
    assert names.count("message_start") == 1 and names.count("message_stop") == 1


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_system_prompt_and_multi_turn_are_accepted(ant: anthropic.Anthropic, model: str) -> None:
    messages = [
        {"role": "user", "content": "Hello, who keeps the lighthouse?"},
        {"role": "assistant", "content": "A keeper named Ada looks after it."},
        {"role": "user", "content": [{"type": "text", "text": "What does she do at dawn?"}]},
    ]
    for system in ("You answer briefly.", [{"type": "text", "text": "You answer briefly."}]):
        m = ant.messages.create(model=model, max_tokens=LONG, system=system, messages=messages)
        assert m.content[0].type == "text" and m.content[0].text.strip()
        assert m.stop_reason == "end_turn"
        assert m.usage.input_tokens > 0


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_assistant_prefill_is_continued(ant: anthropic.Anthropic, model: str) -> None:
    full, _ = anthropic_text(ant, model, stream=False, max_tokens=LONG)
    cut = full.find(" ", len(full) // 2)
    assert cut > 0, f"answer has no space to cut at: {full!r}"
    prefix = full[:cut]
    messages = user() + [{"role": "assistant", "content": prefix}]
    for stream in (False, True):
        text, stop_reason = anthropic_text(ant, model, stream=stream, max_tokens=LONG, messages=messages)
        assert prefix + text == full
        assert stop_reason == "end_turn"


# ----------------------------------------------------- stop conditions


@pytest.mark.parametrize("model", PUBLIC_MODELS)
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_stop_sequence_gives_stop_reason_stop_sequence(ant: anthropic.Anthropic, model: str, stream: bool) -> None:
    full, _ = anthropic_text(ant, model, stream=False, max_tokens=200)
    word, cut_at = pick_stop_word(full)
    if stream:
        with ant.messages.stream(model=model, max_tokens=200, messages=user(), stop_sequences=[word]) as s:
            text = "".join(s.text_stream)
            m = s.get_final_message()
    else:
        m = ant.messages.create(model=model, max_tokens=200, messages=user(), stop_sequences=[word])
        text = "".join(b.text for b in m.content if b.type == "text")
    assert m.stop_reason == "stop_sequence"
    assert m.stop_sequence == word
    assert text == full[:cut_at], f"stop_sequences=[{word!r}]"


@pytest.mark.parametrize("model", PUBLIC_MODELS)
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_small_max_tokens_gives_stop_reason_max_tokens(ant: anthropic.Anthropic, model: str, stream: bool) -> None:
    if stream:
        with ant.messages.stream(model=model, max_tokens=3, messages=user()) as s:
            text = "".join(s.text_stream)
            m = s.get_final_message()
    else:
        m = ant.messages.create(model=model, max_tokens=3, messages=user())
        text = "".join(b.text for b in m.content if b.type == "text")
    assert text
    assert m.stop_reason == "max_tokens"
    assert 0 < m.usage.output_tokens <= 3


# ------------------------------------------------------------------ errors


def test_unknown_model_raises_not_found_in_anthropic_shape(ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        ant.messages.create(model="no-such-model", max_tokens=10, messages=user())
    error = assert_anthropic_error(caught.value.response, 404, "not_found_error")
    assert "no-such-model" in error["message"]


BAD_INPUTS = [
    pytest.param({"max_tokens": anthropic.omit, "messages": user()}, id="missing-max-tokens"),
    pytest.param({"max_tokens": 0, "messages": user()}, id="zero-max-tokens"),
    pytest.param({"max_tokens": "many", "messages": user()}, id="max-tokens-type"),
    pytest.param({"max_tokens": 10, "messages": []}, id="empty-messages"),
    pytest.param({"max_tokens": 10, "messages": [{"role": "system", "content": "hi"}]}, id="bad-role"),
    pytest.param({"max_tokens": 10, "messages": "hello"}, id="messages-not-a-list"),
]


@pytest.mark.parametrize("model", PUBLIC_MODELS)
@pytest.mark.parametrize("kwargs", BAD_INPUTS)
def test_bad_input_raises_bad_request_in_anthropic_shape(
    ant: anthropic.Anthropic, model: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ant.messages.create(model=model, **kwargs)
    assert_anthropic_error(caught.value.response, 400, "invalid_request_error")


# ------------------------------------------------------------------- tools


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_tool_use_round_trip(ant: anthropic.Anthropic, model: str) -> None:
    question = user("What is the weather in Paris right now?")
    m = ant.messages.create(model=model, max_tokens=LONG, tools=[WEATHER_TOOL], messages=question)
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert uses, f"no tool_use block: {m.content}"
    use = uses[0]
    assert use.id
    assert use.name == "get_weather"
    assert isinstance(use.input, dict)
    assert isinstance(use.input.get("city"), str) and use.input["city"], f"required input missing: {use.input}"

    with ant.messages.stream(model=model, max_tokens=LONG, tools=[WEATHER_TOOL], messages=question) as s:
        streamed = s.get_final_message()
    assert streamed.stop_reason == "tool_use"
    streamed_uses = [b for b in streamed.content if b.type == "tool_use"]
    assert len(streamed_uses) == len(uses)
    assert streamed_uses[0].name == "get_weather"
    assert streamed_uses[0].input == use.input

    assistant_content: list[dict[str, Any]] = []
    for b in m.content:
        if b.type == "text":
            assistant_content.append({"type": "text", "text": b.text})
        elif b.type == "tool_use":
            assistant_content.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
    follow_up = question + [
        {"role": "assistant", "content": assistant_content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 degrees C, clear sky"}],
        },
    ]
    final = ant.messages.create(model=model, max_tokens=LONG, tools=[WEATHER_TOOL], messages=follow_up)
    assert final.stop_reason == "end_turn"
    assert not [b for b in final.content if b.type == "tool_use"]
    text = "".join(b.text for b in final.content if b.type == "text")
    assert text.strip()


# ------------------------------------------------------------- translation


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_anthropic_client_on_openai_model_gets_the_openai_api_text(ant: anthropic.Anthropic, oai, stream: bool) -> None:
    via_anthropic, stop_reason = anthropic_text(ant, OPENAI_MODEL, stream=stream, max_tokens=200)
    native, finish = openai_text(oai, OPENAI_MODEL, stream=False, max_tokens=200)
    assert native
    assert via_anthropic == native
    assert {"stop": "end_turn", "length": "max_tokens"}[finish] == stop_reason


def test_an_unknown_path_names_the_closest_route_in_the_sdk_error(ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        ant.post("/v1/message", cast_to=httpx.Response, body={"model": ANTHROPIC_MODEL, "max_tokens": 10, "messages": user()})
    error = assert_anthropic_error(caught.value.response, 404, "not_found_error")
    assert "Did you mean /v1/messages?" in error["message"]
    assert "Did you mean /v1/messages?" in str(caught.value)
