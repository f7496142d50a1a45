"""Lifeline in front of a real model server nobody here wrote: llama.cpp's OpenAI-compatible
server with SmolLM2-135M-Instruct, run by the gateway as a managed process.

Answers are compared with the model server's own answer to the same request (temperature 0,
so the model is deterministic), which is what shows translation and usage are right.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import anthropic
import httpx
import openai
import pytest

from conftest import (
    REQUEST_TIMEOUT_S,
    STOP_TIMEOUT_S,
    UPSTREAM_MODEL,
    Gateway,
    anthropic_sse_content,
    free_port,
    lifeline_bin,
    openai_sse_content,
    pid_alive,
    repeated_sentences,
)

T = TypeVar("T")

QUESTION = "What is the capital of France? Answer in two sentences."
STORY = "Tell me about the sun in a few sentences."


def direct(gateway: Gateway, prompt: str, max_tokens: int) -> dict[str, Any]:
    """The model server's own answer, asked directly, not through Lifeline."""
    r = httpx.post(gateway.model_url + "/v1/chat/completions", timeout=REQUEST_TIMEOUT_S, json={
        "model": UPSTREAM_MODEL, "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens, "temperature": 0,
    })
    assert r.status_code == 200, r.text
    return r.json()


def openai_client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=REQUEST_TIMEOUT_S)


def anthropic_client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0, timeout=REQUEST_TIMEOUT_S)


def counter(metrics: str, name: str, **labels: str) -> float:
    """One series' value from a Prometheus scrape (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if match and match.group(1) == name and ",".join(sorted(match.group(2).split(","))) == wanted:
            return float(match.group(3))
    return 0.0


def test_openai_sdk_answers_with_the_real_model_and_its_usage(gateway: Gateway, running: dict[str, Any]) -> None:
    expected = direct(gateway, QUESTION, 40)
    expected_text = expected["choices"][0]["message"]["content"]
    assert expected_text.strip(), "the model answered nothing"
    client = openai_client(gateway)
    params: dict[str, Any] = dict(model="local-chat", messages=[{"role": "user", "content": QUESTION}], max_tokens=40, temperature=0)

    raw = client.chat.completions.with_raw_response.create(**params)
    assert raw.headers["x-lifeline-deployment"] == "local"
    completion = raw.parse()
    assert completion.choices[0].message.content == expected_text
    assert completion.choices[0].finish_reason == expected["choices"][0]["finish_reason"]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == expected["usage"]["prompt_tokens"] > 0
    assert completion.usage.completion_tokens == expected["usage"]["completion_tokens"] > 0
    assert completion.usage.total_tokens == expected["usage"]["total_tokens"]

    parts: list[str] = []
    usage = None
    finish = None
    with client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **params) as stream:
        for chunk in stream:
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
    assert len([p for p in parts if p]) > 3, f"the answer did not stream: {parts}"
    assert "".join(parts) == expected_text
    assert finish == expected["choices"][0]["finish_reason"]
    assert usage is not None, "no usage chunk although include_usage was asked"
    assert usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert usage.completion_tokens == expected["usage"]["completion_tokens"]


def test_anthropic_sdk_answers_with_the_real_model_translated_with_its_usage(gateway: Gateway, running: dict[str, Any]) -> None:
    expected = direct(gateway, QUESTION, 40)
    expected_text = expected["choices"][0]["message"]["content"]
    expected_stop = {"length": "max_tokens", "stop": "end_turn"}[expected["choices"][0]["finish_reason"]]
    client = anthropic_client(gateway)
    # Sent as an extra field: some versions of the SDK no longer take `temperature` as an argument.
    params: dict[str, Any] = dict(model="local-chat", max_tokens=40, extra_body={"temperature": 0},
                                  messages=[{"role": "user", "content": QUESTION}])

    raw = client.messages.with_raw_response.create(**params)
    assert raw.headers["x-lifeline-deployment"] == "local"
    message = raw.parse()
    assert "".join(block.text for block in message.content if block.type == "text") == expected_text
    assert message.stop_reason == expected_stop
    assert message.usage.input_tokens == expected["usage"]["prompt_tokens"]
    assert message.usage.output_tokens == expected["usage"]["completion_tokens"]

    with client.messages.stream(**params) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == expected_text
    assert final.stop_reason == expected_stop
    assert final.usage.input_tokens == expected["usage"]["prompt_tokens"]
    assert final.usage.output_tokens == expected["usage"]["completion_tokens"]


def test_the_model_server_is_a_managed_process_in_admin_metrics_and_logs(gateway: Gateway, running: dict[str, Any]) -> None:
    described = gateway.deployment("local")
    assert described["state"] == "healthy"
    assert described["process"]["state"] == "running"
    assert described["process"]["port"] == gateway.model_port
    pid = described["process"]["pid"]
    assert pid and pid_alive(pid)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"llama_cpp.server" in cmdline and str(gateway.model_port).encode() in cmdline, cmdline
    assert httpx.get(gateway.model_url + "/v1/models", timeout=10).status_code == 200
    metrics = gateway.metrics()
    assert counter(metrics, "lifeline_process_state", deployment="local", state="running") == 1
    assert counter(metrics, "lifeline_process_state", deployment="local", state="starting") == 0
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (apt-get install prometheus)")
    lint = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
    log = gateway.log_path.read_text(errors="replace") if gateway.log_path else ""
    assert "managed process is running" in log, log[-2000:]
    assert Path(described["process"]["log_file"]).is_absolute() or (gateway.workdir / described["process"]["log_file"]).exists()


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def shared_phrases(first: str, second: str, length: int = 5) -> set[tuple[str, ...]]:
    """Runs of `length` words that occur in both texts."""
    def runs(text: str) -> set[tuple[str, ...]]:
        w = words(text)
        return {tuple(w[i:i + length]) for i in range(len(w) - length + 1)}
    return runs(first) & runs(second)


def streamed_completion_tokens(api: str, lines: list[str]) -> int:
    """Completion tokens from the stream's usage (OpenAI's usage chunk, Anthropic's message_delta)."""
    for line in reversed(lines):
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        event = json.loads(line[len("data:"):])
        if api == "openai" and event.get("usage"):
            return event["usage"]["completion_tokens"]
        if api == "anthropic" and event.get("type") == "message_delta":
            return event["usage"]["output_tokens"]
    raise AssertionError(f"no usage in the stream: {lines[-4:]}")


def while_cut(gateway: Gateway, deployment: str, after_tokens: int, stream: Callable[[], T]) -> T:
    """Runs `stream` while a drill cuts the answers of `deployment` after `after_tokens` tokens."""
    fault = gateway.admin("POST", "/faults", {"deployment": deployment, "kind": "disconnect", "after_tokens": after_tokens,
                                              "duration_s": 120})
    assert fault.status_code == 201, fault.text
    try:
        return stream()
    finally:
        gateway.admin("DELETE", f"/faults/{fault.json()['id']}")


@pytest.mark.parametrize("after_tokens", [12, 30])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_stream_cut_by_a_drill_resumes_on_the_real_model_with_nothing_said_twice(
    gateway: Gateway, running: dict[str, Any], api: str, after_tokens: int
) -> None:
    path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    content = openai_sse_content if api == "openai" else anthropic_sse_content
    body: dict[str, Any] = {"model": "local-pair", "stream": True, "max_tokens": 120, "temperature": 0,
                            "messages": [{"role": "user", "content": STORY}]}
    if api == "openai":
        body["stream_options"] = {"include_usage": True}

    def stream() -> tuple[list[str], str]:
        with httpx.stream("POST", gateway.url + path, json=body, timeout=REQUEST_TIMEOUT_S) as r:
            assert r.status_code == 200, r.read()
            assert r.headers["x-lifeline-deployment"] == "local-a"
            lines = list(r.iter_lines())
        return lines, content(lines)

    _, unfailed = stream()
    assert repeated_sentences(unfailed) == [], f"the model repeats itself even unfailed; pick another prompt: {unfailed!r}"
    lines, resumed = while_cut(gateway, "local-a", after_tokens, stream)
    comments = [line for line in lines if line.startswith(": lifeline resumed")]
    assert len(comments) == 1, lines
    match = re.match(r": lifeline resumed on (\S+) after (\d+) bytes", comments[0])
    assert match and match.group(1) == "local-b", comments
    sent = resumed.encode()[: int(match.group(2))].decode()
    after = resumed[len(sent):]
    print(f"\n{api}, cut after {after_tokens} tokens: {sent!r} + {after!r}\n  unfailed: {unfailed!r}")
    # What came before the splice is the real model's answer as far as it went.
    assert unfailed.startswith(sent) and len(sent) > 0
    # The model restarted its answer on local-b (it generated more than the part after the cut)…
    assert streamed_completion_tokens(api, lines) > after_tokens
    # …and the restart was trimmed: it does not begin again, no phrase and no sentence twice.
    assert words(after)[:4] != words(sent)[:4], f"the restart was not trimmed: {resumed!r}"
    assert shared_phrases(sent, after) == set(), f"repeated at the splice: {resumed!r}"
    assert repeated_sentences(resumed) == [], f"repeated at the splice: {resumed!r}"
    if api == "openai":
        assert [line for line in lines if line.startswith("data:")][-1] == "data: [DONE]"
    else:
        assert any('"type":"message_stop"' in line.replace(" ", "") for line in lines)


@pytest.mark.parametrize("after_tokens", [12, 30])
def test_a_stream_resumed_by_replay_on_the_real_model_loses_nothing(gateway: Gateway, running: dict[str, Any], after_tokens: int) -> None:
    """Asked the original request again at temperature 0, the model repeats what the client has;
    the repeat is dropped and the answer goes on to its own end, as unfailed."""
    body: dict[str, Any] = {"model": "local-replay", "stream": True, "max_tokens": 120, "temperature": 0,
                            "messages": [{"role": "user", "content": STORY}]}

    def stream() -> tuple[list[str], str]:
        with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT_S) as r:
            assert r.status_code == 200, r.read()
            lines = list(r.iter_lines())
        return lines, openai_sse_content(lines)

    def finish(lines: list[str]) -> str | None:
        reasons = [choice.get("finish_reason") for line in lines if line.startswith("data: {")
                   for choice in json.loads(line[len("data:"):]).get("choices", [])]
        return next((reason for reason in reversed(reasons) if reason), None)

    unfailed_lines, unfailed = stream()
    lines, resumed = while_cut(gateway, "replay-a", after_tokens, stream)
    comments = [line for line in lines if line.startswith(": lifeline resumed")]
    assert len(comments) == 1 and comments[0].startswith(": lifeline resumed on replay-b "), lines
    sent = resumed.encode()[: int(re.search(r"after (\d+) bytes", comments[0]).group(1))].decode()
    print(f"\ncut after {after_tokens} tokens: {sent!r} + {resumed[len(sent):]!r}\n  unfailed: {unfailed!r}")
    assert finish(lines) == finish(unfailed_lines), lines[-4:]
    assert repeated_sentences(resumed) == [], resumed
    # The model's prompt cache can change its arithmetic a little between runs, so the words may
    # differ late in the answer; none is lost: it is as long as the unfailed one.
    assert resumed == unfailed or len(words(resumed)) >= 0.9 * len(words(unfailed)), (resumed, unfailed)


def while_it_is_down(gateway: Gateway) -> dict[str, Any]:
    """Right after the kill: the deployment as shown once it is no longer running, and the reply to a request sent then."""
    deadline = time.monotonic() + 5
    state = gateway.deployment("local")
    while state["process"]["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.01)
        state = gateway.deployment("local")
    reply = httpx.post(gateway.url + "/v1/chat/completions", timeout=REQUEST_TIMEOUT_S,
                       json={"model": "local-chat", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]})
    return dict(state, reply=reply)


def test_killing_the_model_server_mid_stream_resumes_elsewhere_and_the_process_comes_back(
    gateway: Gateway, running: dict[str, Any]
) -> None:
    pid = running["pid"]
    restarts = running["restarts"]
    body = {"model": "local-chat", "stream": True, "max_tokens": 200, "temperature": 0,
            "messages": [{"role": "user", "content": STORY}]}
    lines: list[str] = []
    killed = False
    during: dict[str, Any] = {}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT_S) as r:
        assert r.status_code == 200
        assert r.headers["x-lifeline-deployment"] == "local"
        for line in r.iter_lines():
            lines.append(line)
            if not killed and len([x for x in lines if x.startswith("data:")]) >= 5:
                os.kill(pid, signal.SIGKILL)
                killed = True
                during = while_it_is_down(gateway)
    assert killed, f"the answer ended before the model server could be killed: {lines}"
    # While it was down the deployment took no traffic: a request went to the simulator untried.
    assert during["process"]["state"] in ("restarting", "starting"), during
    assert during["state"] == during["process"]["state"]
    assert during["reply"].status_code == 200
    assert during["reply"].headers["x-lifeline-deployment"] == "sim"
    assert during["reply"].headers["x-lifeline-attempts"] == "1"
    comments = [line for line in lines if line.startswith(": lifeline resumed")]
    assert len(comments) == 1 and comments[0].startswith(": lifeline resumed on sim "), lines
    data = [line for line in lines if line.startswith("data:")]
    assert data[-1] == "data: [DONE]" and not any('"error"' in line for line in data), data[-3:]
    assert openai_sse_content(lines).strip()


    back = gateway.wait_running(timeout=120, restarts=restarts + 1)
    assert back["pid"] != pid and not pid_alive(pid)
    assert back["last_exit"] == "killed by signal 9"
    assert counter(gateway.metrics(), "lifeline_process_restarts_total", deployment="local") == restarts + 1
    again = httpx.post(gateway.url + "/v1/chat/completions", timeout=REQUEST_TIMEOUT_S,
                       json={"model": "local-chat", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]})
    assert again.status_code == 200 and again.headers["x-lifeline-deployment"] == "local"


def test_the_chat_page_answers_with_the_real_model(gateway: Gateway, running: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"Chromium not found at {executable}; install Debian's chromium package or set CHROMIUM")
    before = gateway.metrics()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(gateway.url + "/")
            page.wait_for_selector("#model option[value='local-chat']", state="attached")
            page.select_option("#model", "local-chat")
            page.fill("#prompt", QUESTION)
            page.press("#prompt", "Enter")
            answer = page.locator(".message.assistant").last
            expect(answer).to_have_attribute("data-state", "done", timeout=60_000)
            text = answer.locator(".body").evaluate("node => node.textContent")
            assert errors == []
        finally:
            browser.close()
    assert text.strip(), "the page shows an empty answer"
    after = gateway.metrics()
    served = counter(after, "lifeline_upstream_requests_total", deployment="local", outcome="ok") - counter(
        before, "lifeline_upstream_requests_total", deployment="local", outcome="ok")
    assert served == 1, "the page's answer did not come from the real model"
    assert counter(after, "lifeline_upstream_requests_total", deployment="sim", outcome="ok") == counter(
        before, "lifeline_upstream_requests_total", deployment="sim", outcome="ok")


def test_sigterm_lets_a_stream_from_the_model_finish_then_stops_the_model_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    gateway = Gateway.for_model(lifeline_bin(), tmp_path_factory.mktemp("local-model-sigterm"), free_port())
    pid = 0
    try:
        gateway.start()
        pid = gateway.process()["pid"]
        body = {"model": "local-chat", "stream": True, "max_tokens": 120, "temperature": 0,
                "messages": [{"role": "user", "content": STORY}]}
        lines: list[str] = []
        with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT_S) as r:
            assert r.headers["x-lifeline-deployment"] == "local"
            for line in r.iter_lines():
                lines.append(line)
                if len([x for x in lines if x.startswith("data:")]) == 3:
                    assert gateway.proc is not None
                    gateway.proc.send_signal(signal.SIGTERM)
        # The answer finished on the model server itself: it is stopped only after in-flight streams.
        assert not any(line.startswith(": lifeline resumed") for line in lines), lines
        assert [line for line in lines if line.startswith("data:")][-1] == "data: [DONE]"
        assert len(openai_sse_content(lines)) > 20
        assert gateway.proc is not None and gateway.proc.wait(timeout=STOP_TIMEOUT_S) == 0
        assert not pid_alive(pid), "the model server outlived the gateway"
        assert "managed process stopped" in gateway.log_tail(20)
    finally:
        gateway.stop()
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
