#!/usr/bin/env python3
"""Chaos load run: steady streaming load through the gateway while drill faults hit oa-1.

Starts two simulators and the gateway on loopback, takes reference answers for a small set
of prompts, then runs three phases of equal length, each against a freshly started gateway
(so one phase's breaker state cannot decide the next) with one drill fault on oa-1:

  error       every attempt at oa-1 answers 500
  blackhole   attempts at oa-1 never answer (they end at the first-token timeout)
  disconnect  streams from oa-1 are cut after 5 tokens (resumed on oa-2)

The gateway has a 1000 ms first-token timeout per deployment and a 1 s base ejection (4 s at
most), so the faulted deployment keeps being retried during a phase; all three are options.
Every request has a 30 s client timeout and every wait a deadline.

For each phase it prints the client-visible error rate (non-200, transport error, or a
stream without [DONE]), p50/p99 of the full answer time and
of the time to first token, and the share of streams whose text equals the reference for
their prompt; the summary goes to bench/chaos/results/latest.json.

Then a burst phase (`--burst N`, default 100; 0 skips it), on a fresh gateway with its own
two simulators pacing `--burst-tokens-per-second` (default 10, so the 20- to 40-token answers
last 2 to 4 s): a drill `{"deployment": "oa-1", "kind": "disconnect", "after_tokens": 5}` is
posted, then N streams are started together (asyncio, one connection each), so every attempt at
oa-1 is cut at its fifth token, all within the burst's start-up spread (`--burst-arm before`,
the default). A drill is drawn when an attempt opens, so one posted while streams run cuts none
of them: `--burst-arm after` (post it once every admitted stream has its first content chunk,
or ended; at most --burst-wait-s) measures admission only, and says so. It reports how many streams were admitted, refused (status and error code), were streaming when
the drill was posted, completed, equal their reference, ended with an SSE error event (by
code: `stream_interrupted` is a stream the gateway could not resume), and the gateway's
lifeline_failovers_total{phase="mid_stream"}, lifeline_retry_budget_exhausted_total and
lifeline_faults_injected_total. In the JSON under "burst".

A benchmark, not a test: it exits 0 whenever it could measure, whatever the numbers.
Needs httpx (the SDK test venv has it; so has .venv-bench, made by bench/streams/run.sh). Usage:

  python bench/chaos/run.py [--seconds 60] [--clients 16] [--baseline] [--burst 100] [--burst-arm before|after]
  python bench/chaos/run.py --burst-only --burst 500

LIFELINE_BIN selects the binary (a release build, for numbers worth quoting); without it
the debug build under .build/debug is used.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

try:
    import httpx
except ImportError:
    sys.exit("bench/chaos/run.py needs httpx (for example: /tmp/venv/bin/python bench/chaos/run.py)")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODEL = "chat-openai"
ADMIN_TOKEN = "chaos-bench-admin"
SIM_KEY = "bench-secret"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# Longest a single request may take before the client gives up (counted as an error).
CLIENT_TIMEOUT_S = 30.0
# Most SSE lines read from one answer: a 60-token answer has about 65.
MAX_LINES = 10_000

PROMPTS = [
    "Describe the morning routine of a lighthouse keeper in a few sentences.",
    "Explain why bridges have expansion joints.",
    "Write a short note about tidal pools.",
    "Summarise how a bicycle gear works.",
    "Give advice for keeping sourdough starter alive.",
    "What makes a good city park?",
    "Describe the sound of rain on a tin roof.",
    "List a few uses for a paperclip.",
]

PHASES = [
    ("error", {"kind": "error", "status": 500, "rate": 1.0}),
    ("blackhole", {"kind": "blackhole", "rate": 1.0}),
    ("disconnect", {"kind": "disconnect", "after_tokens": 5, "rate": 1.0}),
]


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One lifeline process on a free loopback port, with its log in `logdir`."""

    def __init__(self, name: str, args: list[str], port: int, logdir: Path, env: dict[str, str]):
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = logdir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, cwd=logdir, start_new_session=True)

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer"
        with httpx.Client(timeout=2.0) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}")
                try:
                    r = c.get(self.url + path)
                    if r.status_code == 200:
                        return
                    last = f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        raise SystemExit(f"{self.name} not ready at {self.url}{path} within {READY_TIMEOUT_S}s ({last}); log: {self.log_path}")

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


def gateway_config(sim_a: int, sim_b: int, args: argparse.Namespace) -> str:
    def dep(name: str, port: int, priority: int) -> str:
        return (
            f'      - {{name: {name}, protocol: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: "${{SIM_KEY}}", '
            f"model: sim-model, priority: {priority}, weight: 1, "
            f"timeouts: {{connect_ms: 1000, first_token_ms: {args.first_token_ms}, idle_ms: 5000, total_ms: 60000}}}}\n"
        )

    return (
        "server: {host: 127.0.0.1, port: 0, drain_timeout_s: 5}\n"
        f"admin: {{token: {ADMIN_TOKEN}}}\n"
        "routing:\n"
        f"  outlier_detection: {{base_ejection_s: {args.base_ejection_s}, max_ejection_s: {args.max_ejection_s}}}\n"
        "models:\n"
        f"  - name: {MODEL}\n"
        "    deployments:\n"
        + dep("oa-1", sim_a, 1)
        + dep("oa-2", sim_b, 2)
    )


# ---------------------------------------------------------------- one request


def stream_once(client: httpx.Client, url: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    """One streamed chat request; times in seconds from the request's start."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "stream": True}
    out: dict[str, Any] = {"prompt": prompt, "status": None, "ttft": None, "total": None, "done": False,
                           "text": "", "resumed": 0, "deployment": None, "attempts": None, "error": None}
    start = time.monotonic()
    parts: list[str] = []
    try:
        with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
            out["status"] = r.status_code
            out["deployment"] = r.headers.get("x-lifeline-deployment")
            out["attempts"] = r.headers.get("x-lifeline-attempts")
            if r.status_code != 200:
                r.read()
                out["error"] = f"HTTP {r.status_code}"
            else:
                for n, line in enumerate(r.iter_lines()):
                    if n >= MAX_LINES:
                        out["error"] = "too many lines"
                        break
                    if line.startswith(": lifeline resumed"):
                        out["resumed"] += 1
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        out["done"] = True
                        continue
                    event = json.loads(payload)
                    for choice in event.get("choices") or []:
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            if out["ttft"] is None:
                                out["ttft"] = time.monotonic() - start
                            parts.append(content)
                if not out["done"] and out["error"] is None:
                    out["error"] = "stream ended without [DONE]"
    except Exception as exc:  # noqa: BLE001 - any failure is a client-visible error, never a dead client
        out["error"] = type(exc).__name__ + ": " + str(exc)[:200]
    out["total"] = time.monotonic() - start
    out["text"] = "".join(parts)
    return out


def take_references(url: str, max_tokens: int) -> dict[str, str]:
    refs: dict[str, str] = {}
    with httpx.Client(timeout=CLIENT_TIMEOUT_S) as c:
        for prompt in PROMPTS:
            first = stream_once(c, url, prompt, max_tokens)
            second = stream_once(c, url, prompt, max_tokens)
            for r in (first, second):
                if r["error"] or not r["text"]:
                    raise SystemExit(f"reference for {prompt!r} failed: {r['error']}")
            if first["text"] != second["text"]:
                raise SystemExit(f"the simulator gave two different answers to {prompt!r}; references are meaningless")
            refs[prompt] = first["text"]
    return refs


# ---------------------------------------------------------------- one phase


def run_load(url: str, seconds: float, clients: int, max_tokens: int) -> list[dict[str, Any]]:
    """`clients` threads, each sending one stream after another until the deadline.

    Only requests started before the deadline are sent; the ones in flight finish (each is
    bounded by CLIENT_TIMEOUT_S)."""
    deadline = time.monotonic() + seconds
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        n = 0
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as c:
            while time.monotonic() < deadline:
                prompt = PROMPTS[(index + n) % len(PROMPTS)]
                r = stream_once(c, url, prompt, max_tokens)
                r["client"] = index
                with lock:
                    results.append(r)
                n += 1

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline + CLIENT_TIMEOUT_S + 5 - time.monotonic()))
    stuck = sum(1 for t in threads if t.is_alive())
    if stuck:
        print(f"warning: {stuck} clients still waiting past the client timeout; their requests are left out", file=sys.stderr)
    with lock:
        return list(results)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head != name and not head.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            try:
                total += float(value)
            except ValueError:
                pass
    return total


def summarise(name: str, fault: dict[str, Any] | None, results: list[dict[str, Any]], refs: dict[str, str],
              metrics: str, seconds: float) -> dict[str, Any]:
    ok = [r for r in results if r["error"] is None]
    errors = [r for r in results if r["error"] is not None]
    matching = [r for r in ok if r["text"] == refs[r["prompt"]]]
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    totals = [r["total"] for r in ok]
    ttfts = [r["ttft"] for r in ok if r["ttft"] is not None]
    by_deployment: dict[str, int] = {}
    for r in ok:
        by_deployment[r["deployment"] or "?"] = by_deployment.get(r["deployment"] or "?", 0) + 1
    error_kinds: dict[str, int] = {}
    for r in errors:
        error_kinds[r["error"]] = error_kinds.get(r["error"], 0) + 1
    return {
        "phase": name,
        "fault": fault,
        "seconds": seconds,
        "requests": len(results),
        "errors": len(errors),
        "error_rate": round(len(errors) / len(results), 4) if results else None,
        "error_kinds": error_kinds,
        "latency_ms": {"p50": ms(percentile(totals, 50)), "p99": ms(percentile(totals, 99)), "max": ms(max(totals, default=None))},
        "ttft_ms": {"p50": ms(percentile(ttfts, 50)), "p99": ms(percentile(ttfts, 99)), "max": ms(max(ttfts, default=None))},
        "reference_match": len(matching),
        "reference_match_share": round(len(matching) / len(results), 4) if results else None,
        "resumed_streams": sum(1 for r in ok if r["resumed"]),
        "retried_before_first_byte": sum(1 for r in ok if (r["attempts"] or "1") != "1"),
        "answered_by": by_deployment,
        "gateway_metrics": {
            "failovers_before_first_byte": metric_sum(metrics, "lifeline_failovers_total", phase="before_first_byte"),
            "failovers_mid_stream": metric_sum(metrics, "lifeline_failovers_total", phase="mid_stream"),
            "ejections_oa_1": metric_sum(metrics, "lifeline_ejections_total", deployment="oa-1"),
            "retry_budget_exhausted": metric_sum(metrics, "lifeline_retry_budget_exhausted_total"),
            "oa_1_attempts": {
                outcome: metric_sum(metrics, "lifeline_upstream_requests_total", deployment="oa-1", outcome=outcome)
                for outcome in ("ok", "error_5xx", "timeout", "disconnected")
            },
        },
    }


def fmt(v: Any, width: int) -> str:
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        return f"{v:.1f}".rjust(width)
    return str(v).rjust(width)


def print_table(phases: list[dict[str, Any]]) -> None:
    head = (f"{'phase':<11}{'reqs':>6}{'errors':>8}{'err %':>7}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'ttft50':>9}{'ttft99':>9}{'= ref %':>9}{'resumed':>9}{'ff-1st':>8}{'ejects':>8}")
    print(head)
    print("-" * len(head))
    for p in phases:
        g = p["gateway_metrics"]
        share = None if p["reference_match_share"] is None else 100 * p["reference_match_share"]
        err = None if p["error_rate"] is None else 100 * p["error_rate"]
        print(f"{p['phase']:<11}{fmt(p['requests'], 6)}{fmt(p['errors'], 8)}{fmt(err, 7)}"
              f"{fmt(p['latency_ms']['p50'], 9)}{fmt(p['latency_ms']['p99'], 9)}"
              f"{fmt(p['ttft_ms']['p50'], 9)}{fmt(p['ttft_ms']['p99'], 9)}{fmt(share, 9)}"
              f"{fmt(p['resumed_streams'], 9)}{fmt(int(g['failovers_before_first_byte']), 8)}{fmt(int(g['ejections_oa_1']), 8)}")
    print("err % = client-visible errors; = ref % = streams whose text equals the reference for their prompt;")
    print("resumed = streams spliced mid-way; ff-1st = failovers before the first byte; ejects = oa-1 ejections")
    loads = ", ".join(f"{p['phase']} {p['host_load_1m'][0]:.1f}-{p['host_load_1m'][1]:.1f}" for p in phases if "host_load_1m" in p)
    if loads:
        print(f"host 1-minute load average during each phase ({os.cpu_count()} CPUs): {loads}")


# ---------------------------------------------------------------- burst phase


async def astream_once(client: httpx.AsyncClient, url: str, prompt: str, max_tokens: int,
                       first_chunk: asyncio.Event | None = None) -> dict[str, Any]:
    """stream_once for asyncio, also noting an SSE error event's code; sets `first_chunk` at
    the first content chunk (or at the end, whatever happened)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "stream": True}
    out: dict[str, Any] = {"prompt": prompt, "status": None, "ttft": None, "total": None, "done": False, "text": "",
                           "resumed": 0, "deployment": None, "error": None, "error_code": None}
    start = time.monotonic()
    parts: list[str] = []
    try:
        async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
            out["status"] = r.status_code
            out["deployment"] = r.headers.get("x-lifeline-deployment")
            if r.status_code != 200:
                raw = await r.aread()
                out["error"] = f"HTTP {r.status_code}"
                try:
                    out["error_code"] = (json.loads(raw).get("error") or {}).get("code")
                except (ValueError, AttributeError):
                    pass
            else:
                n = 0
                async for line in r.aiter_lines():
                    n += 1
                    if n > MAX_LINES:
                        out["error"] = "too many lines"
                        break
                    if line.startswith(": lifeline resumed"):
                        out["resumed"] += 1
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        out["done"] = True
                        continue
                    event = json.loads(payload)
                    if isinstance(event.get("error"), dict):
                        out["error_code"] = event["error"].get("code") or event["error"].get("type") or "no_code"
                        continue
                    for choice in event.get("choices") or []:
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            if out["ttft"] is None:
                                out["ttft"] = time.monotonic() - start
                                if first_chunk is not None:
                                    first_chunk.set()
                            parts.append(content)
                if out["error_code"] is not None:
                    out["error"] = f"SSE error {out['error_code']}"
                elif not out["done"] and out["error"] is None:
                    out["error"] = "stream ended without [DONE]"
    except Exception as exc:  # noqa: BLE001 - any failure is a client-visible error, never a dead client
        out["error"] = type(exc).__name__ + ": " + str(exc)[:200]
    finally:
        if first_chunk is not None:
            first_chunk.set()
    out["total"] = time.monotonic() - start
    out["text"] = "".join(parts)
    return out


async def run_burst(url: str, n: int, max_tokens: int, arm: str, wait_s: float, fault_duration_s: float) -> dict[str, Any]:
    """N streams at once; the drill is posted once every one is streaming (arm 'after') or
    before the first (arm 'before')."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    fault = {"deployment": "oa-1", "kind": "disconnect", "after_tokens": 5, "rate": 1.0, "duration_s": fault_duration_s}
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
    timeout = httpx.Timeout(CLIENT_TIMEOUT_S, connect=CLIENT_TIMEOUT_S, pool=CLIENT_TIMEOUT_S)
    info: dict[str, Any] = {"arm": arm, "fault": fault}
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client, \
            httpx.AsyncClient(timeout=5.0, headers=headers) as admin:
        async def post_fault() -> None:
            r = await admin.post(url + "/admin/v1/faults", json=fault)
            if r.status_code != 201:
                raise SystemExit(f"drill fault {fault} refused: {r.status_code} {r.text}")

        if arm == "before":
            await post_fault()
            info["fault_posted_s"] = 0.0
        events = [asyncio.Event() for _ in range(n)]
        start = time.monotonic()
        tasks = [asyncio.ensure_future(astream_once(client, url, PROMPTS[i % len(PROMPTS)], max_tokens, events[i]))
                 for i in range(n)]
        if arm == "after":
            waiter = asyncio.gather(*(e.wait() for e in events))
            try:
                await asyncio.wait_for(waiter, timeout=wait_s)
                info["all_streaming"] = True
            except asyncio.TimeoutError:
                info["all_streaming"] = False
            streaming = sum(1 for t in tasks if not t.done())
            info["streaming_at_fault"] = streaming
            info["ended_before_fault"] = n - streaming
            info["fault_sent_s"] = round(time.monotonic() - start, 3)
            await post_fault()
            info["fault_posted_s"] = round(time.monotonic() - start, 3)
        done, pending = await asyncio.wait(tasks, timeout=CLIENT_TIMEOUT_S + wait_s + 10)
        for t in pending:
            t.cancel()
        results = [t.result() for t in done if t.exception() is None]
        info["lost"] = n - len(results)
        info["wall_s"] = round(time.monotonic() - start, 2)
        info["results"] = results
    return info


def summarise_burst(info: dict[str, Any], refs: dict[str, str], metrics: str, n: int) -> dict[str, Any]:
    results = info.pop("results")
    admitted = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] is not None and r["status"] != 200]
    completed = [r for r in results if r["error"] is None]
    matching = [r for r in completed if r["text"] == refs[r["prompt"]]]
    sse_errors: dict[str, int] = {}
    for r in admitted:
        if r["error_code"]:
            sse_errors[r["error_code"]] = sse_errors.get(r["error_code"], 0) + 1
    refusals: dict[str, int] = {}
    for r in refused:
        key = f"{r['status']} {r['error_code'] or ''}".strip()
        refusals[key] = refusals.get(key, 0) + 1
    other: dict[str, int] = {}
    for r in results:
        if r["error"] is not None and r["status"] == 200 and not r["error_code"]:
            other[r["error"]] = other.get(r["error"], 0) + 1
        elif r["status"] is None:
            other[r["error"] or "no status"] = other.get(r["error"] or "no status", 0) + 1
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    ttfts = [r["ttft"] for r in admitted if r["ttft"] is not None]
    first_deployment: dict[str, int] = {}
    for r in admitted:
        first_deployment[r["deployment"] or "?"] = first_deployment.get(r["deployment"] or "?", 0) + 1
    return {
        **info,
        "streams": n,
        "admitted": len(admitted),
        "refused": len(refused),
        "refusals": refusals,
        "completed": len(completed),
        "reference_match": len(matching),
        "resumed_streams": sum(1 for r in results if r["resumed"]),
        "sse_errors": sse_errors,
        "stream_interrupted": sse_errors.get("stream_interrupted", 0),
        "other_errors": other,
        "answered_first_by": first_deployment,
        "ttft_ms": {"p50": ms(percentile(ttfts, 50)), "p99": ms(percentile(ttfts, 99))},
        "gateway_metrics": {
            "failovers_mid_stream": metric_sum(metrics, "lifeline_failovers_total", phase="mid_stream"),
            "failovers_before_first_byte": metric_sum(metrics, "lifeline_failovers_total", phase="before_first_byte"),
            "retry_budget_exhausted": metric_sum(metrics, "lifeline_retry_budget_exhausted_total"),
            "faults_injected_disconnect": metric_sum(metrics, "lifeline_faults_injected_total", kind="disconnect"),
            "shed": metric_sum(metrics, "lifeline_shed_total"),
        },
    }


def print_burst(b: dict[str, Any]) -> None:
    g = b["gateway_metrics"]
    print(f"burst: {b['streams']} streams at once, drill armed {b['arm']} "
          + (f"(sent at {b.get('fault_sent_s')} s, answered at {b['fault_posted_s']} s; {b.get('streaming_at_fault', '-')} streaming then, "
             f"{b.get('ended_before_fault', 0)} already ended"
             + ("" if b.get("all_streaming") else "; not every stream had its first chunk within --burst-wait-s") + ")"
             if b["arm"] == "after" else "(posted before the first stream)"))
    print("| streams | admitted | refused | completed | = reference | stream_interrupted | other SSE errors | other errors "
          "| resumed | failovers mid_stream | retry_budget_exhausted | disconnect faults applied |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    other_sse = sum(v for k, v in b["sse_errors"].items() if k != "stream_interrupted")
    print(f"| {b['streams']} | {b['admitted']} | {b['refused']} | {b['completed']} | {b['reference_match']} | "
          f"{b['stream_interrupted']} | {other_sse} | {sum(b['other_errors'].values()) + b['lost']} | {b['resumed_streams']} | "
          f"{g['failovers_mid_stream']:g} | {g['retry_budget_exhausted']:g} | {g['faults_injected_disconnect']:g} |")
    if b["refusals"]:
        print(f"refused: {b['refusals']}")
    if b["sse_errors"]:
        print(f"SSE error events: {b['sse_errors']}")
    if b["other_errors"]:
        print(f"other errors: {b['other_errors']}")
    print(f"first answered by: {b['answered_first_by']}; TTFT p50/p99 {b['ttft_ms']['p50']}/{b['ttft_ms']['p99']} ms; "
          f"shed {g['shed']:g}; wall {b['wall_s']} s")
    if b["arm"] == "after" and g["faults_injected_disconnect"] == 0:
        print("note: the drill was applied to no attempt: this binary draws a fault when an attempt starts, "
              "so streams already running are not cut (--burst-arm before, the default, cuts them)")


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="total load time, split equally over the three phases")
    ap.add_argument("--clients", type=int, default=16, help="concurrent streaming clients")
    ap.add_argument("--max-tokens", type=int, default=60)
    ap.add_argument("--tokens-per-second", type=float, default=50.0, help="simulator pace")
    ap.add_argument("--ttft-ms", type=int, default=50, help="simulator time to first token")
    ap.add_argument("--first-token-ms", type=int, default=1000, help="the gateway's first-token timeout per deployment")
    ap.add_argument("--base-ejection-s", type=float, default=1.0)
    ap.add_argument("--max-ejection-s", type=float, default=4.0)
    ap.add_argument("--baseline", action="store_true", help="also run a phase of the same length with no fault, first")
    ap.add_argument("--burst", type=int, default=100, help="streams in the burst phase (0: no burst phase)")
    ap.add_argument("--burst-only", action="store_true", help="skip the timed phases, run only the burst")
    ap.add_argument("--burst-arm", choices=("before", "after"), default="before",
                    help="post the drill before the burst (before: every attempt at oa-1 is cut) or once every stream "
                         "is streaming (after: a drill applies only to attempts opened after it, so this cuts none)")
    ap.add_argument("--burst-tokens-per-second", type=float, default=10.0, help="pace of the burst's simulators")
    ap.add_argument("--burst-wait-s", type=float, default=15.0, help="longest wait for every stream to be streaming")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = ap.parse_args()
    if not (1 <= args.seconds <= 3600 and 1 <= args.clients <= 256):
        ap.error("--seconds must be 1..3600 and --clients 1..256")
    if not 0 <= args.burst <= 5000 or (args.burst_only and args.burst == 0):
        ap.error("--burst must be 0..5000 (and above 0 with --burst-only)")

    raw_bin = os.environ.get("LIFELINE_BIN")
    binary = Path(raw_bin) if raw_bin else ROOT / ".build" / "debug" / "lifeline"
    if not binary.is_absolute():
        binary = ROOT / binary
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary} (set LIFELINE_BIN)", file=sys.stderr)
        return 1
    build = "debug" if "/debug/" in str(binary) else "release"

    args.out.parent.mkdir(parents=True, exist_ok=True)
    logdir = Path(tempfile.mkdtemp(prefix="lifeline-chaos."))
    env = dict(os.environ)
    env.pop("LIFELINE_CONFIG", None)
    env["SIM_KEY"] = SIM_KEY
    procs: list[Proc] = []
    phase_seconds = args.seconds / len(PHASES)
    phases = [] if args.burst_only else ([("baseline", None)] if args.baseline else []) + PHASES
    summaries: list[dict[str, Any]] = []
    burst: dict[str, Any] | None = None

    def start_gateway(tag: str, upstreams: list[Proc] | None = None) -> Proc:
        config = logdir / f"gateway-{tag}.yaml"
        pair = upstreams or sims
        config.write_text(gateway_config(pair[0].port, pair[1].port, args))
        port = free_port()
        g = Proc(f"gateway-{tag}", [str(binary), "serve", "--config", str(config), "--port", str(port)], port, logdir, env)
        procs.append(g)
        g.wait_ready("/readyz")
        return g

    try:
        sims = []
        for name in ("simA", "simB"):
            port = free_port()
            p = Proc(name, [str(binary), "simulate", "--port", str(port), "--protocol", "both",
                            "--tokens-per-second", str(args.tokens_per_second), "--ttft-ms", str(args.ttft_ms)],
                     port, logdir, env)
            procs.append(p)
            sims.append(p)
        for p in sims:
            p.wait_ready("/healthz")

        gateway = start_gateway("reference")
        refs = take_references(gateway.url, args.max_tokens)
        gateway.stop()
        print(f"binary {binary} ({build}); {args.clients} clients; {len(phases)} phases of {phase_seconds:.1f}s; "
              f"burst {args.burst}; "
              f"simulators {args.tokens_per_second:g} tokens/s, ttft {args.ttft_ms} ms; max_tokens {args.max_tokens}; "
              f"first_token_ms {args.first_token_ms}; logs in {logdir}")

        for name, fault in phases:
            gateway = start_gateway(name)
            if fault is not None:
                with httpx.Client(timeout=5.0, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
                    body = {"deployment": "oa-1", "duration_s": phase_seconds + CLIENT_TIMEOUT_S + 10, **fault}
                    r = c.post(gateway.url + "/admin/v1/faults", json=body)
                    if r.status_code != 201:
                        raise SystemExit(f"drill fault {body} refused: {r.status_code} {r.text}")
            print(f"phase {name}: {phase_seconds:.1f}s ...", flush=True)
            load_before = os.getloadavg()[0]
            results = run_load(gateway.url, phase_seconds, args.clients, args.max_tokens)
            load_after = os.getloadavg()[0]
            with httpx.Client(timeout=5.0) as c:
                metrics = c.get(gateway.url + "/metrics").text
            gateway.stop()
            summaries.append(summarise(name, fault, results, refs, metrics, phase_seconds))
            summaries[-1]["host_load_1m"] = [round(load_before, 2), round(load_after, 2)]

        if args.burst:
            slow = []
            for name in ("burstA", "burstB"):
                port = free_port()
                p = Proc(name, [str(binary), "simulate", "--port", str(port), "--protocol", "both", "--log-level", "warning",
                                "--tokens-per-second", str(args.burst_tokens_per_second), "--ttft-ms", str(args.ttft_ms)],
                         port, logdir, env)
                procs.append(p)
                slow.append(p)
            for p in slow:
                p.wait_ready("/healthz")
            gateway = start_gateway("burst", slow)
            print(f"burst: {args.burst} streams at once, simulators at {args.burst_tokens_per_second:g} tokens/s, "
                  f"drill armed {args.burst_arm} ...", flush=True)
            load_before = os.getloadavg()[0]
            info = asyncio.run(run_burst(gateway.url, args.burst, args.max_tokens, args.burst_arm, args.burst_wait_s,
                                         CLIENT_TIMEOUT_S + args.burst_wait_s + 30))
            load_after = os.getloadavg()[0]
            with httpx.Client(timeout=5.0) as c:
                metrics = c.get(gateway.url + "/metrics").text
            gateway.stop()
            burst = summarise_burst(info, refs, metrics, args.burst)
            burst["host_load_1m"] = [round(load_before, 2), round(load_after, 2)]
    finally:
        for p in reversed(procs):
            p.stop()

    if summaries:
        print()
        print_table(summaries)
    if burst:
        print()
        print_burst(burst)
    report = {
        "benchmark": "chaos",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "binary": str(binary),
        "build": build,
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "seconds": args.seconds, "phase_seconds": phase_seconds, "clients": args.clients, "max_tokens": args.max_tokens,
            "simulator": {"tokens_per_second": args.tokens_per_second, "ttft_ms": args.ttft_ms},
            "gateway": {"first_token_ms": args.first_token_ms, "base_ejection_s": args.base_ejection_s,
                        "max_ejection_s": args.max_ejection_s, "fresh_gateway_per_phase": True},
            "prompts": len(PROMPTS),
            "burst": {"streams": args.burst, "arm": args.burst_arm, "tokens_per_second": args.burst_tokens_per_second,
                      "wait_s": args.burst_wait_s} if args.burst else None,
        },
        "phases": summaries,
        "burst": burst,
        "logs": str(logdir),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
