"""Translation between the two client APIs and the two upstream protocols, streamed and not,
driven by the official SDKs over real sockets: system-only conversations, images, tool_choice,
JSON output, reasoning, prompt usage in message_start, token counting, and the validation
refusals as the SDKs raise them."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from conftest import ANTHROPIC_MODEL, OPENAI_MODEL, PUBLIC_MODELS, PROMPT, anthropic_text, openai_text, user

STREAM = [pytest.param(False, id="whole"), pytest.param(True, id="stream")]
# A 1x1 transparent PNG.
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
IMAGE_URL = "https://example.com/lighthouse.png"


def tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }


def openai_tool_calls(client: openai.OpenAI, model: str, stream: bool, **kw: Any) -> tuple[list[str], str, str | None]:
    """(names of the tools called, text, finish_reason), streamed or not."""
    if not stream:
        r = client.chat.completions.create(model=model, **kw)
        message = r.choices[0].message
        return [c.function.name for c in message.tool_calls or []], message.content or "", r.choices[0].finish_reason
    names: list[str] = []
    text: list[str] = []
    finish = None
    with client.chat.completions.create(model=model, stream=True, **kw) as s:
        for chunk in s:
            for choice in chunk.choices:
                for call in choice.delta.tool_calls or []:
                    if call.function and call.function.name:
                        names.append(call.function.name)
                if choice.delta.content:
                    text.append(choice.delta.content)
                finish = choice.finish_reason or finish
    return names, "".join(text), finish


# ------------------------------------------------------- system-only conversations


SYSTEM_ONLY = [
    pytest.param([{"role": "system", "content": "Describe a lighthouse at dawn."}], id="system"),
    pytest.param(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Describe a lighthouse at dawn."}]},
        ],
        id="system+developer",
    ),
]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("messages", SYSTEM_ONLY)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_a_conversation_of_only_system_text_is_answered(oai: openai.OpenAI, model: str, messages: list, stream: bool) -> None:
    text, finish = openai_text(oai, model, stream, messages=messages)
    assert text.strip(), "empty answer"
    assert finish == "stop"


def test_a_system_only_answer_is_the_same_streamed_or_not(oai: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "Describe a lighthouse at dawn."}]
    assert openai_text(oai, ANTHROPIC_MODEL, False, messages=messages) == openai_text(oai, ANTHROPIC_MODEL, True, messages=messages)


# ------------------------------------------------------------------------ images


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_openai_image_parts_with_data_and_https_urls_reach_either_upstream(oai: openai.OpenAI, model: str, stream: bool) -> None:
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is in these two pictures?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
        {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "low"}},
    ]}]
    text, finish = openai_text(oai, model, stream, messages=messages)
    assert text and finish == "stop"


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_anthropic_image_blocks_with_base64_and_url_sources_reach_either_upstream(
    ant: anthropic.Anthropic, model: str, stream: bool
) -> None:
    messages = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
        {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
        {"type": "text", "text": "What is in these two pictures?"},
    ]}]
    text, stop = anthropic_text(ant, model, stream, max_tokens=1024, messages=messages)
    assert text and stop == "end_turn"


def test_an_image_the_reference_refuses_is_refused_before_any_upstream(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=ANTHROPIC_MODEL, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "ultra"}}]}])
    assert caught.value.param == "messages[0].content[0].image_url.detail"
    with pytest.raises(anthropic.BadRequestError) as refused:
        ant.messages.create(model=OPENAI_MODEL, max_tokens=10, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG_BASE64}}]}])
    assert refused.value.body["error"]["message"].startswith("messages.0.content.0.source.media_type:")


# ------------------------------------------------------------------- tool_choice


TOOLS = [tool("get_weather"), tool("get_tides")]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
@pytest.mark.parametrize(
    "choice,called",
    [
        pytest.param("auto", ["get_weather"], id="auto"),
        pytest.param("none", [], id="none"),
        pytest.param("required", ["get_weather"], id="required"),
        pytest.param({"type": "function", "function": {"name": "get_tides"}}, ["get_tides"], id="named"),
    ],
)
def test_tool_choice_is_honoured_on_either_upstream(oai: openai.OpenAI, model: str, stream: bool, choice: Any, called: list) -> None:
    names, text, finish = openai_tool_calls(oai, model, stream, messages=user("Weather in Oslo?"), tools=TOOLS, tool_choice=choice)
    assert names == called
    if called:
        assert finish == "tool_calls"
    else:
        assert text and finish == "stop"


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
@pytest.mark.parametrize(
    "choice,called",
    [
        pytest.param({"type": "auto"}, ["get_weather"], id="auto"),
        pytest.param({"type": "none"}, [], id="none"),
        pytest.param({"type": "any"}, ["get_weather"], id="any"),
        pytest.param({"type": "tool", "name": "get_tides"}, ["get_tides"], id="tool"),
    ],
)
def test_anthropic_tool_choice_is_honoured_on_either_upstream(ant: anthropic.Anthropic, model: str, stream: bool, choice: Any, called: list) -> None:
    tools = [{"name": t["function"]["name"], "description": t["function"]["description"], "input_schema": t["function"]["parameters"]} for t in TOOLS]
    kw = dict(model=model, max_tokens=1024, messages=user("Weather in Oslo?"), tools=tools, tool_choice=choice)
    if stream:
        with ant.messages.stream(**kw) as s:
            message = s.get_final_message()
    else:
        message = ant.messages.create(**kw)
    assert [b.name for b in message.content if b.type == "tool_use"] == called
    assert message.stop_reason == ("tool_use" if called else "end_turn")


# ------------------------------------------------------------------- JSON output


SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "lamps": {"type": "integer"}},
    "required": ["summary", "lamps"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_json_mode_answers_one_json_object_on_either_upstream(oai: openai.OpenAI, model: str, stream: bool) -> None:
    text, _ = openai_text(oai, model, stream, messages=user("Describe a lighthouse as JSON."), response_format={"type": "json_object"})
    assert isinstance(json.loads(text), dict), text


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_json_schema_answers_fit_the_schema_on_either_upstream(oai: openai.OpenAI, model: str, stream: bool) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "lighthouse", "schema": SCHEMA, "strict": True}}
    text, _ = openai_text(oai, model, stream, messages=user("Describe a lighthouse."), response_format=fmt)
    answer = json.loads(text)
    assert set(answer) == {"summary", "lamps"}, answer
    assert isinstance(answer["summary"], str) and isinstance(answer["lamps"], int), answer


# --------------------------------------------------------------------- reasoning


def openai_reasoning(client: openai.OpenAI, model: str, stream: bool, **kw: Any) -> tuple[str, str]:
    """(reasoning_content, content), streamed or not."""
    if not stream:
        message = client.chat.completions.create(model=model, messages=user(), **kw).choices[0].message
        return (message.model_extra or {}).get("reasoning_content") or "", message.content or ""
    reasoning: list[str] = []
    text: list[str] = []
    with client.chat.completions.create(model=model, messages=user(), stream=True, **kw) as s:
        for chunk in s:
            for choice in chunk.choices:
                reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
                text.append(choice.delta.content or "")
    return "".join(reasoning), "".join(text)


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_reasoning_effort_brings_reasoning_content_from_either_upstream(oai: openai.OpenAI, model: str, stream: bool) -> None:
    # High effort's budget fits under 3000 tokens only if it is fitted under max_tokens, as Anthropic requires.
    reasoning, text = openai_reasoning(oai, model, stream, reasoning_effort="high", max_completion_tokens=3000)
    assert reasoning.startswith("The question is about"), reasoning
    plain, _ = openai_text(oai, model, False, max_completion_tokens=3000)
    assert text == plain, "reasoning leaked into the answer's text"


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_anthropic_thinking_comes_back_as_a_thinking_block_from_either_upstream(ant: anthropic.Anthropic, model: str, stream: bool) -> None:
    kw = dict(model=model, max_tokens=4000, messages=user(), thinking={"type": "enabled", "budget_tokens": 2048})
    if stream:
        with ant.messages.stream(**kw) as s:
            deltas = [e.delta.type for e in s if e.type == "content_block_delta"]
            message = s.get_final_message()
        assert deltas.index("thinking_delta") < deltas.index("signature_delta") < deltas.index("text_delta"), deltas
    else:
        message = ant.messages.create(**kw)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking.startswith("The question is about")
    if model == ANTHROPIC_MODEL:
        assert message.content[0].signature, "the upstream's signature was lost"
    # The turn goes back with its thinking block, as Anthropic requires with thinking on.
    follow = ant.messages.create(model=model, max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048}, messages=[
        *user(), {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
        {"role": "user", "content": "And at night?"}])
    assert follow.stop_reason == "end_turn"


def test_a_thinking_budget_not_below_max_tokens_is_refused_in_anthropic_shape(ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ant.messages.create(model=ANTHROPIC_MODEL, max_tokens=2000, messages=user(), thinking={"type": "enabled", "budget_tokens": 2000})
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "thinking.budget_tokens" in caught.value.body["error"]["message"]


# ------------------------------------------------------- usage in message_start


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_message_start_carries_the_prompts_input_tokens(ant: anthropic.Anthropic, model: str) -> None:
    whole = ant.messages.create(model=model, max_tokens=1024, messages=user())
    with ant.messages.create(model=model, max_tokens=1024, messages=user(), stream=True) as stream:
        events = list(stream)
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    assert start.message.usage.input_tokens > 0
    assert delta.usage.input_tokens == whole.usage.input_tokens
    if model == ANTHROPIC_MODEL:
        # The upstream's own count, announced before the first token.
        assert start.message.usage.input_tokens == whole.usage.input_tokens


# ------------------------------------------------------------------ count_tokens


def test_count_tokens_on_an_anthropic_upstream_is_the_upstreams_count(ant: anthropic.Anthropic) -> None:
    kw = dict(model=ANTHROPIC_MODEL, system="You are terse.", messages=user())
    counted = ant.messages.with_raw_response.count_tokens(**kw)
    assert counted.headers["x-lifeline-token-count"] == "upstream"
    assert counted.parse().input_tokens == ant.messages.create(max_tokens=1024, **kw).usage.input_tokens


def test_count_tokens_without_an_anthropic_upstream_is_an_estimate_that_grows_with_the_prompt(ant: anthropic.Anthropic) -> None:
    short = ant.messages.with_raw_response.count_tokens(model=OPENAI_MODEL, messages=user("Hello there."))
    assert short.headers["x-lifeline-token-count"] == "estimate"
    longer = ant.messages.count_tokens(model=OPENAI_MODEL, messages=user("Hello there. " * 200))
    assert 0 < short.parse().input_tokens < longer.input_tokens
    # About four characters a token.
    assert abs(longer.input_tokens - len("Hello there. " * 200) / 4) < 20


def test_each_count_is_counted_by_its_source_in_metrics(ant: anthropic.Anthropic, gateway, http) -> None:
    ant.messages.count_tokens(model=ANTHROPIC_MODEL, messages=user())
    ant.messages.count_tokens(model=OPENAI_MODEL, messages=user())
    text = http.get(gateway.url + "/metrics").text
    for model, source in ((ANTHROPIC_MODEL, "upstream"), (OPENAI_MODEL, "estimate")):
        assert any(
            line.startswith("lifeline_token_counts_total{") and f'model="{model}"' in line and f'source="{source}"' in line
            and float(line.rsplit(" ", 1)[1]) >= 1
            for line in text.splitlines()
        ), f"no count from {source} for {model}"


def test_count_tokens_refuses_bad_input_and_unknown_models_in_anthropic_shape(ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ant.messages.count_tokens(model=ANTHROPIC_MODEL, messages=[{"role": "robot", "content": "hi"}])
    assert caught.value.body["error"]["message"].startswith("messages.0.role:")
    with pytest.raises(anthropic.NotFoundError):
        ant.messages.count_tokens(model="no-such-model", messages=user())


# ------------------------------------------------------------- the stream helper


@pytest.mark.parametrize("model", PUBLIC_MODELS)
def test_the_stream_helper_gives_the_whole_answer_its_usage_and_stop_reason(ant: anthropic.Anthropic, model: str) -> None:
    whole = ant.messages.create(model=model, max_tokens=1024, messages=user())
    with ant.messages.stream(model=model, max_tokens=1024, messages=user()) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1, "the answer came in one piece"
    assert "".join(pieces) == "".join(b.text for b in whole.content if b.type == "text")
    assert final.stop_reason == "end_turn" and final.model == model
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.output_tokens == whole.usage.output_tokens


# ------------------------------------------------------- refusals as SDKs see them


OPENAI_REFUSALS = [
    pytest.param({"metadata": {"k": "v"}}, "metadata", id="metadata-without-store"),
    pytest.param({"store": True, "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", id="metadata-17-keys"),
    pytest.param({"store": True, "metadata": {"k": "v" * 513}}, "metadata.k", id="metadata-value-513"),
    pytest.param({"logit_bias": {"50256": 101}}, "logit_bias", id="logit-bias-101"),
    pytest.param({"parallel_tool_calls": True}, "parallel_tool_calls", id="parallel-tool-calls-without-tools"),
    pytest.param({"max_tokens": 10, "max_completion_tokens": 10}, "max_tokens", id="max-tokens-twice"),
    pytest.param({"service_tier": "turbo"}, "service_tier", id="service-tier-enum"),
    pytest.param({"modalities": ["video"]}, "modalities[0]", id="modalities-enum"),
    pytest.param({"extra_body": {"store": "yes"}}, "store", id="store-type"),
]


@pytest.mark.parametrize("kwargs,param", OPENAI_REFUSALS)
def test_openai_refusals_name_the_param_as_openai_does(oai: openai.OpenAI, kwargs: dict, param: str) -> None:
    # On the model whose upstreams speak Anthropic's protocol, which would not have refused them.
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=ANTHROPIC_MODEL, messages=user(), **kwargs)
    assert caught.value.param == param
    assert caught.value.body["type"] == "invalid_request_error"
    assert caught.value.response.headers.get("x-lifeline-attempts") is None, "a refused request reached an upstream"


def test_a_valid_neighbour_of_each_refusal_is_answered(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(
        model=OPENAI_MODEL, messages=user(), store=True, metadata={f"k{i}": "v" * 512 for i in range(16)},
        logit_bias={"50256": 100}, tools=TOOLS, parallel_tool_calls=False, tool_choice="none",
        max_completion_tokens=1024, service_tier="flex", modalities=["text"],
    )
    assert r.choices[0].message.content


def test_an_unknown_parameter_is_passed_through_to_an_openai_upstream(oai: openai.OpenAI) -> None:
    text, finish = openai_text(oai, OPENAI_MODEL, False, extra_body={"frobnicate": {"level": 3}})
    assert text and finish == "stop"


def test_anthropic_refusals_are_worded_as_anthropic_does(ant: anthropic.Anthropic) -> None:
    for kw, prefix in [
        ({"temperature": 1.5}, "temperature:"),
        ({"top_k": -1}, "top_k:"),
        ({"metadata": {"user_id": "u" * 257}}, "metadata.user_id:"),
        ({"stop_sequences": [1]}, "stop_sequences.0:"),
    ]:
        with pytest.raises(anthropic.BadRequestError) as caught:
            ant.messages.create(model=ANTHROPIC_MODEL, max_tokens=10, messages=user(), extra_body=kw)
        assert caught.value.body["error"]["type"] == "invalid_request_error"
        assert caught.value.body["error"]["message"].startswith(prefix), caught.value.body


def test_an_anthropic_tool_choice_without_tools_reaches_an_openai_upstream_without_it(ant: anthropic.Anthropic) -> None:
    # Anthropic's reference allows it; OpenAI's refuses tool_choice without tools, so it is not sent.
    text, stop = anthropic_text(ant, OPENAI_MODEL, False, max_tokens=1024, tool_choice={"type": "auto"})
    assert text and stop == "end_turn"
