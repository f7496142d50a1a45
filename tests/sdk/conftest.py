"""Fixtures for the end-to-end tests with the official OpenAI and Anthropic SDKs.

Real processes are started from the built binary (env LIFELINE_BIN, default
.build/debug/lifeline under the repository root) on free loopback ports:
two simulators (simA, simB) and a gateway whose YAML config points at them.
Every process is stopped at the end of the session (terminate, wait, kill).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

try:
    import httpx
except ImportError:  # the SDKs ship their own fork under this name
    import httpx2 as httpx  # type: ignore[no-redef]

import anthropic
import openai

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 30.0
SIM_KEY = "test-secret"
ADMIN_TOKEN = "sdk-test-admin-token"
START_ATTEMPTS = 3

OPENAI_MODEL = "chat-openai"
ANTHROPIC_MODEL = "chat-anthropic"
PUBLIC_MODELS = (OPENAI_MODEL, ANTHROPIC_MODEL)
DEPLOYMENTS = {
    OPENAI_MODEL: ("oa-1", "oa-2"),
    ANTHROPIC_MODEL: ("an-1", "an-2"),
}

# Prompt used wherever two answers are compared: the simulator answers it
# with the same text on any deployment.
PROMPT = "Describe the morning routine of a lighthouse keeper in a few sentences."

# Every process started in this session, for logs on failure and cleanup.
_ALL_PROCS: list["LifelineProcess"] = []


def lifeline_bin() -> Path:
    raw = os.environ.get("LIFELINE_BIN", ".build/debug/lifeline")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessStartError(RuntimeError):
    pass


@dataclass
class LifelineProcess:
    name: str
    args_for_port: Callable[[int], list[str]]
    workdir: Path
    env: dict[str, str]
    # Liveness path to use when /readyz is not served at all (404).
    fallback_ready_path: str | None = None
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _log_file: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LifelineProcess":
        """Start on a free port; retry on a new port if it could not bind."""
        last_error = ""
        for attempt in range(START_ATTEMPTS):
            self.port = free_port()
            self.log_path = self.workdir / f"{self.name}.{attempt}.log"
            self._log_file = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                self.args_for_port(self.port),
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if not any(q is self for q in _ALL_PROCS):
                _ALL_PROCS.append(self)
            try:
                self._wait_ready()
                return self
            except ProcessStartError as exc:
                last_error = str(exc)
                exited = self.proc.poll() is not None
                self.stop()
                if not (exited and "in use" in self.log_tail().lower()):
                    break
        raise ProcessStartError(last_error)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise ProcessStartError(
                        f"{self.name} exited with {self.proc.returncode} before ready:\n{self.log_tail()}"
                    )
                try:
                    r = client.get(self.url + "/readyz")
                    if r.status_code == 404 and self.fallback_ready_path:
                        r = client.get(self.url + self.fallback_ready_path)
                    if r.status_code == 200:
                        return
                    last = f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        raise ProcessStartError(
            f"{self.name} not ready on {self.url}/readyz within {READY_TIMEOUT_S}s ({last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LIFELINE_CONFIG", None)
    env.pop("LIFELINE_URL", None)
    env["LIFELINE_ADMIN_TOKEN"] = ADMIN_TOKEN
    env.update(extra)
    return env


def gateway_config(sim_a_port: int, sim_b_port: int) -> str:
    def oa(name: str, port: int, priority: int) -> str:
        return (
            f'      - {{name: {name}, protocol: openai, base_url: "http://127.0.0.1:{port}/v1", '
            f'api_key: "${{SIM_KEY}}", model: sim-model, priority: {priority}, weight: 1}}\n'
        )

    def an(name: str, port: int, priority: int) -> str:
        return (
            f'      - {{name: {name}, protocol: anthropic, base_url: "http://127.0.0.1:{port}", '
            f'api_key: "${{SIM_KEY}}", model: sim-model, priority: {priority}, weight: 1}}\n'
        )

    return (
        "server: {host: 127.0.0.1, port: 0}\n"
        "models:\n"
        f"  - name: {OPENAI_MODEL}\n"
        "    deployments:\n"
        + oa("oa-1", sim_a_port, 1)
        + oa("oa-2", sim_b_port, 2)
        + f"  - name: {ANTHROPIC_MODEL}\n"
        "    deployments:\n"
        + an("an-1", sim_a_port, 1)
        + an("an-2", sim_b_port, 2)
    )


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def lifeline_path() -> Path:
    path = lifeline_bin()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"lifeline binary not found or not executable at {path} (set LIFELINE_BIN)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _stop_everything_at_session_end() -> Iterator[None]:
    yield
    for p in reversed(_ALL_PROCS):
        p.stop()


def _start_simulator(name: str, binary: Path, workdir: Path) -> LifelineProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    p = LifelineProcess(
        name=name,
        args_for_port=lambda port: [str(binary), "simulate", "--port", str(port), "--protocol", "both"],
        workdir=workdir,
        env=_process_env(),
        fallback_ready_path="/healthz",
    )
    try:
        return p.start()
    except ProcessStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def sim_a(lifeline_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifelineProcess]:
    p = _start_simulator("simA", lifeline_path, tmp_path_factory.mktemp("simA"))
    yield p
    p.stop()


@pytest.fixture(scope="session")
def sim_b(lifeline_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifelineProcess]:
    p = _start_simulator("simB", lifeline_path, tmp_path_factory.mktemp("simB"))
    yield p
    p.stop()


class GatewayFactory:
    def __init__(self, binary: Path, tmp: pytest.TempPathFactory, sim_a: LifelineProcess, sim_b: LifelineProcess):
        self.binary = binary
        self.tmp = tmp
        self.sim_a = sim_a
        self.sim_b = sim_b

    def start(
        self,
        name: str = "gateway",
        extra_config: str = "",
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        config_text: str | None = None,
    ) -> LifelineProcess:
        """A gateway over simA and simB; `extra_config` is appended to the YAML (top-level
        blocks such as `slos:`), `config_text` replaces it, `args` go after `serve`."""
        workdir = self.tmp.mktemp(name)
        config = workdir / "lifeline.yaml"
        config.write_text((config_text or gateway_config(self.sim_a.port, self.sim_b.port)) + extra_config)
        binary = self.binary
        p = LifelineProcess(
            name=name,
            args_for_port=lambda port: [str(binary), "serve", "--config", str(config), "--port", str(port), *args],
            workdir=workdir,
            env=_process_env(SIM_KEY=SIM_KEY, **(env or {})),
        )
        try:
            return p.start()
        except ProcessStartError as exc:
            pytest.fail(str(exc))


@pytest.fixture(scope="session")
def gateway_factory(
    lifeline_path: Path, tmp_path_factory: pytest.TempPathFactory, sim_a: LifelineProcess, sim_b: LifelineProcess
) -> GatewayFactory:
    return GatewayFactory(lifeline_path, tmp_path_factory, sim_a, sim_b)


@pytest.fixture(scope="session")
def gateway(gateway_factory: GatewayFactory) -> Iterator[LifelineProcess]:
    """The shared gateway; tests that inject faults use fresh_gateway instead."""
    p = gateway_factory.start("gateway")
    yield p
    p.stop()


@pytest.fixture
def fresh_gateway(gateway_factory: GatewayFactory) -> Iterator[LifelineProcess]:
    """A gateway of its own, so no breaker or health state leaks between tests."""
    p = gateway_factory.start("fresh-gateway")
    yield p
    p.stop()


class SimControl:
    """The simulator's fault knobs: POST/GET/DELETE /sim/control."""

    def __init__(self, sim: LifelineProcess):
        self.sim = sim
        self.url = sim.url + "/sim/control"

    def set(self, **knobs: Any) -> dict[str, Any]:
        with httpx.Client(timeout=5.0) as c:
            r = c.post(self.url, json=knobs)
            assert r.status_code in (200, 204), f"POST {self.url} {knobs} -> {r.status_code} {r.text}"
            current = c.get(self.url)
            assert current.status_code == 200, f"GET {self.url} -> {current.status_code} {current.text}"
            state = current.json()
        for key, value in knobs.items():
            assert key in state, f"simulator knob {key} missing from GET /sim/control: {state}"
            assert state[key] == value, f"simulator knob {key}={state[key]!r}, expected {value!r}"
        return state

    def reset(self) -> None:
        with httpx.Client(timeout=5.0) as c:
            r = c.delete(self.url)
            assert r.status_code in (200, 204), f"DELETE {self.url} -> {r.status_code} {r.text}"


@pytest.fixture
def sim_a_control(sim_a: LifelineProcess) -> SimControl:
    return SimControl(sim_a)


@pytest.fixture
def sim_b_control(sim_b: LifelineProcess) -> SimControl:
    return SimControl(sim_b)


@pytest.fixture(autouse=True)
def _reset_simulators(sim_a: LifelineProcess, sim_b: LifelineProcess) -> Iterator[None]:
    """Every test starts and ends with both simulators at their defaults."""
    controls = (SimControl(sim_a), SimControl(sim_b))
    for c in controls:
        c.reset()
    try:
        yield
    finally:
        for c in controls:
            c.reset()


def openai_client(base: str) -> openai.OpenAI:
    # No SDK retries: each test sees exactly what the gateway answered.
    return openai.OpenAI(base_url=base + "/v1", api_key="anything", max_retries=0, timeout=REQUEST_TIMEOUT_S)


def anthropic_client(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key="anything", max_retries=0, timeout=REQUEST_TIMEOUT_S)


@pytest.fixture(scope="session")
def oai(gateway: LifelineProcess) -> openai.OpenAI:
    return openai_client(gateway.url)


@pytest.fixture(scope="session")
def ant(gateway: LifelineProcess) -> anthropic.Anthropic:
    return anthropic_client(gateway.url)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as c:
        yield c


# ----------------------------------------------------------- text helpers


def user(text: str = PROMPT) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def openai_text(client: openai.OpenAI, model: str, stream: bool, **kw: Any) -> tuple[str, str | None]:
    """(content, finish_reason) of choice 0, streamed or not."""
    kw.setdefault("messages", user())
    if not stream:
        r = client.chat.completions.create(model=model, **kw)
        return r.choices[0].message.content or "", r.choices[0].finish_reason
    parts: list[str] = []
    finish: str | None = None
    with client.chat.completions.create(model=model, stream=True, **kw) as s:
        for chunk in s:
            for choice in chunk.choices:
                assert choice.index == 0
                if choice.delta.content:
                    parts.append(choice.delta.content)
                if choice.finish_reason is not None:
                    assert finish is None, "finish_reason sent twice"
                    finish = choice.finish_reason
    return "".join(parts), finish


def anthropic_text(
    client: anthropic.Anthropic, model: str, stream: bool, max_tokens: int = 200, **kw: Any
) -> tuple[str, str | None]:
    """(text, stop_reason), streamed or not."""
    kw.setdefault("messages", user())
    if not stream:
        m = client.messages.create(model=model, max_tokens=max_tokens, **kw)
        return "".join(b.text for b in m.content if b.type == "text"), m.stop_reason
    with client.messages.stream(model=model, max_tokens=max_tokens, **kw) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    return text, final.stop_reason


# ------------------------------------------------------------ SSE helpers


def sse_lines(response: httpx.Response) -> list[str]:
    return [line for line in response.iter_lines()]


def openai_sse_content(lines: list[str]) -> str:
    parts: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            payload = line[len("data:"):].strip()
            if payload == "[DONE]":
                continue
            chunk = json.loads(payload)
            for choice in chunk.get("choices", []):
                content = (choice.get("delta") or {}).get("content")
                if content:
                    parts.append(content)
    return "".join(parts)


def anthropic_sse_events(lines: list[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in lines:
        if line.startswith("data:"):
            events.append(json.loads(line[len("data:"):].strip()))
    return events


def anthropic_sse_content(lines: list[str]) -> str:
    parts: list[str] = []
    for ev in anthropic_sse_events(lines):
        if ev.get("type") == "content_block_delta" and ev["delta"].get("type") == "text_delta":
            parts.append(ev["delta"]["text"])
    return "".join(parts)


# ----------------------------------------------------- logs on failures


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for p in _ALL_PROCS:
            if p.proc is not None and p.proc.poll() is None:
                tail = p.log_tail(30)
                if tail:
                    report.sections.append((f"log of {p.name} ({p.url})", tail))


# ------------------------------------------------------ traffic and webhooks


class Traffic:
    """Sends chat requests back to back from a thread and counts the statuses it gets (0: no answer)."""

    def __init__(self, url: str, model: str = OPENAI_MODEL, headers: dict[str, str] | None = None,
                 prompt: str = "status traffic", max_tokens: int = 8) -> None:
        self.url = url + "/v1/chat/completions"
        self.body = {"model": model, "max_tokens": max_tokens, "messages": user(prompt)}
        self.headers = headers or {}
        self.statuses: list[int] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                try:
                    self.statuses.append(client.post(self.url, json=self.body, headers=self.headers).status_code)
                except httpx.HTTPError:
                    self.statuses.append(0)
                time.sleep(0.02)

    def stop(self) -> list[int]:
        self.stopping.set()
        self.thread.join(timeout=20)
        return self.statuses


class Receiver:
    """Records every POST (path and JSON body) on a free loopback port."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                with receiver.lock:
                    receiver.posts.append((self.path, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def matching(self, predicate: Callable[[str, Any], bool]) -> list[tuple[str, Any]]:
        with self.lock:
            return [(p, b) for p, b in self.posts if predicate(p, b)]

    def on(self, path: str) -> list[Any]:
        """The bodies posted to `path`, in order."""
        return [body for _, body in self.matching(lambda p, _: p == path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
