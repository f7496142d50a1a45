"""The answer cache end to end: the official SDKs against a gateway whose models set `cache:`,
over simulators on loopback. Hits in both APIs streamed and not, isolation by key, stale
answers while every deployment fails, purge by the admin API and the CLI, and the metrics."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from typing import Any, Iterator

import pytest

from conftest import (
    ADMIN_TOKEN,
    ANTHROPIC_MODEL,
    DEPLOYMENTS,
    OPENAI_MODEL,
    GatewayFactory,
    LifelineProcess,
    _process_env,
    anthropic_client,
    gateway_config,
    httpx,
    openai_client,
)

import anthropic  # noqa: E402
import openai  # noqa: E402

AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
MAX_TOKENS = 40


def cached_config(factory: GatewayFactory, cache: str) -> str:
    return gateway_config(factory.sim_a.port, factory.sim_b.port).replace(
        "    deployments:\n", f"    cache: {cache}\n    deployments:\n")


@pytest.fixture(scope="module")
def cached(gateway_factory: GatewayFactory) -> Iterator[LifelineProcess]:
    p = gateway_factory.start("cache-gateway", config_text=cached_config(gateway_factory, "{ttl_s: 300, max_entries: 100}"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def short_lived(gateway_factory: GatewayFactory) -> Iterator[LifelineProcess]:
    """Entries fresh for 1 s, then kept 600 s for outages."""
    p = gateway_factory.start("cache-stale-gateway",
                              config_text=cached_config(gateway_factory, "{ttl_s: 1, serve_stale_on_error_s: 600}"))
    yield p
    p.stop()


def question() -> list[dict[str, str]]:
    """A prompt no other test asks, so each test starts with a cold entry."""
    return [{"role": "user", "content": f"Explain tide tables to a new sailor ({uuid.uuid4().hex[:8]})."}]


def openai_ask(client: openai.OpenAI, messages: list[dict[str, str]], stream: bool, **kw: Any) -> tuple[str, httpx.Headers]:
    kw.setdefault("temperature", 0)
    if not stream:
        raw = client.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=messages, max_tokens=MAX_TOKENS, **kw)
        completion = raw.parse()
        assert completion.choices[0].finish_reason in ("stop", "length")
        return completion.choices[0].message.content or "", raw.headers
    parts: list[str] = []
    finishes = []
    with client.chat.completions.with_streaming_response.create(
        model=OPENAI_MODEL, messages=messages, max_tokens=MAX_TOKENS, stream=True, **kw
    ) as raw:
        headers = raw.headers
        for chunk in raw.parse():
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                if choice.finish_reason is not None:
                    finishes.append(choice.finish_reason)
    assert len(finishes) == 1 and finishes[0] in ("stop", "length"), finishes
    return "".join(parts), headers


def anthropic_ask(client: anthropic.Anthropic, messages: list[dict[str, str]], stream: bool) -> tuple[str, httpx.Headers]:
    if not stream:
        raw = client.messages.with_raw_response.create(model=ANTHROPIC_MODEL, messages=messages, max_tokens=MAX_TOKENS, extra_body={"temperature": 0})
        message = raw.parse()
        assert message.stop_reason in ("end_turn", "max_tokens")
        return "".join(b.text for b in message.content if b.type == "text"), raw.headers
    with client.messages.stream(model=ANTHROPIC_MODEL, messages=messages, max_tokens=MAX_TOKENS, extra_body={"temperature": 0}) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
        headers = s.response.headers
    assert final.stop_reason in ("end_turn", "max_tokens")
    return text, headers


def create_key(base: str, name: str) -> str:
    created = httpx.post(base + "/admin/v1/keys", headers=AUTH, json={"name": name}, timeout=30)
    assert created.status_code == 201, created.text
    return created.json()["secret"]


def metric(base: str, name: str, **labels: str) -> float:
    text = httpx.get(base + "/metrics", timeout=30).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if match and match.group(1) == name and ",".join(sorted(match.group(2).split(","))) == wanted:
            return float(match.group(3))
    raise AssertionError(f"{name}{{{wanted}}} not exported")


def fail_every_deployment(base: str, model: str) -> None:
    for deployment in DEPLOYMENTS[model]:
        r = httpx.post(base + "/admin/v1/faults", headers=AUTH, timeout=30, json={
            "deployment": deployment, "kind": "error", "status": 500, "rate": 1.0, "duration_s": 120})
        assert r.status_code == 201, r.text


def clear_faults(base: str) -> None:
    assert httpx.delete(base + "/admin/v1/faults", headers=AUTH, timeout=30).status_code == 200


# ------------------------------------------------------------------ hits


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("first_streamed", [False, True])
def test_a_repeat_is_a_hit_in_both_apis_streamed_and_not_with_identical_text(
    cached: LifelineProcess, api: str, first_streamed: bool
) -> None:
    client = openai_client(cached.url) if api == "openai" else anthropic_client(cached.url)
    ask = openai_ask if api == "openai" else anthropic_ask
    messages = question()
    text, headers = ask(client, messages, stream=first_streamed)
    assert headers["x-lifeline-cache"] == "miss"
    assert text
    for stream in (False, True):
        again, headers = ask(client, messages, stream=stream)
        assert headers["x-lifeline-cache"] == "hit", stream
        assert again == text
        assert int(headers["age"]) >= 0
        assert headers["x-lifeline-attempts"] == "0"


def test_a_repeat_is_a_hit_in_the_responses_api(cached: LifelineProcess) -> None:
    client = openai_client(cached.url)
    prompt = question()[0]["content"]
    first = client.responses.with_raw_response.create(model=OPENAI_MODEL, input=prompt, temperature=0, max_output_tokens=MAX_TOKENS)
    second = client.responses.with_raw_response.create(model=OPENAI_MODEL, input=prompt, temperature=0, max_output_tokens=MAX_TOKENS)
    assert (first.headers["x-lifeline-cache"], second.headers["x-lifeline-cache"]) == ("miss", "hit")
    assert second.parse().output_text == first.parse().output_text
    # The hit is a response of its own, kept and readable like any other.
    assert client.responses.retrieve(second.parse().id).output_text == first.parse().output_text


def test_another_callers_key_misses_and_sampled_requests_bypass(cached: LifelineProcess) -> None:
    owner, other = (openai_client(cached.url).with_options(api_key=create_key(cached.url, name))
                    for name in ("cache-owner", "cache-other"))
    messages = question()
    text, headers = openai_ask(owner, messages, stream=False)
    assert headers["x-lifeline-cache"] == "miss"
    assert openai_ask(owner, messages, stream=False)[1]["x-lifeline-cache"] == "hit"
    assert openai_ask(other, messages, stream=False)[1]["x-lifeline-cache"] == "miss"
    # The anonymous caller is a caller of its own too.
    assert openai_ask(openai_client(cached.url), messages, stream=False)[1]["x-lifeline-cache"] == "miss"
    # Sampled without a seed: never looked up; with a seed it is cacheable.
    assert openai_ask(owner, messages, stream=False, temperature=0.8)[1]["x-lifeline-cache"] == "bypass"
    assert openai_ask(owner, messages, stream=False, temperature=0.8, seed=7)[1]["x-lifeline-cache"] == "miss"
    assert openai_ask(owner, messages, stream=True, temperature=0.8, seed=7)[1]["x-lifeline-cache"] == "hit"


def test_shared_entries_serve_every_caller_but_only_callers_allowed_the_model(gateway_factory: GatewayFactory) -> None:
    shared = gateway_factory.start("cache-shared-gateway", config_text=cached_config(gateway_factory, "{shared: true}"))
    try:
        messages = question()
        text, headers = openai_ask(openai_client(shared.url), messages, stream=False)
        assert headers["x-lifeline-cache"] == "miss"
        keyed = openai_client(shared.url).with_options(api_key=create_key(shared.url, "shared-reader"))
        again, headers = openai_ask(keyed, messages, stream=True)
        assert (headers["x-lifeline-cache"], again) == ("hit", text)
        created = httpx.post(shared.url + "/admin/v1/keys", headers=AUTH, json={"name": "other-model-only", "models": [ANTHROPIC_MODEL]}, timeout=30)
        assert created.status_code == 201, created.text
        restricted = openai_client(shared.url).with_options(api_key=created.json()["secret"])
        with pytest.raises(openai.PermissionDeniedError) as refused:
            openai_ask(restricted, messages, stream=False)
        assert refused.value.body["param"] == "model"
    finally:
        shared.stop()


# --------------------------------------------------------- stale-if-error


def test_with_every_deployment_failing_a_stale_entry_answers_and_an_uncached_request_gets_503(short_lived: LifelineProcess) -> None:
    client = openai_client(short_lived.url)
    anthropic_messages, openai_messages = question(), question()
    text, _ = openai_ask(client, openai_messages, stream=False)
    anthropic_text, _ = anthropic_ask(anthropic_client(short_lived.url), anthropic_messages, stream=True)
    time.sleep(1.2)  # past the 1 s TTL: the entries are stale
    fail_every_deployment(short_lived.url, OPENAI_MODEL)
    fail_every_deployment(short_lived.url, ANTHROPIC_MODEL)
    try:
        for stream in (False, True):
            again, headers = openai_ask(client, openai_messages, stream=stream)
            assert headers["x-lifeline-cache"] == "stale", stream
            assert int(headers["age"]) >= 1
            assert again == text
        again, headers = anthropic_ask(anthropic_client(short_lived.url), anthropic_messages, stream=False)
        assert (headers["x-lifeline-cache"], again) == ("stale", anthropic_text)
        with pytest.raises(openai.APIStatusError) as refused:
            openai_ask(client, question(), stream=False)
        assert refused.value.status_code == 503
        assert metric(short_lived.url, "lifeline_cache_requests_total", model=OPENAI_MODEL, result="stale") == 2
    finally:
        clear_faults(short_lived.url)


# ------------------------------------------------------------- purge, metrics


def test_purge_by_http_and_by_cli_empties_the_cache(cached: LifelineProcess, lifeline_path) -> None:
    client = openai_client(cached.url)
    messages = question()
    openai_ask(client, messages, stream=False)
    assert openai_ask(client, messages, stream=False)[1]["x-lifeline-cache"] == "hit"
    assert metric(cached.url, "lifeline_cache_entries", model=OPENAI_MODEL) >= 1

    unknown = httpx.delete(cached.url + "/admin/v1/cache", params={"model": "no-such-model"}, headers=AUTH, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "model"
    assert httpx.delete(cached.url + "/admin/v1/cache", timeout=30).status_code == 401
    purged = httpx.delete(cached.url + "/admin/v1/cache", params={"model": OPENAI_MODEL}, headers=AUTH, timeout=30)
    assert purged.status_code == 200, purged.text
    assert purged.json()["purged"] >= 1
    assert metric(cached.url, "lifeline_cache_entries", model=OPENAI_MODEL) == 0
    assert openai_ask(client, messages, stream=False)[1]["x-lifeline-cache"] == "miss"
    assert openai_ask(client, messages, stream=False)[1]["x-lifeline-cache"] == "hit"

    environment = _process_env(LIFELINE_URL=cached.url)
    done = subprocess.run([str(lifeline_path), "cache", "purge"], capture_output=True, text=True, timeout=60,
                          env=environment, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert re.match(r"purged [1-9]\d* cached answers", done.stdout), done.stdout
    assert openai_ask(client, messages, stream=False)[1]["x-lifeline-cache"] == "miss"


def test_cache_metrics_are_exported_for_cached_models_from_the_start(cached: LifelineProcess) -> None:
    for model in (OPENAI_MODEL, ANTHROPIC_MODEL):
        for result in ("hit", "miss", "stale", "bypass"):
            metric(cached.url, "lifeline_cache_requests_total", model=model, result=result)
        metric(cached.url, "lifeline_cache_evictions_total", model=model)
        metric(cached.url, "lifeline_cache_bytes", model=model)
