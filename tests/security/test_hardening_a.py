"""Repros of an outside security review's findings (part A), each against the built binary on
loopback, each asserting the finding is now refused or contained:

1. metric series set by clients (distinct unknown model names),
6. forged log lines (a model name holding a newline, text log format),
7. keys that can be dropped (a valid key beside a junk x-api-key),
8. a world-readable store (file modes under the data directory),
5. cross-site use of a loopback instance (text/plain, a foreign Host, a flood of registrations).

Every loop is bounded in count, every request in time. Run:
    LIFELINE_BIN=.build/debug/lifeline python -m pytest tests/security/test_hardening_a.py -q
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from lifeline_processes import LifelineProcess, free_port, httpx, lifeline_bin, process_env, stop_all  # noqa: E402

TIMEOUT_S = 10.0
MODEL = "chat-default"  # the zero config's public model


def chat(model: str = MODEL) -> dict:
    return {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def start_gateway(workdir: Path, name: str) -> LifelineProcess:
    """`lifeline serve` on the zero config (two simulated upstreams), text logs, no admin token in
    the environment (so one is generated, printed once and its hash stored)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = process_env("unused")
    env.pop("LIFELINE_ADMIN_TOKEN")
    binary = str(lifeline_bin())
    return LifelineProcess(
        name=name,
        args_for_port=lambda port: [binary, "serve", "--port", str(port), "--log-format", "text"],
        workdir=workdir,
        env=env,
    ).start()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifelineProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("hardening-a"), "hardening-a")
    try:
        yield gw
    finally:
        stop_all()


def admin_token(gw: LifelineProcess) -> str:
    assert gw.log_path is not None
    found = re.search(r"ll-admin-[0-9a-f]{32}", gw.log_path.read_text(errors="replace"))
    assert found, "no admin token was printed"
    return found.group(0)


def log_lines(gw: LifelineProcess) -> list[str]:
    assert gw.log_path is not None
    return gw.log_path.read_text(errors="replace").splitlines()


def series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# 1. Metric series without bound, set by clients

def test_distinct_unknown_model_names_share_one_unknown_series(gateway: LifelineProcess) -> None:
    with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S) as c:
        def burst(start: int, count: int) -> None:
            for i in range(start, start + count):
                name = f"made-up-{i}-" + "x" * 1000
                assert c.post("/v1/chat/completions", json=chat(name)).status_code == 404
                assert c.post("/v1/embeddings", json={"model": name, "input": "hi"}).status_code == 404
        burst(0, 3)
        before = c.get("/metrics").text
        burst(3, 300)
        after = c.get("/metrics").text
    assert len(series(after)) == len(series(before)), "300 more made-up model names added series"
    assert "made-up-" not in after
    assert len(after) < 2 * len(before)
    unknown = [s for s in series(after) if s.startswith("lifeline_requests_total{")
               and 'route="chat_completions"' in s and 'model="unknown"' in s]
    assert len(unknown) == 1, unknown
    assert unknown[0].endswith(" 303")


# 6. Forged log lines

def test_a_model_name_with_a_newline_gives_one_log_line(gateway: LifelineProcess) -> None:
    forged = "x\nFORGED-LINE 2026-01-01T00:00:00+0000 error lifeline: admin token rotated"
    with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S) as c:
        r = c.post("/v1/chat/completions", json=chat(forged), headers={"x-request-id": "forge-probe"})
        assert r.status_code == 404
        c.get("/healthz")
    lines = [line for line in log_lines(gateway) if "forge-probe" in line]
    assert len(lines) == 1, lines
    assert r'model="x\nFORGED-LINE' in lines[0]
    assert not any(line.startswith("FORGED-LINE") for line in log_lines(gateway))


# 7. Keys that can be dropped

def test_a_valid_key_beside_a_junk_key_is_refused_not_run_as_anonymous(gateway: LifelineProcess) -> None:
    auth = {"authorization": f"Bearer {admin_token(gateway)}"}
    with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S) as c:
        created = c.post("/admin/v1/keys", headers=auth, json={"name": "limited", "rpm": 1000})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        r = c.post("/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {secret}", "x-api-key": "junk"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "x-api-key"
        assert c.post("/v1/chat/completions", json=chat(), headers={"x-api-key": "sk-ll-forged"}).status_code == 401
        ok = c.post("/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {secret}"})
        assert ok.status_code == 200 and ok.headers["x-ratelimit-limit-requests"] == "1000"
    assert any("auth is optional" in line and "advisory" in line for line in log_lines(gateway))


# 8. The store is world-readable

def test_the_data_directory_and_its_files_are_owner_only(gateway: LifelineProcess, tmp_path: Path) -> None:
    data = gateway.workdir / ".lifeline"
    assert mode(data) == 0o700
    for name in ("lifeline.sqlite", "lifeline.sqlite-wal", "lifeline.sqlite-shm", "admin-token.sha256"):
        assert mode(data / name) == 0o600, name
    backup = tmp_path / "backup.sqlite"
    done = subprocess.run([str(lifeline_bin()), "backup", str(backup), "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert mode(backup) == 0o600


def test_a_data_directory_found_readable_by_others_is_named_in_a_warning(tmp_path: Path) -> None:
    workdir = tmp_path / "old-install"
    data = workdir / ".lifeline"
    data.mkdir(parents=True)
    os.chmod(data, 0o755)
    (data / "admin-token.sha256").write_text("00" * 32)
    os.chmod(data / "admin-token.sha256", 0o644)
    gw = start_gateway(workdir, "hardening-a-old-install")
    try:
        warnings = [line for line in log_lines(gw) if "readable by other users" in line]
    finally:
        gw.stop()
    assert any("path=.lifeline " in line and "mode=755" in line for line in warnings), warnings
    assert any("admin-token.sha256" in line and "mode=644" in line for line in warnings), warnings


# 5. Cross-site use of a loopback instance

def test_a_cross_site_request_is_refused(gateway: LifelineProcess) -> None:
    body = '{"model": "chat-default", "messages": [{"role": "user", "content": "hi"}]}'
    with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S) as c:
        rebound = c.post("/v1/chat/completions", content=body,
                         headers={"content-type": "text/plain", "origin": "https://evil.example", "host": f"evil.example:{gateway.port}"})
        assert rebound.status_code == 421, rebound.text
        assert rebound.json()["error"]["code"] == "host_not_allowed"
        assert c.get("/api/v2/status.json", headers={"host": "evil.example"}).status_code == 421
        simple = c.post("/v1/chat/completions", content=body, headers={"content-type": "text/plain", "origin": "https://evil.example"})
        assert simple.status_code == 415, simple.text
        assert simple.json()["error"]["param"] == "content-type"
        assert c.post("/v1/messages", content=body, headers={"content-type": "text/plain"}).status_code == 415
        for host in (f"127.0.0.1:{gateway.port}", f"localhost:{gateway.port}"):
            assert c.get("/healthz", headers={"host": host}).status_code == 200


def test_a_flood_of_pending_registrations_never_blocks_the_operator(gateway: LifelineProcess) -> None:
    statuses = []
    with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S) as c:
        for i in range(40):
            # X-Forwarded-For is ignored: no proxy is trusted, so the TCP peer is the source.
            r = c.post("/api/v2/subscribers", json={"endpoint": f"http://hooks.example.com/flood-{i}"},
                       headers={"x-forwarded-for": f"198.51.100.{i}"})
            statuses.append(r.status_code)
        assert statuses.count(201) == 5 and statuses.count(429) == 35, statuses
        operator = c.post("/api/v2/subscribers", json={"endpoint": "http://hooks.example.com/ops"},
                          headers={"authorization": f"Bearer {admin_token(gateway)}"})
        assert operator.status_code == 201, operator.text
        assert operator.json()["state"] == "active"


LEAKY = "Incorrect API key provided: sk-upstream-4kQ9zT2mW7. You can find your API key in your account."


def test_an_upstream_error_never_hands_its_key_to_a_client(gateway: LifelineProcess) -> None:
    """Point 2: every deployment answers 401 quoting its own key; the client gets 502 naming the
    deployments' configuration, in Lifeline's words, and no upstream text."""
    auth = {"authorization": f"Bearer {admin_token(gateway)}"}
    with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S) as c:
        deployments = c.get("/admin/v1/deployments", headers=auth).json()["data"]
        controls = [d["base_url"].removesuffix("/v1") + "/sim/control" for d in deployments]
        try:
            for control in controls:
                assert c.post(control, json={"error_rate": 1.0, "error_status": 401, "error_message": LEAKY}).status_code == 200
            for path, api_body in (("/v1/chat/completions", chat()), ("/v1/messages", chat())):
                r = c.post(path, json=api_body)
                assert r.status_code == 502, r.text
                assert "sk-upstream" not in r.text and "Incorrect API key" not in r.text, r.text
                assert "api_key" in r.text, r.text
        finally:
            for control in controls:
                c.delete(control)
