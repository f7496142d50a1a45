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

A benchmark, not a test: it exits 0 whenever it could measure, whatever the numbers.
Needs httpx (the SDK test venv has it). Usage:

  python bench/chaos/run.py [--seconds 60] [--clients 16] [--baseline]

LIFELINE_BIN selects the binary (a release build, for numbers worth quoting); without it
the debug build under .build/debug is used.
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = ap.parse_args()
    if not (1 <= args.seconds <= 3600 and 1 <= args.clients <= 256):
        ap.error("--seconds must be 1..3600 and --clients 1..256")

    raw_bin = os.environ.get("LIFELINE_BIN")
    binary = Path(raw_bin) if raw_bin else ROOT / ".build" / "debug" / "lifeline"
    if not binary.is_absolute():
        binary = ROOT / binary
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary} (set LIFELINE_BIN)", file=sys.stderr)
        return 1
    build = "release" if raw_bin else "debug"

    args.out.parent.mkdir(parents=True, exist_ok=True)
    logdir = Path(tempfile.mkdtemp(prefix="lifeline-chaos."))
    env = dict(os.environ)
    env.pop("LIFELINE_CONFIG", None)
    env["SIM_KEY"] = SIM_KEY
    procs: list[Proc] = []
    phase_seconds = args.seconds / len(PHASES)
    phases = ([("baseline", None)] if args.baseline else []) + PHASES
    summaries: list[dict[str, Any]] = []

    def start_gateway(tag: str) -> Proc:
        config = logdir / f"gateway-{tag}.yaml"
        config.write_text(gateway_config(sims[0].port, sims[1].port, args))
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
    finally:
        for p in reversed(procs):
            p.stop()

    print()
    print_table(summaries)
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
        },
        "phases": summaries,
        "logs": str(logdir),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
