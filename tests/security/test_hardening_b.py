"""Repro of two findings of the security review, each asserting the attack is now refused. Bounded
and loopback only: one gateway with embedded simulators, two local webhook receivers, a few raw
sockets.

1. A webhook target that answers `307 Location: http://127.0.0.1:…/internal` must not make the
   gateway POST there, and with `notifications.allow_private_targets` off a loopback target is
   refused when registered.
2. A request body trickled one byte at a time must be cut at `server.request_read_timeout_s`, and
   connections beyond `server.max_connections_per_client`, or beyond `server.max_connections` from
   any number of addresses, must get 503 while earlier ones work.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from lifeline_processes import LifelineProcess, ProcessStartError, Receiver, httpx, lifeline_bin, process_env, stop_all  # noqa: E402

ADMIN_TOKEN = "security-b-admin-token"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
MODEL = "chat-default"


def config(extra: str, server: str = "") -> str:
    return (
        f"server: {{host: 127.0.0.1, port: 0{server}}}\n"
        "models:\n"
        f"  - name: {MODEL}\n"
        "    deployments:\n"
        "      - {name: sim-a, protocol: openai, model: sim-model, simulator: {ttft_ms: 1}}\n"
        + extra
    )


@pytest.fixture(scope="module", autouse=True)
def _stop_everything() -> Iterator[None]:
    yield
    stop_all()


def start(tmp_path: Path, name: str, extra: str = "", server: str = "") -> LifelineProcess:
    binary = lifeline_bin()
    if not binary.is_file():
        pytest.fail(f"lifeline binary not found at {binary} (set LIFELINE_BIN)")
    path = tmp_path / f"{name}.yaml"
    path.write_text(config(extra, server))
    process = LifelineProcess(name=name, workdir=tmp_path, env=process_env(ADMIN_TOKEN),
                              args_for_port=lambda port: [str(binary), "serve", "--config", str(path), "--port", str(port)])
    try:
        return process.start()
    except ProcessStartError as exc:
        pytest.fail(str(exc))


class Redirector(Receiver):
    """A receiver whose every POST is answered `307` to `location` (and recorded)."""

    def __init__(self, location: str) -> None:
        super().__init__()
        handler = self.server.RequestHandlerClass

        def do_post(request: Any) -> None:
            length = int(request.headers.get("content-length", "0"))
            request.rfile.read(length)
            with self.lock:
                self.posts.append((request.path, None))
            request.send_response(307)
            request.send_header("location", location)
            request.send_header("content-length", "0")
            request.end_headers()

        handler.do_POST = do_post  # type: ignore[method-assign]


def wait_until(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def open_incident(gateway: LifelineProcess) -> None:
    r = httpx.post(gateway.url + "/admin/v1/incidents", headers=ADMIN, timeout=10,
                   json={"name": "Probe", "body": "Probe.", "components": {MODEL: "degraded_performance"}})
    assert r.status_code == 201, r.text


def test_a_webhook_redirect_to_an_internal_address_is_not_followed(tmp_path: Path) -> None:
    internal = Receiver()
    outside = Redirector(internal.url + "/internal")
    try:
        # Loopback receivers stand in for the outside: private targets allowed, redirects still not followed.
        gateway = start(tmp_path, "redirect", "notifications: {allow_private_targets: true}\n")
        r = httpx.post(gateway.url + "/api/v2/subscribers", headers=ADMIN, timeout=10,
                       json={"subscriber": {"endpoint": outside.url + "/hook"}})
        assert r.status_code == 201, r.text
        open_incident(gateway)
        assert wait_until(lambda: len(outside.posts) >= 1), "the subscriber got the update"
        assert wait_until(lambda: any(d["status"] == "failed" for d in
                                      httpx.get(gateway.url + "/admin/v1/notifications", headers=ADMIN, timeout=10).json()["data"]))
        log = httpx.get(gateway.url + "/admin/v1/notifications", headers=ADMIN, timeout=10).json()["data"]
        assert log[0]["response_status"] == 307
        assert internal.posts == [], "nothing reached the address the redirect named"
        gateway.stop()
    finally:
        outside.close()
        internal.close()


def test_loopback_targets_are_refused_without_the_flag(tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        gateway = start(tmp_path, "no-private")
        for endpoint in (receiver.url + "/hook", "http://localhost:1/x", "http://169.254.169.254/latest/meta-data"):
            for headers in ({}, ADMIN):
                r = httpx.post(gateway.url + "/api/v2/subscribers", headers=headers, timeout=10, json={"subscriber": {"endpoint": endpoint}})
                assert r.status_code == 400, r.text
                assert r.json()["error"]["param"] == "endpoint"
        # A configured webhook on loopback is refused by check-config, naming the field.
        bad = tmp_path / "bad.yaml"
        bad.write_text(config(f'notifications:\n  webhooks:\n    - {{name: ops, format: json, url: "{receiver.url}/hook"}}\n'))
        checked = subprocess.run([str(lifeline_bin()), "check-config", str(bad)], capture_output=True, text=True, timeout=30)
        assert checked.returncode != 0
        assert "notifications.webhooks[0].url" in checked.stdout + checked.stderr
        assert receiver.posts == []
        gateway.stop()
    finally:
        receiver.close()


def raw_connection(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def read_until_closed(connection: socket.socket, limit_s: float = 10.0) -> str:
    connection.settimeout(limit_s)
    chunks = []
    try:
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    return b"".join(chunks).decode(errors="replace")


def test_a_trickled_body_is_cut_at_the_deadline(tmp_path: Path) -> None:
    gateway = start(tmp_path, "trickle", server=", request_read_timeout_s: 1, min_body_bytes_per_second: 0")
    connection = raw_connection(gateway.port)
    connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100000\r\n\r\n{")
    reply = b""
    connection.settimeout(0.2)
    for _ in range(100):  # at most 100 bytes, one every 0.2 s: bounded at 20 s
        try:
            chunk = connection.recv(65536)
            reply += chunk
            if not chunk or reply.startswith(b"HTTP/"):
                break
        except socket.timeout:
            pass
        try:
            connection.sendall(b" ")
        except OSError:
            break
    reply += read_until_closed(connection, 5).encode()
    connection.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply
    gateway.stop()


def test_connections_beyond_the_per_client_cap_get_503(tmp_path: Path) -> None:
    gateway = start(tmp_path, "cap", server=", max_connections_per_client: 2")
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    # From an address of its own: the readiness probe's connection from 127.0.0.1 may not have been
    # seen closed yet, and would count as one of this client's two.
    client = "127.0.0.9"
    first, second = raw_connection(gateway.port, client), raw_connection(gateway.port, client)
    for connection in (first, second):
        connection.sendall(request)
        assert connection.recv(65536).startswith(b"HTTP/1.1 200")
    third = raw_connection(gateway.port, client)
    third.sendall(request)
    refused = read_until_closed(third)
    third.close()
    assert refused.startswith("HTTP/1.1 503"), refused
    assert "retry-after: 1" in refused.lower()
    first.sendall(request)
    assert first.recv(65536).startswith(b"HTTP/1.1 200"), "an admitted connection keeps working"
    first.close()
    second.close()
    assert wait_until(lambda: httpx.get(gateway.url + "/metrics", timeout=5).status_code == 200)
    metrics = httpx.get(gateway.url + "/metrics", timeout=5).text
    assert 'lifeline_connections_refused_total{reason="max_connections_per_client"} 1' in metrics
    gateway.stop()


def test_connections_beyond_the_overall_cap_get_503_whatever_their_address(tmp_path: Path) -> None:
    gateway = start(tmp_path, "overall-cap", server=", max_connections: 2")
    # Each client keeps one connection open (keep-alive) from an address of its own.
    first = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=5)
    second = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"), timeout=5)
    try:
        # The readiness probe's connection may not have been seen closed yet: wait (bounded) until
        # the first client's connection is the only one open.
        assert wait_until(lambda: re.search(r"^lifeline_open_connections 1(\.0)?$", first.get(gateway.url + "/metrics").text,
                                            re.MULTILINE)), first.get(gateway.url + "/metrics").text
        assert second.get(gateway.url + "/healthz").status_code == 200
        # A third address has no connection of its own open, so only the overall cap refuses it.
        third = raw_connection(gateway.port, "127.0.0.4")
        third.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        refused = read_until_closed(third)
        third.close()
        assert refused.startswith("HTTP/1.1 503"), refused
        assert "retry-after: 1" in refused.lower()
        assert "as many connections open as it takes" in refused, refused
        # The two admitted connections keep working, and the refusal is counted with its reason.
        assert second.get(gateway.url + "/healthz").status_code == 200
        metrics = first.get(gateway.url + "/metrics").text
        assert 'lifeline_connections_refused_total{reason="max_connections"} 1' in metrics, metrics
        assert 'lifeline_connections_refused_total{reason="max_connections_per_client"}' not in metrics \
            or 'lifeline_connections_refused_total{reason="max_connections_per_client"} 0' in metrics, metrics
    finally:
        first.close()
        second.close()
    gateway.stop()
