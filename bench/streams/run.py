#!/usr/bin/env python3
"""Concurrent paced streams through nginx and through Lifeline to the same simulator.

For every level N (LEVELS, default "100 1000 5000") it starts a fresh set of processes on
loopback: one `lifeline simulate` (TTFT 300 ms, 30 tokens/s), nginx as a reverse proxy to it
(`proxy_buffering off`, upstream keepalive) and `lifeline serve` with one public model whose
one deployment is that simulator. Then, in this order and with no pause inside a target:

  nginx run 1, nginx run 2, Lifeline run 1, Lifeline run 2

(nginx first, then Lifeline; run 2 starts right after run 1 on the same processes, to catch
state left behind by the clients that hung up). Each run opens N streams (`max_tokens` 200,
so about 7 s each when nothing waits), ramped evenly over RAMP_S seconds from LOADGEN_PROCS
load-generator processes (bench/streams/loadgen.py, asyncio on raw sockets). One stream in
ten closes its socket after half its answer. A run ends when every stream has ended or
STREAM_TIMEOUT_S has passed since its last stream started.

Per run it reports: streams started, completed ([DONE]), refused (non-200, or an SSE error
event; with the distinct status codes and error codes), hung up on purpose, and other
failures (timeouts, transport errors, ends without [DONE]); TTFT p50/p99 (from the start of
connect to the first content chunk) and Lifeline's added TTFT over nginx's run with the same
number; the proxy's CPU time (utime+stime from /proc/PID/stat; nginx: all its processes) per
relayed SSE event and Lifeline/nginx ratio; peak RSS (VmHWM; nginx: the sum over its
processes) and RSS idle before load; the mean gap between content chunks against the
simulator's pace and the share of gaps under 1 ms ("bunched"); the load generator's own CPU
use (so one can tell whether it was the bottleneck). For Lifeline it also reads /metrics every
second during the run and once after it: lifeline_concurrency_limit, lifeline_shed_total,
lifeline_in_flight_requests, lifeline_admission_queue_length,
lifeline_deployment_in_flight_requests.

A benchmark, not a test: it exits 0 whenever it could measure; the goals (CPU per chunk
≤ 2 × nginx, idle RSS ≤ 64 MiB, peak RSS ≤ 256 MiB at 2,000 streams) are reported, never
enforced. Start it with bench/streams/run.sh (creates .venv-bench with uvloop, raises the
open-file limit). Environment:

  LIFELINE_BIN      binary under test (default .build-release/release/lifeline)
  LEVELS            concurrent streams per level (default "100 1000 5000")
  RUNS              back-to-back runs per level and target (default 2)
  TARGETS           which proxies, in order (default "nginx lifeline"; "floor" adds the least proxy on
                    Hummingbird and AsyncHTTPClient, bench/floor, at FLOOR_BIN: what those libraries cost)
  RAMP_S            seconds over which a run's streams start (default 1.5)
  HANGUP_EVERY      one stream in this many hangs up midway; 0: none (default 10)
  SIM_TTFT_MS / SIM_TPS / MAX_TOKENS   simulator pace and answer length (300 / 30 / 200)
  ANSWER            long (default): a JSON-schema request whose answer fills max_tokens;
                    plain: a plain chat request (the simulator answers 20-40 tokens)
  STREAM_TIMEOUT_S  bound on one stream, from its start (default 60)
  LOADGEN_PROCS     load-generator processes (default 2)
  RESULTS           JSON output (default bench/streams/results/latest.json)
  LIFELINE_COMMIT   what to record as the binary's source (default: this tree's HEAD)
  KEEP_TMP=1        keep configs and logs
  GATEWAY_LOG_LEVEL the gateway's --log-level (default warning; info logs one line per request,
                    with each failed attempt's cause)
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HZ = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# Descriptors a process keeps for itself (listeners, logs, pipes, its store...).
FD_RESERVE = 200


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# ---------------------------------------------------------------- processes and /proc


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Proc:
    def __init__(self, name: str, args: list[str], tmp: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = tmp / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=tmp, env=env or dict(os.environ), start_new_session=True)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        self._log.close()


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total


def status_kib(pids: list[int], key: str) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def open_fds(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return total


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read(4 * 1024 * 1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError as e:
        return 0, repr(e)


def http_post_stream(url: str, model: str, timeout: float = 10.0) -> int:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "ready?"}], "max_tokens": 2,
                       "stream": True}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read(1024 * 1024)
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def wait_ready(proc: Proc, check) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not proc.alive():
            raise SystemExit(f"{proc.name} exited with {proc.proc.returncode}; log: {proc.log_path}")
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"{proc.name} not ready within {READY_TIMEOUT_S:.0f}s; log: {proc.log_path}")


# ---------------------------------------------------------------- metrics


def metric_values(text: str, name: str) -> dict[str, float]:
    """Every sample of `name`, keyed by its label set ('' when it has none)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head != name and not head.startswith(name + "{"):
            continue
        try:
            out[head[len(name):].strip("{}")] = float(value)
        except ValueError:
            pass
    return out


WATCHED = ("lifeline_concurrency_limit", "lifeline_shed_total", "lifeline_in_flight_requests",
           "lifeline_admission_queue_length", "lifeline_deployment_in_flight_requests",
           "lifeline_upstream_requests_total", "lifeline_scheduling_lag_seconds", "lifeline_host_cpu_busy_ratio")


def scrape(url: str) -> dict[str, dict[str, float]] | None:
    status, text = http_get(url + "/metrics")
    if status != 200:
        return None
    return {name: metric_values(text, name) for name in WATCHED}


class Sampler(threading.Thread):
    """Reads Lifeline's /metrics once a second while a run lasts (min/max of each gauge)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.stop_event = threading.Event()
        self.samples = 0
        self.failed = 0
        self.ranges: dict[str, list[float]] = {}

    def run(self) -> None:
        while not self.stop_event.wait(1.0):
            got = scrape(self.url)
            if got is None:
                self.failed += 1
                continue
            self.samples += 1
            for name in ("lifeline_concurrency_limit", "lifeline_in_flight_requests", "lifeline_admission_queue_length",
                         "lifeline_deployment_in_flight_requests", "lifeline_scheduling_lag_seconds", "lifeline_host_cpu_busy_ratio"):
                for labels, value in got[name].items():
                    key = name + ("{" + labels + "}" if labels else "")
                    lo_hi = self.ranges.setdefault(key, [value, value])
                    lo_hi[0] = min(lo_hi[0], value)
                    lo_hi[1] = max(lo_hi[1], value)


# ---------------------------------------------------------------- statistics


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def hist_percentile(hist: list[int], p: float) -> float | None:
    total = sum(hist)
    if total == 0:
        return None
    rank = max(1, int(-(-p * total // 100)))
    seen = 0
    for ms, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return float(ms)
    return float(len(hist) - 1)


def summarise_run(records: list[dict[str, Any]], hist: list[int], lost: int, n: int) -> dict[str, Any]:
    refused = [r for r in records if (r["status"] is not None and r["status"] != 200) or r["error_code"] is not None]
    refused_ids = {id(r) for r in refused}
    hung = [r for r in records if r["hung_up"] and id(r) not in refused_ids]
    completed = [r for r in records if r["done"] and r["error_code"] is None and not r["hung_up"]]
    others = [r for r in records if id(r) not in refused_ids and not r["hung_up"] and not (r["done"] and r["error_code"] is None)]
    statuses: dict[str, int] = {}
    codes: dict[str, int] = {}
    failures: dict[str, int] = {}
    for r in refused:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        if r["error_code"]:
            codes[r["error_code"]] = codes.get(r["error_code"], 0) + 1
    for r in others:
        failures[r["failure"] or "unknown"] = failures.get(r["failure"] or "unknown", 0) + 1
    ttfts = [r["ttft"] for r in records if r["ttft"] is not None]
    connects = [r["connect_s"] for r in records if r.get("connect_s") is not None]
    heads = [r["head_s"] for r in records if r.get("head_s") is not None]
    gap_n = sum(r["gap_n"] for r in records)
    gap_sum = sum(r["gap_sum"] for r in records)
    bunched = sum(r["bunched"] for r in records)
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    return {
        "streams": n,
        "started": len(records),
        "completed": len(completed),
        "refused": len(refused),
        "refused_statuses": statuses,
        "refused_error_codes": codes,
        "hung_up": len(hung),
        "planned_hangups": sum(1 for r in records if r["planned_hangup"]),
        "other_failures": len(others) + lost,
        "other_failure_kinds": {**failures, **({"lost": lost} if lost else {})},
        "ttft_ms": {"p50": ms(percentile(ttfts, 50)), "p99": ms(percentile(ttfts, 99)), "max": ms(max(ttfts, default=None)),
                    "count": len(ttfts)},
        # Where a first token's wait went: the TCP connect, then the response head.
        "connect_ms": {"p50": ms(percentile(connects, 50)), "p99": ms(percentile(connects, 99))},
        "head_ms": {"p50": ms(percentile(heads, 50)), "p99": ms(percentile(heads, 99))},
        "content_chunks": sum(r["chunks"] for r in records),
        "sse_events": sum(r["events"] for r in records),
        "gaps": {"count": gap_n, "mean_ms": round(gap_sum / gap_n * 1000, 2) if gap_n else None,
                 "bunched_share": round(bunched / gap_n, 4) if gap_n else None,
                 "p50_ms": hist_percentile(hist, 50), "p99_ms": hist_percentile(hist, 99)},
        "elapsed_max_s": round(max((r["elapsed"] for r in records), default=0.0), 2),
    }


# ---------------------------------------------------------------- configs


def nginx_config(tmp: Path, port: int, sim_port: int, nofile: int, max_level: int) -> Path:
    d = tmp / "nginx"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(exist_ok=True)
    # worker_connections counts client and upstream connections alike: 2 per stream, and one
    # worker may take them all (connections are not spread evenly). It cannot exceed the
    # worker's descriptor limit.
    connections = max(1024, min(nofile - FD_RESERVE, 2 * max_level + 512))
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = f"""{user}
worker_processes auto;
worker_rlimit_nofile {nofile};
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  upstream sim {{ server 127.0.0.1:{sim_port}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 120s;
    }}
  }}
}}
"""
    path = d / "nginx.conf"
    path.write_text(conf)
    return path


def lifeline_config(tmp: Path, port: int, sim_port: int) -> Path:
    (tmp / "data").mkdir(exist_ok=True)
    path = tmp / "lifeline.yaml"
    path.write_text(
        f'server: {{host: 127.0.0.1, port: {port}, data_dir: "{tmp}/data"}}\n'
        "models:\n"
        "  - name: bench\n"
        "    deployments:\n"
        f'      - {{name: sim, protocol: openai, base_url: "http://127.0.0.1:{sim_port}/v1", model: sim-model}}\n'
    )
    return path


# ---------------------------------------------------------------- one run


def request_body(model: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The one request every stream sends.

    The simulator's plain answers are short (2 to 4 sentences, about 20 to 40 tokens, whatever
    max_tokens says). To get answers of `max_tokens` tokens, ANSWER=long (the default) asks for
    JSON by a schema of string properties: the simulator fills each with the start of its
    answer, about 7 tokens a property, so enough properties reach max_tokens and the answer is
    cut there (finish_reason "length"). Both proxies relay the same bytes either way."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Tell me about lighthouses."}],
                            "max_tokens": settings["max_tokens"], "stream": True}
    if settings["answer"] == "long":
        props = {f"field_{i:03d}": {"type": "string"} for i in range(settings["max_tokens"] // 5 + 5)}
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "bench", "schema": {"type": "object", "properties": props}}}
    return body


def answer_length(port: int, settings: dict[str, Any]) -> int:
    """Content chunks in the answer, asked of the simulator directly."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
                                 data=json.dumps(request_body("sim-model", settings)).encode(),
                                 headers={"Content-Type": "application/json"})
    n = 0
    with urllib.request.urlopen(req, timeout=60) as r:
        for line in r:
            at = line.find(b'"content":"')
            if line.startswith(b"data:") and at >= 0 and line[at + 11:at + 12] != b'"':
                n += 1
    return n


def run_load(tmp: Path, tag: str, port: int, model: str, n: int, settings: dict[str, Any], procs: int,
             python: str) -> tuple[list[dict[str, Any]], list[int], int, list[dict[str, Any]]]:
    body = json.dumps(request_body(model, settings))
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Accept: text/event-stream\r\nContent-Length: {len(body.encode())}\r\n\r\n{body}")
    start_epoch = time.time() + 1.0  # every process is up and waiting before the first stream
    deadline = settings["ramp_s"] + settings["stream_timeout_s"] + 10
    workers = []
    for w in range(procs):
        spec = {"host": "127.0.0.1", "port": port, "request": request, "total": n, "indices": list(range(w, n, procs)),
                "ramp_s": settings["ramp_s"], "start_epoch": start_epoch, "timeout_s": settings["stream_timeout_s"],
                "deadline_s": deadline, "max_tokens": settings["max_tokens"], "hangup_every": settings["hangup_every"],
                "hangup_after": max(1, settings["answer_chunks"] // 2),
                "max_bytes": 16 * 1024 * 1024}
        spec_path = tmp / f"loadgen-{tag}-{w}.json"
        spec_path.write_text(json.dumps(spec))
        out = open(tmp / f"loadgen-{tag}-{w}.out", "wb")
        err = open(tmp / f"loadgen-{tag}-{w}.err", "wb")
        workers.append((subprocess.Popen([python, str(HERE / "loadgen.py"), str(spec_path)], stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True), out, err, spec_path))
    records: list[dict[str, Any]] = []
    hist = [0] * 2001
    lost = 0
    gen: list[dict[str, Any]] = []
    for p, out, err, spec_path in workers:
        try:
            p.wait(timeout=deadline + 30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=STOP_TIMEOUT_S)
        out.close()
        err.close()
        try:
            result = json.loads(Path(out.name).read_text())
        except ValueError:
            tail = Path(err.name).read_text()[-2000:]
            raise SystemExit(f"load generator {spec_path.name} failed (exit {p.returncode}):\n{tail}")
        records += result["records"]
        lost += result["lost"]
        hist = [a + b for a, b in zip(hist, result["gap_histogram_ms"])]
        gen.append({"cpu_s": round(result["cpu_s"], 2), "active_s": round(result["active_s"], 2),
                    "loop": result["loop"], "nofile": result["nofile"]})
    return records, hist, lost, gen


# ---------------------------------------------------------------- report


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_tables(levels: list[dict[str, Any]], tps: float) -> None:
    pace = 1000.0 / tps if tps else None
    print()
    print("| streams | target | run | started | completed | refused | hung up | other | TTFT p50 / p99 ms | "
          "added TTFT p50 / p99 ms | proxy CPU µs/event | × nginx | RSS idle / peak MiB | mean gap ms | bunched | simulator CPU | loadgen CPU |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lv in levels:
        for run in lv["runs"]:
            s = run["summary"]
            added = run.get("added_ttft_ms") or {}
            ratio = run.get("cpu_ratio_vs_nginx")
            gaps = s["gaps"]
            bunched = None if gaps["bunched_share"] is None else f"{100 * gaps['bunched_share']:.1f} %"
            print(f"| {lv['streams']:,} | {run['target']} | {run['run']} | {fmt(s['started'])} | {fmt(s['completed'])} | "
                  f"{fmt(s['refused'])} | {fmt(s['hung_up'])} | {fmt(s['other_failures'])} | "
                  f"{fmt(s['ttft_ms']['p50'])} / {fmt(s['ttft_ms']['p99'])} | "
                  f"{fmt(added.get('p50'))} / {fmt(added.get('p99'))} | {fmt(run['proxy_cpu_us_per_event'])} | "
                  f"{fmt(ratio, 2)} | {fmt(run['rss_idle_mib'])} / {fmt(run['rss_peak_mib'])} | "
                  f"{fmt(gaps['mean_ms'], 2)} | {bunched or '–'} | {fmt(run['simulator_cpu_share'] * 100, 0)} % | "
                  f"{fmt(run['loadgen_cpu_share'] * 100, 0)} % |")
    print()
    print(f"Simulator pace: one content chunk every {fmt(pace, 1)} ms. TTFT counts from the start of connect. "
          "'other' = timeouts, transport errors and ends without [DONE]. Proxy CPU per SSE event relayed to the clients "
          f"(utime+stime at {HZ} ticks/s). RSS peak is VmHWM since the process started (nginx: all its processes). "
          "simulator CPU: its CPU time over the run's length; loadgen CPU: its busiest process's (100 % = one core; "
          f"{os.cpu_count()} cores in all, shared by the simulator, the proxy and the load generator).")
    print()
    print("Refusals and failures:")
    for lv in levels:
        for run in lv["runs"]:
            s = run["summary"]
            if s["refused"] or s["other_failures"]:
                failed_attempts = {k: v for k, v in ((run.get("lifeline_metrics") or {}).get("attempts_delta") or {}).items()
                                   if 'outcome="ok"' not in k}
                print(f"- {lv['streams']:,} {run['target']} run {run['run']}: statuses {s['refused_statuses'] or '{}'}, "
                      f"error codes {s['refused_error_codes'] or '{}'}, other {s['other_failure_kinds'] or '{}'}"
                      + (f", failed upstream attempts {failed_attempts}" if failed_attempts else ""))
    print()
    print("| streams | Lifeline run | concurrency limit (end; range during run) | shed_total (this run) | in flight (end; max) | "
          "queue (max) | deployment in flight (max) | scheduling lag (max) s | host CPU busy (max) |")
    print("|---:|---:|---|---|---|---:|---:|---:|---:|")
    for lv in levels:
        for run in lv["runs"]:
            m = run.get("lifeline_metrics")
            if not m:
                continue
            end = m["after"] or {}
            rng = m["ranges"]
            limit = ", ".join(f"{k or 'all'} {v:g}" for k, v in (end.get("lifeline_concurrency_limit") or {}).items())
            limit_rng = ", ".join(f"{k.split('{', 1)[1].rstrip('}') if '{' in k else 'all'} {v[0]:g}–{v[1]:g}"
                                  for k, v in rng.items() if k.startswith("lifeline_concurrency_limit"))
            shed = m["shed_delta"]
            shed_text = f"{sum(shed.values()):g}" + (f" ({', '.join(f'{k}: {v:g}' for k, v in shed.items() if v)})" if any(shed.values()) else "")
            inflight_end = sum((end.get("lifeline_in_flight_requests") or {}).values())
            inflight_max = max((v[1] for k, v in rng.items() if k.startswith("lifeline_in_flight_requests")), default=None)
            queue_max = max((v[1] for k, v in rng.items() if k.startswith("lifeline_admission_queue_length")), default=None)
            dep_max = max((v[1] for k, v in rng.items() if k.startswith("lifeline_deployment_in_flight_requests")), default=None)
            lag_max = max((v[1] for k, v in rng.items() if k.startswith("lifeline_scheduling_lag_seconds")), default=None)
            busy_max = max((v[1] for k, v in rng.items() if k.startswith("lifeline_host_cpu_busy_ratio")), default=None)
            print(f"| {lv['streams']:,} | {run['run']} | {limit or '–'}; {limit_rng or '–'} | {shed_text} | "
                  f"{inflight_end:g}; {fmt(inflight_max, 0)} | {fmt(queue_max, 0)} | {fmt(dep_max, 0)} | "
                  f"{fmt(lag_max, 2)} | {fmt(busy_max, 2)} |")


# ---------------------------------------------------------------- main


def main() -> int:
    raw_bin = os.environ.get("LIFELINE_BIN") or str(ROOT / ".build-release" / "release" / "lifeline")
    binary = Path(raw_bin)
    if not binary.is_absolute():
        binary = (Path.cwd() / binary).resolve()
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary} (set LIFELINE_BIN)", file=sys.stderr)
        return 1
    nginx_bin = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if "nginx" in os.environ.get("TARGETS", "nginx lifeline").split() and not nginx_bin:
        print("nginx not found (apt-get install -y nginx)", file=sys.stderr)
        return 1
    levels = [int(x) for x in os.environ.get("LEVELS", "100 1000 5000").split()]
    targets = os.environ.get("TARGETS", "nginx lifeline").split()
    runs = env_int("RUNS", 2)
    procs = max(1, env_int("LOADGEN_PROCS", 2))
    settings = {"ramp_s": env_float("RAMP_S", 1.5), "hangup_every": env_int("HANGUP_EVERY", 10),
                "sim_ttft_ms": env_int("SIM_TTFT_MS", 300), "sim_tps": env_float("SIM_TPS", 30.0),
                "max_tokens": env_int("MAX_TOKENS", 200), "answer": os.environ.get("ANSWER", "long"),
                "stream_timeout_s": env_float("STREAM_TIMEOUT_S", 60.0)}
    if settings["answer"] not in ("long", "plain"):
        print("ANSWER must be long or plain", file=sys.stderr)
        return 1
    if not levels or any(not 1 <= n <= 20000 for n in levels) or not set(targets) <= {"nginx", "floor", "lifeline"}:
        print("LEVELS must be 1..20000 each and TARGETS a list of nginx, floor, lifeline", file=sys.stderr)
        return 1
    floor_bin = Path(os.environ.get("FLOOR_BIN") or ROOT / ".build-release" / "release" / "lifeline-bench-floor")
    if "floor" in targets and not os.access(floor_bin, os.X_OK):
        print(f"no floor proxy at {floor_bin} (swift build -c release --scratch-path .build-release "
              "--product lifeline-bench-floor, or set FLOOR_BIN)", file=sys.stderr)
        return 1
    results_path = Path(os.environ.get("RESULTS", HERE / "results" / "latest.json"))
    python = sys.executable

    # ---- descriptors: raise the soft limit to the hard one; children inherit it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    usable = nofile - FD_RESERVE
    fd_plan = {
        "limit": nofile, "soft_before": soft, "hard": hard, "reserve_per_process": FD_RESERVE,
        "max_streams": {"loadgen": usable * procs, "nginx": usable // 2, "floor": usable // 2, "lifeline": usable // 2, "simulator": usable},
    }
    print(f"open-file limit {nofile} per process (soft was {soft}, hard {hard}); keeping {FD_RESERVE} per process "
          "for its own files, the largest level each process allows is:")
    print(f"  load generator  1 per stream, {procs} processes  -> {fd_plan['max_streams']['loadgen']:,} streams")
    print(f"  nginx           2 per stream (client + upstream); one worker may get every stream -> "
          f"{fd_plan['max_streams']['nginx']:,} streams")
    print(f"  lifeline        2 per stream (client + upstream) -> {fd_plan['max_streams']['lifeline']:,} streams")
    print(f"  simulator       1 per stream (each proxy's upstream connection) -> {fd_plan['max_streams']['simulator']:,} streams")
    too_big = [n for n in levels if n > min(fd_plan["max_streams"].values())]
    if too_big:
        print(f"warning: levels {too_big} exceed what the open-file limit allows; expect refused connections", file=sys.stderr)

    if os.environ.get("LIFELINE_COMMIT"):
        commit = os.environ["LIFELINE_COMMIT"]
    else:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "Sources", "Package.swift"],
                               capture_output=True, text=True).stdout.strip()
        if dirty:
            commit += "+dirty"
    sha = hashlib.sha256(binary.read_bytes()).hexdigest()[:16]
    load_start = os.getloadavg()
    print(f"binary {binary} (sha256 {sha}), commit {commit}; {os.cpu_count()} CPUs; load average "
          f"{load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    print(f"levels {levels}; {runs} runs per level and target, order per level: " + ", ".join(
        f"{t} run {r}" for t in targets for r in range(1, runs + 1)) + "; fresh processes per level")
    print(f"simulator ttft {settings['sim_ttft_ms']} ms, {settings['sim_tps']:g} tokens/s, max_tokens "
          f"{settings['max_tokens']}; ramp {settings['ramp_s']:g} s; 1 in {settings['hangup_every']} hangs up midway; "
          f"{procs} load-generator processes; stream timeout {settings['stream_timeout_s']:g} s", flush=True)
    if load_start[0] > (os.cpu_count() or 1) / 2:
        print(f"note: load average {load_start[0]:.2f} on {os.cpu_count()} CPUs; other work skews the figures", file=sys.stderr)

    tmp_root = Path(tempfile.mkdtemp(prefix="lifeline-streams."))
    level_results: list[dict[str, Any]] = []
    live: list[Proc] = []
    env = dict(os.environ)
    env.pop("LIFELINE_CONFIG", None)
    env["LIFELINE_ADMIN_TOKEN"] = "bench-" + os.urandom(16).hex()
    interrupted = False

    def on_signal(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for n in levels:
            tmp = tmp_root / f"level-{n}"
            tmp.mkdir()
            sim_port, ngx_port, gw_port, floor_port = free_ports(4)
            sim = Proc("simulator", [str(binary), "simulate", "--host", "127.0.0.1", "--port", str(sim_port),
                                     "--protocol", "openai", "--model", "sim-model", "--ttft-ms", str(settings["sim_ttft_ms"]),
                                     "--tokens-per-second", str(settings["sim_tps"]), "--log-level", "warning"], tmp, env)
            live.append(sim)
            wait_ready(sim, lambda: http_get(f"http://127.0.0.1:{sim_port}/healthz")[0] == 200)
            settings["answer_chunks"] = answer_length(sim_port, settings)
            pids: dict[str, Proc] = {}
            if "nginx" in targets:
                conf = nginx_config(tmp, ngx_port, sim_port, nofile, n)
                ngx = Proc("nginx", [nginx_bin, "-p", str(conf.parent), "-c", str(conf), "-e",
                                     str(conf.parent / "logs" / "error.log"), "-g", "daemon off;"], tmp, env)
                live.append(ngx)
                pids["nginx"] = ngx
                wait_ready(ngx, lambda: http_post_stream(f"http://127.0.0.1:{ngx_port}/v1/chat/completions", "sim-model") == 200)
            if "floor" in targets:
                floor = Proc("floor", [str(floor_bin), str(floor_port), f"http://127.0.0.1:{sim_port}/v1/chat/completions"], tmp, env)
                live.append(floor)
                pids["floor"] = floor
                wait_ready(floor, lambda: http_post_stream(f"http://127.0.0.1:{floor_port}/v1/chat/completions", "sim-model") == 200)
            if "lifeline" in targets:
                conf = lifeline_config(tmp, gw_port, sim_port)
                gw = Proc("lifeline", [str(binary), "serve", "--config", str(conf), "--log-level",
                                            os.environ.get("GATEWAY_LOG_LEVEL", "warning")], tmp, env)
                live.append(gw)
                pids["lifeline"] = gw
                wait_ready(gw, lambda: http_post_stream(f"http://127.0.0.1:{gw_port}/v1/chat/completions", "bench") == 200)

            def proxy_pids(target: str) -> list[int]:
                root = pids[target].pid
                return [root] + (children(root) if target == "nginx" else [])

            idle = {t: round(status_kib(proxy_pids(t), "VmRSS") / 1024, 1) for t in pids}
            print(f"\nlevel {n:,}: answers of {settings['answer_chunks']} content chunks (hang-ups after "
                  f"{max(1, settings['answer_chunks'] // 2)}); idle RSS " + ", ".join(f"{t} {v} MiB" for t, v in idle.items()), flush=True)
            level = {"streams": n, "idle_rss_mib": idle, "runs": []}
            for target in targets:
                port, model = {"nginx": (ngx_port, "sim-model"), "floor": (floor_port, "sim-model")}.get(target, (gw_port, "bench"))
                url = f"http://127.0.0.1:{gw_port}"
                for r in range(1, runs + 1):
                    tag = f"{target}-{r}"
                    before = scrape(url) if target == "lifeline" else None
                    sampler = Sampler(url) if target == "lifeline" else None
                    if sampler:
                        sampler.start()
                    ppids = proxy_pids(target)
                    cpu0, sim0 = cpu_ticks(ppids), cpu_ticks([sim.pid])
                    t0 = time.monotonic()
                    records, hist, lost, gen = run_load(tmp, tag, port, model, n, settings, procs, python)
                    wall = time.monotonic() - t0
                    ppids = proxy_pids(target)
                    cpu1, sim1 = cpu_ticks(ppids), cpu_ticks([sim.pid])
                    if sampler:
                        sampler.stop_event.set()
                        sampler.join(timeout=5)
                    summary = summarise_run(records, hist, lost, n)
                    events = summary["sse_events"]
                    cpu_us = (cpu1 - cpu0) * 1e6 / HZ
                    run = {
                        "target": target, "run": r, "summary": summary, "wall_s": round(wall, 2),
                        "proxy_cpu_s": round(cpu_us / 1e6, 2),
                        "proxy_cpu_us_per_event": round(cpu_us / events, 1) if events else None,
                        "simulator_cpu_s": round((sim1 - sim0) / HZ, 2),
                        "simulator_cpu_share": round((sim1 - sim0) / HZ / max(wall - 1.0, 0.001), 3),
                        "rss_idle_mib": idle[target],
                        "rss_peak_mib": round(status_kib(ppids, "VmHWM") / 1024, 1),
                        "rss_after_mib": round(status_kib(ppids, "VmRSS") / 1024, 1),
                        "open_fds_after": open_fds(ppids),
                        "loadgen": gen,
                        "loadgen_cpu_share": round(max(g["cpu_s"] / max(g["active_s"], 0.001) for g in gen), 3),
                        "proxy_alive": all(Path(f"/proc/{p}").exists() for p in ppids[:1]),
                    }
                    if target == "lifeline":
                        after = scrape(url)
                        shed_before = (before or {}).get("lifeline_shed_total", {})
                        shed_after = (after or {}).get("lifeline_shed_total", {})
                        attempts_before = (before or {}).get("lifeline_upstream_requests_total", {})
                        attempts_after = (after or {}).get("lifeline_upstream_requests_total", {})
                        run["lifeline_metrics"] = {
                            "after": after,
                            "shed_delta": {k: v - shed_before.get(k, 0.0) for k, v in shed_after.items()},
                            # Upstream attempts by outcome in this run: a failed one names its kind.
                            "attempts_delta": {k: v - attempts_before.get(k, 0.0) for k, v in attempts_after.items()
                                               if v - attempts_before.get(k, 0.0)},
                            "ranges": sampler.ranges if sampler else {},
                            "samples": sampler.samples if sampler else 0,
                            "failed_scrapes": sampler.failed if sampler else 0,
                        }
                    level["runs"].append(run)
                    s = summary
                    print(f"  {target:<8} run {r}: {s['completed']:,} completed, {s['refused']:,} refused "
                          f"{s['refused_statuses'] or ''}{s['refused_error_codes'] or ''}, {s['hung_up']:,} hung up, "
                          f"{s['other_failures']:,} other {s['other_failure_kinds'] or ''}; TTFT p50 {fmt(s['ttft_ms']['p50'])} "
                          f"p99 {fmt(s['ttft_ms']['p99'])} ms (connect p50 {fmt(s['connect_ms']['p50'])} p99 "
                          f"{fmt(s['connect_ms']['p99'])}, head p50 {fmt(s['head_ms']['p50'])} p99 {fmt(s['head_ms']['p99'])}); {wall:.1f} s; proxy CPU {run['proxy_cpu_s']} s, "
                          f"peak RSS {run['rss_peak_mib']} MiB, after {run['rss_after_mib']} MiB, {run['open_fds_after']} fds; "
                          f"loadgen CPU {100 * run['loadgen_cpu_share']:.0f} %", flush=True)
                    if not run["proxy_alive"]:
                        print(f"  warning: {target} exited during the run; log {pids[target].log_path}", file=sys.stderr)
            # Lifeline's (and the floor's) figures relative to nginx's run with the same number.
            by = {(x["target"], x["run"]): x for x in level["runs"]}
            for r, proxy in ((r, proxy) for r in range(1, runs + 1) for proxy in ("floor", "lifeline")):
                g, x = by.get((proxy, r)), by.get(("nginx", r))
                if not g or not x:
                    continue
                gt, xt = g["summary"]["ttft_ms"], x["summary"]["ttft_ms"]
                g["added_ttft_ms"] = {k: (None if gt[k] is None or xt[k] is None else round(gt[k] - xt[k], 1)) for k in ("p50", "p99")}
                if g["proxy_cpu_us_per_event"] and x["proxy_cpu_us_per_event"]:
                    g["cpu_ratio_vs_nginx"] = round(g["proxy_cpu_us_per_event"] / x["proxy_cpu_us_per_event"], 2)
            level_results.append(level)
            for p in reversed(live):
                p.stop()
            live.clear()
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted; stopping processes", file=sys.stderr)
    finally:
        for p in reversed(live):
            p.stop()
        if os.environ.get("KEEP_TMP") == "1" or interrupted:
            print(f"kept {tmp_root}", file=sys.stderr)
        else:
            shutil.rmtree(tmp_root, ignore_errors=True)
    if interrupted:
        return 130

    load_end = os.getloadavg()
    print_tables(level_results, settings["sim_tps"])
    goals = []
    for lv in level_results:
        for run in lv["runs"]:
            if run["target"] != "lifeline":
                continue
            ratio = run.get("cpu_ratio_vs_nginx")
            goals.append(f"{lv['streams']:,} run {run['run']}: CPU/event {fmt(ratio, 2)} × nginx "
                         f"({'PASS' if ratio is not None and ratio <= 2 else 'MISS'} ≤ 2×)")
        idle = lv["idle_rss_mib"].get("lifeline")
        if idle is not None:
            goals.append(f"{lv['streams']:,}: idle RSS {idle} MiB ({'PASS' if idle <= 64 else 'MISS'} ≤ 64 MiB)")
        peaks = [run["rss_peak_mib"] for run in lv["runs"] if run["target"] == "lifeline"]
        admitted = max((run["summary"]["started"] - run["summary"]["refused"] for run in lv["runs"]
                        if run["target"] == "lifeline"), default=0)
        if peaks and lv["streams"] >= 2000:
            verdict = ("PASS" if max(peaks) <= 256 else "MISS") if admitted >= 2000 else \
                f"not measured: at most {admitted:,} streams admitted"
            goals.append(f"{lv['streams']:,}: peak RSS {max(peaks)} MiB ({verdict}; goal ≤ 256 MiB at 2,000 streams)")
    print()
    print("Goals (reported, never enforced):")
    for g in goals:
        print(f"- {g}")
    print(f"\nload average before {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
          f"after {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; commit {commit}; binary sha256 {sha}")

    report = {
        "benchmark": "streams",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "binary": str(binary), "binary_sha256": sha, "commit": commit,
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in load_end],
        "order": "per level: " + ", ".join(f"{t} run {r}" for t in targets for r in range(1, runs + 1)) +
                 "; fresh simulator, nginx and lifeline per level",
        "settings": {**settings, "levels": levels, "runs": runs, "targets": targets, "loadgen_processes": procs},
        "descriptors": fd_plan,
        "levels": level_results,
        "goals": goals,
    }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
