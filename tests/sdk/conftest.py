"""Fixtures for the end-to-end tests with the official OpenAI and Anthropic SDKs.

Real processes are started from the built binary (env LIFELINE_BIN, default
.build/debug/lifeline under the repository root) on free loopback ports:
two simulators (simA, simB) and a gateway whose YAML config points at them.
Every process is stopped at the end of the session (terminate, wait, kill).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
# Re-exported for the test modules, which import them from here.
from lifeline_processes import (  # noqa: E402, F401
    LifelineProcess,
    LoopbackHTTPServer,
    ProcessStartError,
    Receiver,
    SimControl,
    Traffic,
    anthropic_sse_content,
    anthropic_sse_events,
    free_port,
    httpx,
    lifeline_bin,
    logs_of_running,
    openai_sse_content,
    process_env,
    simulator,
    sse_lines,
    stop_all,
)

import anthropic  # noqa: E402
import openai  # noqa: E402

REQUEST_TIMEOUT_S = 30.0
SIM_KEY = "test-secret"
ADMIN_TOKEN = "sdk-test-admin-token"

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


def _process_env(**extra: str) -> dict[str, str]:
    return process_env(ADMIN_TOKEN, **extra)


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
    stop_all()


def _start_simulator(name: str, binary: Path, workdir: Path) -> LifelineProcess:
    try:
        return simulator(name, binary, workdir, _process_env())
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


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Polls `predicate` every `step` s until it returns something truthy (returned), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


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


# ----------------------------------------------------- logs on failures


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        report.sections.extend(logs_of_running())
