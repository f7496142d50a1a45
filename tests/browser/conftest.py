"""Fixtures for the browser tests of the chat page and the operator console.

Real processes from the built binary (env LIFELINE_BIN, default .build/debug/lifeline): two
simulators started with `lifeline simulate`, and a gateway whose YAML config points at them,
each on a free loopback port with its own temporary working directory. Pages are driven by
Playwright with Debian's Chromium (env CHROMIUM, default /usr/bin/chromium); Playwright's own
browser downloads are never used. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
# free_port is re-exported for the test modules.
from lifeline_processes import (  # noqa: E402, F401
    LifelineProcess,
    ProcessStartError,
    free_port,
    lifeline_bin,
    logs_of_running,
    process_env,
    simulator,
    stop_all,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
ADMIN_TOKEN = "browser-test-admin-token"
MODEL = "chat-default"
SECOND_MODEL = "chat-second"
DEPLOYMENTS = ("sim-a", "sim-b", "sim-c")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}


def gateway_config(sim_a: int, sim_b: int) -> str:
    return f"""\
server: {{host: 127.0.0.1, port: 0}}
models:
  - name: {MODEL}
    deployments:
      - {{name: sim-a, protocol: openai, base_url: "http://127.0.0.1:{sim_a}/v1", model: sim-model, priority: 1}}
      - {{name: sim-b, protocol: anthropic, base_url: "http://127.0.0.1:{sim_b}", model: sim-model, priority: 2}}
  - name: {SECOND_MODEL}
    deployments:
      - {{name: sim-c, protocol: openai, base_url: "http://127.0.0.1:{sim_b}/v1", model: sim-model}}
"""


class Stack:
    """Two simulators and a gateway in front of them, with helpers for the APIs around the UI."""

    def __init__(self, binary: Path, tmp: pytest.TempPathFactory):
        self.binary = binary
        self.tmp = tmp
        self.sims = [self._simulator("sim-a"), self._simulator("sim-b")]
        self.gateway = self.start_gateway("gateway")

    def _simulator(self, name: str) -> LifelineProcess:
        try:
            return simulator(name, self.binary, self.tmp.mktemp(name), process_env(ADMIN_TOKEN))
        except ProcessStartError as exc:
            pytest.fail(str(exc))

    def start_gateway(self, name: str, extra_config: str = "", cache: str | None = None) -> LifelineProcess:
        """`cache`: a `cache:` block (flow YAML) given to every model."""
        workdir = self.tmp.mktemp(name)
        config = workdir / "lifeline.yaml"
        text = gateway_config(self.sims[0].port, self.sims[1].port)
        if cache is not None:
            text = text.replace("    deployments:\n", f"    cache: {cache}\n    deployments:\n")
        config.write_text(text + extra_config)
        binary = self.binary
        process = LifelineProcess(name=name, workdir=workdir, env=process_env(ADMIN_TOKEN),
                                  args_for_port=lambda port: [str(binary), "serve", "--config", str(config), "--port", str(port)])
        try:
            return process.start()
        except ProcessStartError as exc:
            pytest.fail(str(exc))

    @property
    def url(self) -> str:
        return self.gateway.url

    def set_knobs(self, **knobs: Any) -> None:
        for sim in self.sims:
            r = httpx.post(sim.url + "/sim/control", json=knobs, timeout=5)
            assert r.status_code in (200, 204), r.text

    def reset(self) -> None:
        for sim in self.sims:
            httpx.delete(sim.url + "/sim/control", timeout=5)
        admin(self.url, "DELETE", "/faults")
        for name in DEPLOYMENTS:
            admin(self.url, "POST", f"/deployments/{name}/undrain")


def admin(base: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, base + "/admin/v1" + path, json=body, timeout=10,
                         headers={"authorization": f"Bearer {ADMIN_TOKEN}"})


def api_answer(base: str, prompt: str, model: str = MODEL) -> str:
    """The gateway's whole (non-streamed) answer to one question: what the page must show."""
    r = httpx.post(base + "/v1/chat/completions", timeout=30,
                   json={"model": model, "messages": [{"role": "user", "content": prompt}]})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = lifeline_bin()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"lifeline binary not found at {binary} (build it, or set LIFELINE_BIN)")
    s = Stack(binary, tmp_path_factory)
    yield s
    stop_all()


@pytest.fixture(autouse=True)
def _clean_stack(stack: Stack) -> None:
    """Every test starts with default simulators, no faults and nothing drained."""
    stack.reset()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"Chromium not found at {executable}; install Debian's chromium package or set CHROMIUM")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class PageProblems:
    """What a page must never do: throw, log errors, or trip its Content-Security-Policy."""

    EXPECTED = ("Failed to load resource",)  # a 404/503 the test provoked; checked by the tests themselves

    def __init__(self, page: Page):
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e =>"
            " (window.__cspViolations = window.__cspViolations || []).push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(self.EXPECTED):
            self.errors.append(f"console: {message.text}")

    def check(self) -> None:
        violations = []
        if not self.page.is_closed():
            try:
                violations = self.page.evaluate("window.__cspViolations || []")
            except Exception:  # a page mid-navigation has no context to ask
                violations = []
        assert not violations, f"Content-Security-Policy violations: {violations}"
        assert not self.errors, f"page errors: {self.errors}"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESKTOP)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    p = context.new_page()
    p.set_default_timeout(10_000)
    problems = PageProblems(p)
    yield p
    problems.check()


@contextmanager
def page_at(browser: Browser, viewport: dict) -> Iterator[Page]:
    """A page in a context of its own at `viewport` (with touch at phone width), checked for
    script errors and Content-Security-Policy violations when done, then closed."""
    phone = viewport is PHONE
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems = PageProblems(page)
    try:
        yield page
        problems.check()
    finally:
        context.close()


def open_chat(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/")
    page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")


_AXE = Axe()


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    results = _AXE.run(page, options={"resultTypes": ["violations"]})
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] not in ("serious", "critical"):
            continue
        for node in violation["nodes"]:
            found.append(f"{violation['id']} at {node['target']}: {node.get('failureSummary', '').splitlines()[-1:]}")
    return found


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        report.sections.extend(logs_of_running())
