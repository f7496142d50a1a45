"""What the end-to-end suites share: lifeline processes started from the built binary on free
loopback ports (stopped at the end: terminate, wait, kill), the simulator's fault knobs, a
traffic thread, a webhook receiver, and the two APIs' stream parsers. Each suite's conftest puts
this folder on sys.path and imports from here."""

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
from typing import Any, Callable

try:
    import httpx
except ImportError:  # the SDKs ship their own fork under this name
    import httpx2 as httpx  # type: ignore[no-redef]

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3

# Every process started, for logs on failure and for stop_all().
STARTED: list["LifelineProcess"] = []


def lifeline_bin() -> Path:
    """The binary under test: env LIFELINE_BIN, default .build/debug/lifeline under the repository."""
    path = Path(os.environ.get("LIFELINE_BIN", ".build/debug/lifeline"))
    return path if path.is_absolute() else REPO_ROOT / path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(admin_token: str, **extra: str) -> dict[str, str]:
    """This environment without the variables that would point a process elsewhere, with the admin token."""
    env = dict(os.environ)
    env.pop("LIFELINE_CONFIG", None)
    env.pop("LIFELINE_URL", None)
    env["LIFELINE_ADMIN_TOKEN"] = admin_token
    env.update(extra)
    return env


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
    ready_timeout: float = READY_TIMEOUT_S
    stop_timeout: float = STOP_TIMEOUT_S
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
            if not any(q is self for q in STARTED):
                STARTED.append(self)
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
        deadline = time.monotonic() + self.ready_timeout
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
            f"{self.name} not ready on {self.url}/readyz within {self.ready_timeout}s ({last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.kill()
                proc.wait(timeout=self.stop_timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def simulator(name: str, binary: Path, workdir: Path, env: dict[str, str]) -> LifelineProcess:
    """A `lifeline simulate` process speaking both protocols, started (or ProcessStartError)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return LifelineProcess(
        name=name,
        args_for_port=lambda port: [str(binary), "simulate", "--port", str(port), "--protocol", "both"],
        workdir=workdir,
        env=env,
        fallback_ready_path="/healthz",
    ).start()


def stop_all() -> None:
    for p in reversed(STARTED):
        p.stop()


def logs_of_running() -> list[tuple[str, str]]:
    """(title, tail) of every process still running: what a failed test's report shows."""
    sections = []
    for p in STARTED:
        if p.proc is not None and p.proc.poll() is None:
            tail = p.log_tail(30)
            if tail:
                sections.append((f"log of {p.name} ({p.url})", tail))
    return sections


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



class Traffic:
    """Sends chat requests back to back from a thread and counts the statuses it gets (0: no answer)."""

    def __init__(self, url: str, model: str, headers: dict[str, str] | None = None,
                 prompt: str = "status traffic", max_tokens: int = 8) -> None:
        self.url = url + "/v1/chat/completions"
        self.body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}
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


class LoopbackHTTPServer:
    """A threaded HTTP server on a free loopback port; subclasses serve their own handler."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Receiver(LoopbackHTTPServer):
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

        self.serve(Handler)

    def matching(self, predicate: Callable[[str, Any], bool]) -> list[tuple[str, Any]]:
        with self.lock:
            return [(p, b) for p, b in self.posts if predicate(p, b)]

    def on(self, path: str) -> list[Any]:
        """The bodies posted to `path`, in order."""
        return [body for _, body in self.matching(lambda p, _: p == path)]


# ------------------------------------------------------------ SSE parsers


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
