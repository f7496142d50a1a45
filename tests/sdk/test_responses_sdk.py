"""OpenAI's Responses API (`POST /v1/responses`), driven by the official OpenAI SDK's
`client.responses.create`, `client.responses.stream` and `client.responses.retrieve`.

`chat-openai` is served by OpenAI-protocol simulator deployments and `chat-anthropic` by
Anthropic-protocol ones, so every parametrized test runs through both upstream translations.
The simulator is deterministic, so a Responses answer must equal the chat completion of the
same conversation.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from conftest import (
    ADMIN_TOKEN,
    DEPLOYMENTS,
    PROMPT,
    PUBLIC_MODELS,
    httpx,
    openai_client,
    openai_text,
    user,
)

MODELS = pytest.mark.parametrize("model", PUBLIC_MODELS)
MAX_OUTPUT = 200
INSTRUCTIONS = "Answer as a ship's captain would."

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
WEATHER_QUESTION = "What is the weather in Paris right now?"


def chat_text(client: openai.OpenAI, model: str, messages: list[dict[str, Any]]) -> str:
    text, finish = openai_text(client, model, False, messages=messages, max_tokens=MAX_OUTPUT)
    assert finish == "stop"
    return text


def stream_text(client: openai.OpenAI, model: str, **kw: Any) -> tuple[str, Any]:
    """(the text deltas joined, the final response) through the SDK's stream helper."""
    kw.setdefault("max_output_tokens", MAX_OUTPUT)
    with client.responses.stream(model=model, **kw) as s:
        deltas = [event.delta for event in s if event.type == "response.output_text.delta"]
        final = s.get_final_response()
    return "".join(deltas), final


def assert_completed(r: Any, model: str) -> None:
    assert r.id.startswith("resp_"), r.id
    assert r.object == "response"
    assert r.status == "completed", r
    assert r.model == model
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


# ------------------------------------------------------------- create


@MODELS
def test_string_input_is_answered_like_the_same_chat_completion(oai: openai.OpenAI, model: str) -> None:
    r = oai.responses.create(model=model, input=PROMPT, max_output_tokens=MAX_OUTPUT)
    assert_completed(r, model)
    assert [item.type for item in r.output] == ["message"]
    message = r.output[0]
    assert message.role == "assistant" and message.status == "completed"
    assert [part.type for part in message.content] == ["output_text"]
    assert r.output_text == chat_text(oai, model, user())


@MODELS
def test_item_input_and_instructions_are_the_system_prompt_and_messages(oai: openai.OpenAI, model: str) -> None:
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]}]
    r = oai.responses.create(model=model, input=items, instructions=INSTRUCTIONS, max_output_tokens=MAX_OUTPUT)
    assert_completed(r, model)
    assert r.instructions == INSTRUCTIONS
    assert r.output_text == chat_text(oai, model, [{"role": "system", "content": INSTRUCTIONS}, *user()])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@MODELS
def test_input_of_only_instructions_and_system_text_is_answered(oai: openai.OpenAI, model: str, stream: bool) -> None:
    # No user turn at all: Anthropic answers only conversations that open with one, so the
    # translation must supply it rather than send an empty conversation.
    items = [{"role": "developer", "content": "Describe a lighthouse at dawn."}]
    kw: dict[str, Any] = dict(input=items, instructions="You are terse.", max_output_tokens=MAX_OUTPUT)
    if stream:
        text, r = stream_text(oai, model, **kw)
        assert r.output_text == text
    else:
        r = oai.responses.create(model=model, **kw)
    assert_completed(r, model)
    assert r.output_text.strip(), r.output
    chat = [{"role": "system", "content": "You are terse."}, {"role": "developer", "content": "Describe a lighthouse at dawn."}]
    assert r.output_text == chat_text(oai, model, chat)


@MODELS
def test_tool_call_round_trip_with_function_call_output(oai: openai.OpenAI, model: str) -> None:
    asked = oai.responses.create(model=model, input=WEATHER_QUESTION, tools=[WEATHER_TOOL])
    assert asked.status == "completed"
    calls = [item for item in asked.output if item.type == "function_call"]
    assert len(calls) == 1, asked.output
    call = calls[0]
    assert call.name == "get_weather" and call.call_id
    assert "city" in json.loads(call.arguments)
    assert asked.tools[0].name == "get_weather"

    result = json.dumps({"temperature_c": 18, "sky": "clear"})
    items = [
        {"role": "user", "content": WEATHER_QUESTION},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": result},
    ]
    answered = oai.responses.create(model=model, input=items, tools=[WEATHER_TOOL])
    assert answered.status == "completed"
    assert not [item for item in answered.output if item.type == "function_call"]
    assert answered.output_text

    # The same round trip through the stored conversation gives the same answer.
    continued = oai.responses.create(
        model=model, previous_response_id=asked.id, tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": result}],
    )
    assert continued.output_text == answered.output_text
    assert continued.previous_response_id == asked.id


@MODELS
def test_previous_response_id_continues_the_stored_conversation(oai: openai.OpenAI, model: str) -> None:
    first = oai.responses.create(model=model, input="My ship is called the Lantern.", max_output_tokens=MAX_OUTPUT)
    second = oai.responses.create(model=model, previous_response_id=first.id, input=PROMPT, max_output_tokens=MAX_OUTPUT)
    assert_completed(second, model)
    assert second.output_text == chat_text(oai, model, [
        {"role": "user", "content": "My ship is called the Lantern."},
        {"role": "assistant", "content": first.output_text},
        *user(),
    ])
    retrieved = oai.responses.retrieve(first.id)
    assert retrieved.id == first.id and retrieved.output_text == first.output_text


def test_store_false_keeps_nothing_to_retrieve_or_continue(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model=PUBLIC_MODELS[0], input=PROMPT, store=False, max_output_tokens=MAX_OUTPUT)
    assert r.status == "completed" and r.output_text
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(r.id)
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(model=PUBLIC_MODELS[0], input=PROMPT, previous_response_id=r.id)
    assert refused.value.param == "previous_response_id"


def test_a_stored_response_is_only_its_creators(gateway) -> None:
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        secrets = []
        for name in ("responses-owner", "responses-other"):
            created = c.post("/admin/v1/keys", headers=auth, json={"name": name})
            assert created.status_code == 201, created.text
            secrets.append(created.json()["secret"])
    owner, other = (openai_client(gateway.url).with_options(api_key=secret) for secret in secrets)
    r = owner.responses.create(model=PUBLIC_MODELS[0], input=PROMPT, max_output_tokens=MAX_OUTPUT)
    assert owner.responses.retrieve(r.id).output_text == r.output_text
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(r.id)
    with pytest.raises(openai.BadRequestError) as refused:
        other.responses.create(model=PUBLIC_MODELS[0], input=PROMPT, previous_response_id=r.id)
    assert refused.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        openai_client(gateway.url).responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(r.id)
    owner.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        owner.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        owner.responses.delete(r.id)


@pytest.mark.parametrize("body,param", [
    ({"model": PUBLIC_MODELS[0]}, "input"),
    ({"model": PUBLIC_MODELS[0], "input": 5}, "input"),
    ({"input": PROMPT}, "model"),
    ({"model": PUBLIC_MODELS[0], "input": PROMPT, "max_output_tokens": "many"}, "max_output_tokens"),
    ({"model": PUBLIC_MODELS[0], "input": PROMPT, "store": "yes"}, "store"),
    ({"model": PUBLIC_MODELS[0], "input": PROMPT, "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": PUBLIC_MODELS[0], "input": [{"role": "user"}]}, "input[0].content"),
    ({"model": PUBLIC_MODELS[0], "input": PROMPT, "previous_response_id": "resp_unknown"}, "previous_response_id"),
    ({"model": PUBLIC_MODELS[0], "input": PROMPT, "surprise": True}, "surprise"),
    ({"model": "missing-model", "input": PROMPT}, "model"),
])
def test_bad_requests_get_openais_error_shape_naming_the_param(gateway, http, body: dict[str, Any], param: str) -> None:
    r = http.post(gateway.url + "/v1/responses", json=body)
    assert r.status_code == (404 if body.get("model") == "missing-model" else 400), r.text
    error = r.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param


def test_sdk_raises_bad_request_with_the_param(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(model=PUBLIC_MODELS[0], input=PROMPT, max_output_tokens=5)
    assert refused.value.param == "max_output_tokens"
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve("resp_0000000000000000")


# ------------------------------------------------------------- stream


@MODELS
def test_stream_deltas_assemble_to_the_non_stream_text(oai: openai.OpenAI, model: str) -> None:
    reference = oai.responses.create(model=model, input=PROMPT, max_output_tokens=MAX_OUTPUT)
    text, final = stream_text(oai, model, input=PROMPT)
    assert text == reference.output_text
    assert_completed(final, model)
    assert final.output_text == text
    assert oai.responses.retrieve(final.id).output_text == text


@MODELS
def test_stream_events_come_in_openais_order_with_sequence_numbers(gateway, http, model: str) -> None:
    body = {"model": model, "input": PROMPT, "max_output_tokens": MAX_OUTPUT, "stream": True}
    with http.stream("POST", gateway.url + "/v1/responses", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[len("data:"):]) for line in r.iter_lines() if line.startswith("data:")]
    types = [e["type"] for e in events]
    assert types[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["usage"]["output_tokens"] > 0
    assert done["output"][0]["content"][0]["text"] == "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


@MODELS
def test_streamed_tool_call_sends_argument_events_and_matches_the_non_stream_call(oai: openai.OpenAI, model: str) -> None:
    reference = oai.responses.create(model=model, input=WEATHER_QUESTION, tools=[WEATHER_TOOL])
    expected = [item for item in reference.output if item.type == "function_call"]
    with oai.responses.stream(model=model, input=WEATHER_QUESTION, tools=[WEATHER_TOOL]) as s:
        types = [event.type for event in s]
        final = s.get_final_response()
    assert "response.function_call_arguments.done" in types
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, c.arguments) for c in calls] == [(c.name, c.arguments) for c in expected]


# ------------------------------------------------- failover and resumption


@MODELS
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_a_failing_primary_fails_over_unseen(gateway, fresh_gateway, sim_a_control, model: str, stream: bool) -> None:
    reference = openai_client(gateway.url).responses.create(model=model, input=PROMPT, max_output_tokens=MAX_OUTPUT)
    sim_a_control.set(error_rate=1.0, error_status=500)
    client = openai_client(fresh_gateway.url)
    raw = client.responses.with_raw_response.create(model=model, input=PROMPT, max_output_tokens=MAX_OUTPUT, stream=stream)
    assert raw.headers.get("x-lifeline-deployment") == DEPLOYMENTS[model][1]
    assert raw.headers.get("x-lifeline-attempts") == "2"
    if not stream:
        assert raw.parse().output_text == reference.output_text
        return
    with raw.parse() as s:
        events = list(s)
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == reference.output_text


@MODELS
def test_a_stream_cut_mid_way_is_resumed_with_identical_text(gateway, fresh_gateway, sim_a_control, http, model: str) -> None:
    reference, _ = stream_text(openai_client(gateway.url), model, input=PROMPT)
    assert len(reference.split()) > 10, f"reference too short to cut after 5 tokens: {reference!r}"
    sim_a_control.set(disconnect_after_tokens=5)
    text, final = stream_text(openai_client(fresh_gateway.url), model, input=PROMPT)
    assert text == reference
    assert final.status == "completed" and final.output_text == reference

    body = {"model": model, "input": PROMPT, "max_output_tokens": MAX_OUTPUT, "stream": True}
    with http.stream("POST", fresh_gateway.url + "/v1/responses", json=body) as r:
        lines = list(r.iter_lines())
    assert len([l for l in lines if l.startswith(": lifeline resumed")]) == 1, "\n".join(lines[:40])
    completed = [l for l in lines if l.startswith("data:") and '"response.completed"' in l]
    assert len(completed) == 1


def test_a_stream_that_cannot_be_resumed_ends_with_error_and_response_failed(
    fresh_gateway, sim_a_control, sim_b_control, http
) -> None:
    sim_a_control.set(disconnect_after_tokens=5)
    sim_b_control.set(disconnect_after_tokens=5)
    body = {"model": PUBLIC_MODELS[0], "input": PROMPT, "max_output_tokens": MAX_OUTPUT, "stream": True}
    with http.stream("POST", fresh_gateway.url + "/v1/responses", json=body) as r:
        assert r.status_code == 200
        events = [json.loads(line[len("data:"):]) for line in r.iter_lines() if line.startswith("data:")]
    types = [e["type"] for e in events]
    assert types[0] == "response.created" and "response.output_text.delta" in types
    assert types[-2:] == ["error", "response.failed"], types
    assert "response.completed" not in types
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    assert failed["output"][0]["status"] == "incomplete"

    with openai_client(fresh_gateway.url).responses.stream(
        model=PUBLIC_MODELS[0], input=PROMPT, max_output_tokens=MAX_OUTPUT
    ) as s:
        seen = [event.type for event in s]
        with pytest.raises(RuntimeError):
            s.get_final_response()
    assert seen[-1] == "response.failed"


def test_responses_count_in_the_metrics_under_their_own_route(gateway, oai: openai.OpenAI, http) -> None:
    oai.responses.create(model=PUBLIC_MODELS[0], input=PROMPT, max_output_tokens=MAX_OUTPUT)
    metrics = http.get(gateway.url + "/metrics").text
    assert f'lifeline_requests_total{{route="responses",model="{PUBLIC_MODELS[0]}",status="200"}}' in metrics
