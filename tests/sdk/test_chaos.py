"""Small-scale chaos over real sockets: drill faults, whole-model outages, SIGTERM during
live streams, operator drain and config reload.

Every test runs a gateway of its own whose config makes failures quick to see: a 500 ms
first-token timeout on each deployment, a 1 s base ejection and an admin token set in the
config file. The simulators are shared and reset around every test by conftest.
Each test is bounded: every request has a client timeout and every wait a deadline.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import openai
import pytest
import yaml

from conftest import (
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    PROMPT,
    SIM_KEY,
    LifelineProcess,
    ProcessStartError,
    _process_env,
    anthropic_client,
    openai_client,
    openai_sse_content,
    user,
)

try:
    import httpx
except ImportError:  # the SDKs ship their own fork under this name
    import httpx2 as httpx  # type: ignore[no-redef]

ADMIN = "chaos-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
FIRST_TOKEN_MS = 500
BASE_EJECTION_S = 1.0
DRAIN_TIMEOUT_S = 10.0
MAX_TOKENS = 40
CLIENT_TIMEOUT_S = 15.0
# Slack for scheduling, backoff and the second deployment's own answer.
MARGIN_S = 1.0


# ------------------------------------------------------------- the gateway


def chaos_config(sim_a_port: int, sim_b_port: int, priorities: dict[str, int] | None = None) -> dict[str, Any]:
    prio = {"oa-1": 1, "oa-2": 2, "an-1": 1, "an-2": 2}
    prio.update(priorities or {})
    timeouts = {"connect_ms": 1000, "first_token_ms": FIRST_TOKEN_MS, "idle_ms": 5000, "total_ms": 30000}

    def dep(name: str, protocol: str, port: int) -> dict[str, Any]:
        base = f"http://127.0.0.1:{port}" + ("/v1" if protocol == "openai" else "")
        d = {
            "name": name, "protocol": protocol, "base_url": base, "api_key": "${SIM_KEY}",
            "model": "sim-model", "priority": prio[name], "weight": 1, "timeouts": dict(timeouts),
        }
        return d

    return {
        "server": {"host": "127.0.0.1", "port": 0, "drain_timeout_s": DRAIN_TIMEOUT_S},
        "admin": {"token": ADMIN},
        "routing": {
            "max_attempts": 3,
            "max_resumptions": 2,
            "outlier_detection": {
                "consecutive_failures": 5, "base_ejection_s": BASE_EJECTION_S, "max_ejection_s": 4,
                "max_ejection_percent": 50, "half_open_trials": 1,
            },
            "backoff": {"base_ms": 25, "max_ms": 200},
        },
        "models": [
            {"name": OPENAI_MODEL, "deployments": [dep("oa-1", "openai", sim_a_port), dep("oa-2", "openai", sim_b_port)]},
            {"name": ANTHROPIC_MODEL, "deployments": [dep("an-1", "anthropic", sim_a_port), dep("an-2", "anthropic", sim_b_port)]},
        ],
    }


class ChaosGateway:
    def __init__(self, proc: LifelineProcess, config_path: Path):
        self.proc = proc
        self.config_path = config_path

    @property
    def url(self) -> str:
        return self.proc.url

    def write_config(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.config_path.write_text(text)

    # admin API
    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        with httpx.Client(timeout=5.0) as c:
            return c.request(method, self.url + "/admin/v1" + path, headers=AUTH, **kw)

    def fault(self, **body: Any) -> str:
        body.setdefault("duration_s", 60)
        r = self.admin("POST", "/faults", json=body)
        assert r.status_code == 201, f"POST /admin/v1/faults {body} -> {r.status_code} {r.text}"
        fault_id = r.json().get("id")
        assert fault_id, r.text
        listed = self.admin("GET", "/faults").json()["data"]
        assert fault_id in [f.get("id") for f in listed], f"fault {fault_id} not listed: {listed}"
        return fault_id

    def deployment(self, name: str) -> dict[str, Any]:
        r = self.admin("GET", "/deployments")
        assert r.status_code == 200, f"{r.status_code} {r.text}"
        for d in r.json()["data"]:
            if d["name"] == name:
                return d
        raise AssertionError(f"no deployment {name} in {r.text}")

    def metrics(self) -> str:
        with httpx.Client(timeout=5.0) as c:
            r = c.get(self.url + "/metrics")
        assert r.status_code == 200
        return r.text


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    pattern = re.compile(r"^" + re.escape(name) + r"(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
    for line in text.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group("labels") or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group("value"))
    return total


@pytest.fixture
def chaos_gateway_factory(
    lifeline_path: Path, tmp_path_factory: pytest.TempPathFactory, sim_a: LifelineProcess, sim_b: LifelineProcess
) -> Iterator[Callable[..., ChaosGateway]]:
    started: list[LifelineProcess] = []

    def start(name: str = "chaos-gateway", **config_kw: Any) -> ChaosGateway:
        workdir = tmp_path_factory.mktemp(name)
        config_path = workdir / "lifeline.yaml"
        config_path.write_text(yaml.safe_dump(chaos_config(sim_a.port, sim_b.port, **config_kw), sort_keys=False))
        p = LifelineProcess(
            name=name,
            args_for_port=lambda port: [str(lifeline_path), "serve", "--config", str(config_path), "--port", str(port)],
            workdir=workdir,
            env=_process_env(SIM_KEY=SIM_KEY),
        )
        started.append(p)
        try:
            p.start()
        except ProcessStartError as exc:
            pytest.fail(str(exc))
        return ChaosGateway(p, config_path)

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def chaos_gateway(chaos_gateway_factory) -> ChaosGateway:
    return chaos_gateway_factory()


# ---------------------------------------------------------------- clients


def sdk_openai(base: str, stream: bool, prompt: str = PROMPT) -> tuple[str, str | None, str | None]:
    """(text, finish_reason, x-lifeline-deployment) through the OpenAI SDK."""
    client = openai_client(base)
    raw = client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user(prompt), max_tokens=MAX_TOKENS, stream=stream
    )
    deployment = raw.headers.get("x-lifeline-deployment")
    if not stream:
        c = raw.parse()
        return c.choices[0].message.content or "", c.choices[0].finish_reason, deployment
    parts, finish = [], None
    with raw.parse() as s:
        for chunk in s:
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
                if choice.finish_reason is not None:
                    assert finish is None, "finish_reason sent twice"
                    finish = choice.finish_reason
    return "".join(parts), finish, deployment


def sdk_anthropic_stream(base: str, prompt: str = PROMPT) -> tuple[str, str | None]:
    with anthropic_client(base).messages.stream(model=ANTHROPIC_MODEL, max_tokens=MAX_TOKENS, messages=user(prompt)) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    return text, final.stop_reason


def chat_body(stream: bool, prompt: str = PROMPT, max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    return {"model": OPENAI_MODEL, "messages": user(prompt), "max_tokens": max_tokens, "stream": stream}


def timed_chat(base: str, stream: bool) -> tuple[int, float, str, httpx.Headers]:
    """(status, seconds to the full answer, text or error body, headers) over plain HTTP."""
    t0 = time.monotonic()
    with httpx.Client(timeout=CLIENT_TIMEOUT_S) as c:
        with c.stream("POST", base + "/v1/chat/completions", json=chat_body(stream)) as r:
            if r.status_code == 200 and stream:
                lines = list(r.iter_lines())
                assert "data: [DONE]" in [l.strip() for l in lines], "stream without [DONE]"
                text = openai_sse_content(lines)
            else:
                r.read()
                text = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else r.text
    return r.status_code, time.monotonic() - t0, text, r.headers


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


# ------------------------------------------------- (a) error drill on oa-1


def test_error_drill_on_primary_is_invisible_to_clients(chaos_gateway: ChaosGateway) -> None:
    gw = chaos_gateway
    reference = {stream: sdk_openai(gw.url, stream)[:2] for stream in (False, True)}
    assert all(text for text, _ in reference.values())
    before = metric(gw.metrics(), "lifeline_failovers_total", model=OPENAI_MODEL, phase="before_first_byte")

    gw.fault(deployment="oa-1", kind="error", status=500, rate=1.0)

    def one(i: int) -> tuple[int, Any]:
        stream = i % 2 == 1
        try:
            text, finish, deployment = sdk_openai(gw.url, stream)
        except openai.APIError as exc:
            return i, exc
        return i, (stream, text, finish, deployment)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(30)))
    errors = [(i, r) for i, r in results if isinstance(r, Exception)]
    assert not errors, f"{len(errors)} of 30 requests failed at the client: {errors[:3]}"
    for i, (stream, text, finish, deployment) in results:
        assert deployment == "oa-2", f"request {i} answered by {deployment}"
        assert (text, finish) == reference[stream], f"request {i} (stream={stream}) differs from the reference"

    after = metric(gw.metrics(), "lifeline_failovers_total", model=OPENAI_MODEL, phase="before_first_byte")
    assert after > before, f"lifeline_failovers_total{{phase=before_first_byte}} did not rise ({before} -> {after})"


# --------------------------------------------- (b) blackhole drill on oa-1


def test_blackhole_drill_costs_at_most_the_first_token_timeout_and_ejects(chaos_gateway: ChaosGateway) -> None:
    gw = chaos_gateway
    # The baseline is the same batch of six concurrent requests without the fault.
    with ThreadPoolExecutor(max_workers=6) as pool:
        baseline = list(pool.map(lambda i: timed_chat(gw.url, stream=i % 2 == 1), range(6)))
    assert all(status == 200 for status, *_ in baseline), baseline
    base_s = max(seconds for _, seconds, _, _ in baseline)
    bound_s = base_s + FIRST_TOKEN_MS / 1000 + MARGIN_S

    gw.fault(deployment="oa-1", kind="blackhole")
    # The ejection lasts only BASE_EJECTION_S, so the admin view is watched while the
    # requests run rather than read once afterwards.
    states_seen: list[str] = []
    watching = threading.Event()
    watching.set()

    def watch() -> None:
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while watching.is_set() and time.monotonic() < deadline:
            states_seen.append(gw.deployment("oa-1")["state"])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # Six concurrent requests all meet the black hole first (oa-1 is preferred and healthy),
    # so the fifth consecutive timeout ejects it.
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: timed_chat(gw.url, stream=i % 2 == 1), range(6)))
    ejected_now = gw.deployment("oa-1")
    watching.clear()
    watcher.join(timeout=5)

    latencies = [round(seconds, 3) for _, seconds, _, _ in results]
    print(f"\nblackhole: baseline max {base_s:.3f}s, faulted latencies {latencies}, bound {bound_s:.3f}s")
    for i, (status, seconds, text, headers) in enumerate(results):
        assert status == 200, f"request {i}: {status} {text}"
        assert headers.get("x-lifeline-deployment") == "oa-2"
        assert seconds <= bound_s, f"request {i} took {seconds:.3f}s; bound {bound_s:.3f}s (latencies {latencies})"
    assert "ejected" in states_seen + [ejected_now["state"]], (
        f"oa-1 never showed state ejected after 6 black-holed attempts; states seen {sorted(set(states_seen))}, "
        f"last {ejected_now}"
    )
    assert ejected_now["breaker"]["ejections"] >= 1, ejected_now
    text = gw.metrics()
    assert metric(text, "lifeline_ejections_total", deployment="oa-1") >= 1
    assert metric(text, "lifeline_upstream_requests_total", deployment="oa-1", outcome="timeout") >= 5

    # Later requests keep answering from oa-2 within the same bound.
    for i in range(3):
        status, seconds, _, headers = timed_chat(gw.url, stream=i % 2 == 1)
        assert status == 200 and headers.get("x-lifeline-deployment") == "oa-2"
        assert seconds <= bound_s, f"later request took {seconds:.3f}s"


# -------------------------------------------- (c) disconnect drill mid-stream


def test_disconnect_drill_streams_resume_with_identical_text(chaos_gateway: ChaosGateway) -> None:
    gw = chaos_gateway
    prompts = [f"{PROMPT} Variation {i}." for i in range(10)]
    reference = {p: sdk_openai(gw.url, True, p)[:2] for p in prompts}
    anthropic_prompts = prompts[:3]
    anthropic_reference = {p: sdk_anthropic_stream(gw.url, p) for p in anthropic_prompts}
    for p in prompts:
        assert len(reference[p][0].split()) > 10, f"reference too short to cut after 5 tokens: {reference[p]!r}"
    before = metric(gw.metrics(), "lifeline_failovers_total", phase="mid_stream")

    gw.fault(deployment="oa-1", kind="disconnect", after_tokens=5)
    gw.fault(deployment="an-1", kind="disconnect", after_tokens=5)

    with ThreadPoolExecutor(max_workers=5) as pool:
        openai_results = list(pool.map(lambda p: sdk_openai(gw.url, True, p), prompts))
        anthropic_results = list(pool.map(lambda p: sdk_anthropic_stream(gw.url, p), anthropic_prompts))
    for p, (text, finish, _) in zip(prompts, openai_results):
        assert (text, finish) == reference[p], f"resumed OpenAI stream differs:\n got {text!r}\nwant {reference[p]!r}"
    for p, got in zip(anthropic_prompts, anthropic_results):
        assert got == anthropic_reference[p], f"resumed Anthropic stream differs:\n got {got!r}\nwant {anthropic_reference[p]!r}"

    after = metric(gw.metrics(), "lifeline_failovers_total", phase="mid_stream")
    assert after > before, f"no mid-stream failover counted ({before} -> {after})"


def test_each_streamed_attempt_is_counted_once(chaos_gateway: ChaosGateway) -> None:
    gw = chaos_gateway
    status, _, text, headers = timed_chat(gw.url, stream=True)
    assert status == 200 and headers.get("x-lifeline-deployment") == "oa-1", text
    counted = metric(gw.metrics(), "lifeline_upstream_requests_total", deployment="oa-1")
    assert counted == 1, f"one streamed attempt at oa-1 counted {counted:g} times in lifeline_upstream_requests_total"


def test_streams_cut_mid_way_eject_after_consecutive_failures(chaos_gateway: ChaosGateway) -> None:
    """A healthy deployment that starts cutting every stream: five cut streams in a row are
    five consecutive failures (consecutive_failures: 5) and eject it."""
    gw = chaos_gateway
    for i in range(6):
        status, _, text, headers = timed_chat(gw.url, stream=i % 2 == 1)
        assert status == 200 and headers.get("x-lifeline-deployment") == "oa-1", text
    gw.fault(deployment="oa-1", kind="disconnect", after_tokens=5)
    seen = []
    for i in range(5):
        status, _, text, headers = timed_chat(gw.url, stream=True)
        assert status == 200, text
        d = gw.deployment("oa-1")
        seen.append((headers.get("x-lifeline-deployment"), d["state"], d["breaker"]["state"]))
    assert all(first == "oa-1" for first, _, _ in seen), f"every stream should start on oa-1 until it is ejected: {seen}"
    assert seen[-1][1] == "ejected", f"oa-1 not ejected after 5 consecutive mid-stream cuts: {seen}"


# ----------------------------------------- (d) every deployment of a model down


def test_whole_model_down_is_a_quick_503_and_recovers_within_an_ejection(
    chaos_gateway: ChaosGateway, sim_a_control, sim_b_control
) -> None:
    gw = chaos_gateway
    sim_a_control.set(error_rate=1.0, error_status=500)
    sim_b_control.set(error_rate=1.0, error_status=500)

    seen = []
    for i in range(6):
        status, seconds, body, headers = timed_chat(gw.url, stream=i % 2 == 1)
        seen.append((status, round(seconds, 3)))
        assert status == 503, f"request {i}: {status} {body}"
        retry_after = headers.get("retry-after")
        assert retry_after is not None and retry_after.strip().isdigit(), f"Retry-After {retry_after!r}"
        assert json.loads(body)["error"]["message"]
        assert seconds < 2.0, f"503 took {seconds:.3f}s (all: {seen})"

    sim_a_control.reset()
    sim_b_control.reset()
    t0 = time.monotonic()
    recovered_after: float | None = None
    while time.monotonic() - t0 < BASE_EJECTION_S + 2 * MARGIN_S:
        status, _, _, _ = timed_chat(gw.url, stream=False)
        if status == 200:
            recovered_after = time.monotonic() - t0
            break
        time.sleep(0.1)
    print(f"\nmodel down: 503 latencies {[s for _, s in seen]}, recovered after {recovered_after}")
    assert recovered_after is not None, "no success within base ejection + margin after the upstreams recovered"
    assert recovered_after <= BASE_EJECTION_S + MARGIN_S, f"recovered after {recovered_after:.3f}s"
    # And it stays recovered: the next few all answer.
    for i in range(4):
        status, _, body, _ = timed_chat(gw.url, stream=i % 2 == 1)
        assert status == 200, f"{status} {body}"


# ---------------------------------------------- (e) SIGTERM and operator drain


def test_sigterm_finishes_live_streams_then_exits_0(chaos_gateway: ChaosGateway, sim_a_control, sim_b_control) -> None:
    gw = chaos_gateway
    body = chat_body(stream=True)
    with httpx.Client(timeout=CLIENT_TIMEOUT_S) as c:
        with c.stream("POST", gw.url + "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            reference = openai_sse_content(list(r.iter_lines()))
    assert len(reference.split()) >= 20, reference

    # 40 tokens at 20 per second: each stream lasts about 2 s.
    sim_a_control.set(tokens_per_second=20)
    sim_b_control.set(tokens_per_second=20)
    results: list[dict[str, Any]] = [{} for _ in range(5)]
    first_bytes = threading.Barrier(6, timeout=CLIENT_TIMEOUT_S)

    def stream(i: int) -> None:
        out = results[i]
        try:
            with httpx.Client(timeout=CLIENT_TIMEOUT_S) as c:
                with c.stream("POST", gw.url + "/v1/chat/completions", json=body) as r:
                    out["status"] = r.status_code
                    lines: list[str] = []
                    waited = False
                    for line in r.iter_lines():
                        lines.append(line)
                        if not waited and line.startswith("data:"):
                            waited = True
                            first_bytes.wait()
                    out["lines"] = lines
                    if not waited:
                        first_bytes.abort()
        except Exception as exc:  # noqa: BLE001 - reported below
            out["error"] = repr(exc)
            first_bytes.abort()

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(5)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    try:
        first_bytes.wait()  # every stream is live
    except threading.BrokenBarrierError:
        for t in threads:
            t.join(timeout=CLIENT_TIMEOUT_S)
        pytest.fail(f"not every stream started before SIGTERM: {results}")
    time.sleep(max(0.0, 0.5 - (time.monotonic() - t_start)))
    proc = gw.proc.proc
    assert proc is not None and proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    t_term = time.monotonic()

    # Readiness drops while the streams are still being answered.
    def not_ready() -> bool:
        try:
            with httpx.Client(timeout=1.0) as c:
                return c.get(gw.url + "/readyz").status_code != 200
        except httpx.HTTPError:
            return True

    assert wait_until(not_ready, timeout_s=1.0), "/readyz still 200 one second after SIGTERM"
    ready_dropped_s = time.monotonic() - t_term

    for t in threads:
        t.join(timeout=CLIENT_TIMEOUT_S)
    try:
        code = proc.wait(timeout=DRAIN_TIMEOUT_S + 5)
    except Exception:
        pytest.fail(f"gateway still running {DRAIN_TIMEOUT_S + 5}s after SIGTERM")
    exited_s = time.monotonic() - t_term

    print(f"\nSIGTERM: /readyz not 200 after {ready_dropped_s:.3f}s, exit {code} after {exited_s:.3f}s")
    for i, out in enumerate(results):
        assert "error" not in out, f"stream {i}: {out['error']}"
        assert out.get("status") == 200, f"stream {i}: {out}"
        lines = out["lines"]
        assert [l.strip() for l in lines if l.startswith("data:")][-1] == "data: [DONE]", f"stream {i} has no [DONE]"
        assert openai_sse_content(lines) == reference, f"stream {i} text differs from the reference"
    assert code == 0, f"gateway exited with {code}:\n{gw.proc.log_tail()}"
    assert ready_dropped_s < 1.0 and exited_s <= DRAIN_TIMEOUT_S + 5


def test_drain_moves_new_requests_to_the_other_deployment_and_undrain_brings_them_back(
    chaos_gateway: ChaosGateway,
) -> None:
    gw = chaos_gateway
    assert timed_chat(gw.url, stream=False)[3].get("x-lifeline-deployment") == "oa-1"

    r = gw.admin("POST", "/deployments/oa-1/drain")
    assert r.status_code == 200, r.text
    state = gw.deployment("oa-1")
    assert state["drained"] is True and state["state"] == "draining", state
    for i in range(4):
        status, _, text, headers = timed_chat(gw.url, stream=i % 2 == 1)
        assert status == 200, text
        assert headers.get("x-lifeline-deployment") == "oa-2", f"request {i} went to {headers.get('x-lifeline-deployment')}"

    r = gw.admin("POST", "/deployments/oa-1/undrain")
    assert r.status_code == 200, r.text
    state = gw.deployment("oa-1")
    assert state["drained"] is False and state["state"] == "healthy", state
    for i in range(4):
        status, _, text, headers = timed_chat(gw.url, stream=i % 2 == 1)
        assert status == 200, text
        assert headers.get("x-lifeline-deployment") == "oa-1", f"request {i} went to {headers.get('x-lifeline-deployment')}"

    assert gw.admin("POST", "/deployments/no-such/drain").status_code == 404


# ------------------------------------------------------------- (f) reload


def test_reload_applies_new_priorities(chaos_gateway: ChaosGateway, sim_a: LifelineProcess, sim_b: LifelineProcess) -> None:
    gw = chaos_gateway
    assert timed_chat(gw.url, stream=False)[3].get("x-lifeline-deployment") == "oa-1"

    gw.write_config(chaos_config(sim_a.port, sim_b.port, priorities={"oa-1": 2, "oa-2": 1}))
    r = gw.admin("POST", "/config/reload")
    assert r.status_code == 200, f"reload of a valid config: {r.status_code} {r.text}"
    for i in range(3):
        status, _, text, headers = timed_chat(gw.url, stream=i % 2 == 1)
        assert status == 200, text
        assert headers.get("x-lifeline-deployment") == "oa-2", f"after reload request {i} went to {headers.get('x-lifeline-deployment')}"
    assert gw.deployment("oa-2")["priority"] == 1


def test_invalid_reload_is_refused_with_paths_and_the_old_config_keeps_serving(
    chaos_gateway: ChaosGateway, sim_a: LifelineProcess, sim_b: LifelineProcess
) -> None:
    gw = chaos_gateway
    bad = chaos_config(sim_a.port, sim_b.port, priorities={"oa-1": 2, "oa-2": 1})
    bad["models"][0]["deployments"][1]["priority"] = "first"
    bad["models"][0]["deployments"][0]["timeouts"]["first_token_ms"] = -5
    gw.write_config(bad)

    r = gw.admin("POST", "/config/reload")
    assert r.status_code == 400, f"reload of an invalid config: {r.status_code} {r.text}"
    errors = r.json().get("errors")
    assert isinstance(errors, list) and errors, r.text
    paths = {e.get("path") for e in errors}
    assert all(isinstance(e.get("path"), str) for e in errors), errors
    assert "models[0].deployments[1].priority" in paths, paths
    assert "models[0].deployments[0].timeouts.first_token_ms" in paths, paths

    # Nothing changed: oa-1 is still preferred and answers.
    for i in range(3):
        status, _, text, headers = timed_chat(gw.url, stream=i % 2 == 1)
        assert status == 200, text
        assert headers.get("x-lifeline-deployment") == "oa-1"
    assert gw.deployment("oa-1")["priority"] == 1


def test_admin_api_needs_the_token(chaos_gateway: ChaosGateway) -> None:
    with httpx.Client(timeout=5.0) as c:
        for method, path in [
            ("GET", "/admin/v1/deployments"),
            ("GET", "/admin/v1/faults"),
            ("POST", "/admin/v1/faults"),
            ("POST", "/admin/v1/deployments/oa-1/drain"),
            ("POST", "/admin/v1/config/reload"),
        ]:
            for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": ADMIN}):
                r = c.request(method, chaos_gateway.url + path, headers=headers,
                              json={"deployment": "oa-1", "kind": "error"} if method == "POST" else None)
                assert r.status_code == 401, f"{method} {path} with {headers}: {r.status_code} {r.text}"
    # None of those took effect.
    assert chaos_gateway.deployment("oa-1")["drained"] is False
    assert chaos_gateway.admin("GET", "/faults").json()["data"] == []
