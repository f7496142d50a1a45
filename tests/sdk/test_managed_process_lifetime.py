"""A managed process never outlives Lifeline: killed with SIGKILL, Lifeline cannot stop its child
itself, so the child is started with a parent-death signal and is gone within a second; and a
child an earlier run left behind (recorded in `<data_dir>/processes/<deployment>.pid`) is stopped
at the next start, before the new one takes a port. Python's own HTTP server stands in for a
model server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_TOKEN, SIM_KEY, LifelineProcess, free_port, httpx, process_env, wait_for

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
PYTHON = sys.executable
MANAGED = "managed"


def config(sim_port: int) -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0}}
models:
  - name: chat-managed
    deployments:
      - {{name: sim, protocol: openai, base_url: "http://127.0.0.1:{sim_port}/v1", api_key: "${{SIM_KEY}}", model: sim-model, priority: 1}}
      - name: {MANAGED}
        protocol: openai
        model: stand-in
        priority: 2
        process:
          command: {json.dumps(PYTHON)}
          arguments: [-m, http.server, "{{port}}", --bind, 127.0.0.1]
          health_path: /
          health_interval_ms: 50
          stop_grace_s: 2
"""


def start_gateway(lifeline_path: Path, workdir: Path, sim_port: int) -> LifelineProcess:
    path = workdir / "lifeline.yaml"
    path.write_text(config(sim_port))
    gateway = LifelineProcess(
        name="managed-gateway",
        args_for_port=lambda port: [str(lifeline_path), "serve", "--config", str(path), "--port", str(port)],
        workdir=workdir,
        env=process_env(ADMIN_TOKEN, SIM_KEY=SIM_KEY),
    )
    return gateway.start()


def managed(gateway: LifelineProcess) -> dict[str, Any]:
    rows = httpx.get(gateway.url + "/admin/v1/deployments", headers=ADMIN, timeout=10).json()["data"]
    return next(row for row in rows if row["name"] == MANAGED)["process"]


def running_pid(gateway: LifelineProcess) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        process = managed(gateway)
        if process["state"] == "running" and process["pid"]:
            return int(process["pid"])
        time.sleep(0.05)
    raise AssertionError(f"the managed process is not running: {managed(gateway)}")


def stat_fields(pid: int) -> list[str] | None:
    """Fields 3… of /proc/PID/stat (state first), or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split(" ")


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped (a zombie holds no memory and no port)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_managed_process_dies_within_a_second_when_lifeline_is_sigkilled(
    lifeline_path: Path, sim_a: LifelineProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = start_gateway(lifeline_path, tmp_path, sim_a.port)
    try:
        pid = running_pid(gateway)
        port = managed(gateway)["port"]
        assert command_line(pid) == [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        # The pid file is written once the launch returns, a moment after the admin API can
        # already show the process running.
        pid_file = tmp_path / ".lifeline" / "processes" / f"{MANAGED}.pid"
        record = json.loads(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 5, "the pid file"))
        assert record["pid"] == pid and record["command"] == command_line(pid)
        assert "parent-death signal" not in gateway.log_tail(), "setpriv is installed here: no warning"

        assert gateway.proc is not None
        killed_at = time.monotonic()
        gateway.proc.send_signal(signal.SIGKILL)  # Lifeline alone: the child is in a process group of its own
        gateway.proc.wait(timeout=10)
        while alive(pid) and time.monotonic() - killed_at < 1.0:
            time.sleep(0.01)
        gone_after = time.monotonic() - killed_at
    finally:
        gateway.stop()
        if "pid" in locals() and alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not alive(pid), "the managed process outlived Lifeline by more than a second"
    assert not listening(port), "its port is free again"
    with capsys.disabled():
        print(f"\n[managed process] gone {gone_after * 1000:.0f} ms after Lifeline was SIGKILLed")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_child_left_by_an_earlier_run_is_stopped_before_the_new_one_starts(
    lifeline_path: Path, sim_a: LifelineProcess, tmp_path: Path
) -> None:
    # What an earlier run left: its model server still listening, and the pid file naming it.
    old_port = free_port()
    stale = subprocess.Popen([PYTHON, "-m", "http.server", str(old_port), "--bind", "127.0.0.1"], cwd=tmp_path,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not listening(old_port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening(old_port)
        fields = stat_fields(stale.pid)
        assert fields is not None
        processes = tmp_path / ".lifeline" / "processes"
        processes.mkdir(parents=True)
        (processes / f"{MANAGED}.pid").write_text(json.dumps(
            {"pid": stale.pid, "start_time": fields[19], "command": command_line(stale.pid)}))

        gateway = start_gateway(lifeline_path, tmp_path, sim_a.port)
        try:
            assert stale.poll() is not None, "stopped before Lifeline was ready"
            assert not listening(old_port)
            assert "managed process left by an earlier run" in gateway.log_tail()
            pid = running_pid(gateway)
            assert pid != stale.pid
            record = json.loads((processes / f"{MANAGED}.pid").read_text())
            assert record["pid"] == pid
        finally:
            gateway.stop()
        assert not alive(pid)
        assert not (processes / f"{MANAGED}.pid").exists(), "a clean stop removes the pid file"
    finally:
        if stale.poll() is None:
            stale.kill()
        stale.wait(timeout=10)
