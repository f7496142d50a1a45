#!/usr/bin/env python3
"""Overload run: streaming load at 1x, 2x and 5x the upstreams' capacity, with mixed priorities.

Starts two simulators with a fixed capacity (each serves --capacity requests at once and
queues the rest, so time to first token grows with load) and one gateway with both as
deployments of one model, all on 127.0.0.1. Creates four keys (tiers critical, high, normal,
low; no limits) through the admin API, then runs, each phase bounded by its duration:

  capacity   clients straight to the simulators (--capacity per simulator): what the
             upstreams can serve, the figure goodput is compared with
  baseline   --capacity/2 clients through the gateway: unloaded latency of admitted requests
  1x 2x 5x   1, 2 and 5 times 2 x --capacity clients through the gateway

Every client sends one streaming chat request after another (max_tokens 40) until its
phase ends; its key, and so its priority, follows --mix (default 10 % critical, 20 % high,
30 % normal, 40 % low). A refused client (429/503) waits Retry-After (at most --max-backoff
seconds, never past the phase's end) before its next request, as a well-behaved client does;
--no-backoff retries at once instead. Every request has a 30 s client timeout.

For each phase it prints goodput (completions and completion tokens per second that ended
inside the phase, against the 1x phase and the measured capacity), success per priority,
p50/p99 time to first token and total time of admitted requests against the baseline, the
share of refusals that carried Retry-After, and from /metrics the gateway's
lifeline_concurrency_limit (at the end, and its range over the phase) and lifeline_shed_total
(the phase's increase). Targets at 5x are printed PASS/MISS and never fail the run. The
summary goes to bench/overload/results/latest.json.

A benchmark, not a test: it exits 0 whenever it could measure. Needs httpx. Usage:

  /tmp/venv/bin/python bench/overload/run.py [--seconds 20] [--capacity 8] [--no-backoff]

LIFELINE_BIN selects the binary (a release build, for numbers worth quoting); without it
.build-release/release/lifeline is used.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
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
    sys.exit("bench/overload/run.py needs httpx (for example: /tmp/venv/bin/python bench/overload/run.py)")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODEL = "chat-overload"
UPSTREAM_MODEL = "sim-model"
ADMIN_TOKEN = "bench"
TIERS = ["critical", "high", "normal", "low"]
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CLIENT_TIMEOUT_S = 30.0
# Most SSE lines read from one answer: a 40-token answer has about 45.
MAX_LINES = 10_000
PROMPTS = [
    "Describe the morning routine of a lighthouse keeper in a few sentences.",
    "Explain why bridges have expansion joints.",
    "Write a short note about tidal pools.",
    "Summarise how a bicycle gear works.",
    "Give advice for keeping sourdough starter alive.",
    "What makes a good city park?",
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


def gateway_config(sim_ports: list[int], args: argparse.Namespace) -> str:
    deployments = "".join(
        f'      - {{name: sim-{i + 1}, protocol: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: "bench-sim", '
        f"model: {UPSTREAM_MODEL}, priority: 1, weight: 1}}\n"
        for i, port in enumerate(sim_ports)
    )
    return (
        "server: {host: 127.0.0.1, port: 0, drain_timeout_s: 5}\n"
        f"admin: {{token: {ADMIN_TOKEN}}}\n"
        "admission:\n"
        f"  concurrency: {{initial: {args.limit_initial}, min: {args.limit_min}, max: {args.limit_max}}}\n"
        f"  queue: {{max_length: {args.queue_length}, max_wait_ms: {args.queue_wait_ms}}}\n"
        "models:\n"
        f"  - name: {MODEL}\n"
        "    deployments:\n"
        + deployments
    )


def create_keys(url: str) -> dict[str, str]:
    secrets: dict[str, str] = {}
    with httpx.Client(timeout=10.0, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        for tier in TIERS:
            r = c.post(url + "/admin/v1/keys", json={"name": f"overload-{tier}", "tier": tier})
            if r.status_code != 201:
                raise SystemExit(f"creating the {tier} key: HTTP {r.status_code} {r.text[:300]}")
            body = r.json()
            if body.get("tier") != tier or not str(body.get("secret", "")).startswith("sk-ll-"):
                raise SystemExit(f"unexpected answer creating the {tier} key: {body}")
            secrets[tier] = body["secret"]
    return secrets


# ---------------------------------------------------------------- one request


def stream_once(client: httpx.Client, url: str, model: str, prompt: str, max_tokens: int,
                key: str | None) -> dict[str, Any]:
    """One streamed chat request; times in seconds from the request's start."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    out: dict[str, Any] = {"status": None, "ttft": None, "total": None, "done": False, "tokens": 0,
                           "retry_after": None, "code": None, "error": None}
    start = time.monotonic()
    out["start"] = start
    chunks = 0
    usage_tokens = None
    try:
        with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
            out["status"] = r.status_code
            out["retry_after"] = r.headers.get("retry-after")
            if r.status_code != 200:
                raw = r.read()
                out["error"] = f"HTTP {r.status_code}"
                try:
                    err = json.loads(raw).get("error") or {}
                    out["code"] = err.get("code") or err.get("type")
                except (ValueError, AttributeError):
                    pass
            else:
                for n, line in enumerate(r.iter_lines()):
                    if n >= MAX_LINES:
                        out["error"] = "too many lines"
                        break
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        out["done"] = True
                        continue
                    event = json.loads(payload)
                    if event.get("error"):
                        out["error"] = "error event in stream"
                    if event.get("usage"):
                        usage_tokens = event["usage"].get("completion_tokens")
                    for choice in event.get("choices") or []:
                        if (choice.get("delta") or {}).get("content"):
                            chunks += 1
                            if out["ttft"] is None:
                                out["ttft"] = time.monotonic() - start
                if not out["done"] and out["error"] is None:
                    out["error"] = "stream ended without [DONE]"
    except Exception as exc:  # noqa: BLE001 - any failure is a client-visible error, never a dead client
        out["error"] = type(exc).__name__ + ": " + str(exc)[:200]
    out["end"] = time.monotonic()
    out["total"] = out["end"] - start
    out["tokens"] = usage_tokens if isinstance(usage_tokens, int) else chunks
    return out


# ---------------------------------------------------------------- load


def assign_tiers(clients: int, mix: list[float]) -> list[str]:
    """Tiers for `clients` clients in the proportions of `mix` (largest remainder), interleaved."""
    total = sum(mix)
    exact = [clients * m / total for m in mix]
    counts = [int(x) for x in exact]
    order = sorted(range(len(mix)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: clients - sum(counts)]:
        counts[i] += 1
    tiers = [t for t, n in zip(TIERS, counts) for _ in range(n)]
    # Interleave so that clients started together are not all of one tier.
    return [tiers[(i * 7919) % len(tiers)] for i in range(len(tiers))] if len(tiers) > 1 else tiers


def run_load(url: str, model: str, seconds: float, tiers: list[str], keys: dict[str, str] | None,
             args: argparse.Namespace) -> tuple[list[dict[str, Any]], float, float]:
    """One thread per client, each sending one stream after another until the deadline.

    Only requests started before the deadline are sent; those in flight finish (each is
    bounded by CLIENT_TIMEOUT_S). Returns the results and the phase's start and deadline."""
    start = time.monotonic()
    deadline = start + seconds
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        tier = tiers[index]
        key = keys[tier] if keys else None
        n = 0
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as c:
            while time.monotonic() < deadline:
                r = stream_once(c, url, model, PROMPTS[(index + n) % len(PROMPTS)], args.max_tokens, key)
                r["tier"] = tier
                with lock:
                    results.append(r)
                n += 1
                pause = 0.0
                if r["status"] in (429, 503) and not args.no_backoff:
                    try:
                        pause = float(r["retry_after"]) if r["retry_after"] is not None else 1.0
                    except ValueError:
                        pause = 1.0
                    pause = min(pause, args.max_backoff)
                elif r["status"] is None:
                    pause = 0.1  # transport error: never spin
                pause = min(pause, max(0.0, deadline - time.monotonic()))
                if pause > 0:
                    time.sleep(pause)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(len(tiers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline + CLIENT_TIMEOUT_S + 5 - time.monotonic()))
    stuck = sum(1 for t in threads if t.is_alive())
    if stuck:
        print(f"warning: {stuck} clients still waiting past the client timeout; their requests are left out", file=sys.stderr)
    with lock:
        return list(results), start, deadline


class LimitSampler:
    """Reads lifeline_concurrency_limit, what it compares (the recent median first-token latency and its
    baseline), the admission gauges and the deployments' in-flight attempts from /metrics every 0.5 s."""

    def __init__(self, url: str):
        self.url = url
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2.0) as c:
            for _ in range(100_000):  # bounded; stopped long before
                if self._stop.wait(0.5):
                    return
                try:
                    text = c.get(self.url + "/metrics").text
                except httpx.HTTPError:
                    continue
                self.samples.append({
                    "limit": metric_sum(text, "lifeline_concurrency_limit", scope="gateway"),
                    "in_flight": metric_sum(text, "lifeline_in_flight_requests"),
                    "queued": metric_sum(text, "lifeline_admission_queue_length"),
                    "upstream_in_flight": metric_sum(text, "lifeline_deployment_in_flight_requests"),
                    "recent_s": metric_sum(text, "lifeline_concurrency_latency_seconds", scope="gateway", window="recent"),
                    "baseline_s": metric_sum(text, "lifeline_concurrency_latency_seconds", scope="gateway", window="baseline"),
                })

    def __enter__(self) -> "LimitSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------- figures


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def metric_series(text: str, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head != name and not head.startswith(name + "{"):
            continue
        try:
            out[head] = float(value)
        except ValueError:
            pass
    return out


def metric_sum(text: str, name: str, **labels: str) -> float:
    return sum(v for head, v in metric_series(text, name).items() if all(f'{k}="{v2}"' in head for k, v2 in labels.items()))


def series_delta(before: str, after: str, name: str) -> dict[str, float]:
    b, a = metric_series(before, name), metric_series(after, name)
    return {k[len(name):] or "{}": round(v - b.get(k, 0.0), 3) for k, v in a.items() if v - b.get(k, 0.0) != 0}


def ok(r: dict[str, Any]) -> bool:
    return r["status"] == 200 and r["error"] is None and r["done"]


def summarise(name: str, clients: int, tiers: list[str], results: list[dict[str, Any]], start: float,
              deadline: float) -> dict[str, Any]:
    seconds = deadline - start
    good = [r for r in results if ok(r)]
    in_window = [r for r in good if r["end"] <= deadline]
    refused = [r for r in results if r["status"] in (429, 503)]
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    ttfts = [r["ttft"] for r in good if r["ttft"] is not None]
    totals = [r["total"] for r in good]
    statuses: dict[str, int] = {}
    for r in results:
        k = str(r["status"]) if r["status"] is not None else "transport"
        if r["status"] == 200 and not ok(r):
            k = "200 broken"
        if r["status"] in (429, 503) and r["code"]:
            k += f" {r['code']}"
        statuses[k] = statuses.get(k, 0) + 1
    errors: dict[str, int] = {}
    for r in results:
        if r["error"] and r["status"] not in (429, 503):
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    per_tier = {}
    for tier in TIERS:
        mine = [r for r in results if r["tier"] == tier]
        mine_good = [r for r in mine if ok(r)]
        per_tier[tier] = {
            "clients": tiers.count(tier), "requests": len(mine), "ok": len(mine_good),
            "success": round(len(mine_good) / len(mine), 4) if mine else None,
            "ttft_p99_ms": ms(percentile([r["ttft"] for r in mine_good if r["ttft"] is not None], 99)),
        }
    retry_values = []
    for r in refused:
        try:
            retry_values.append(float(r["retry_after"]))
        except (TypeError, ValueError):
            pass
    return {
        "phase": name, "clients": clients, "seconds": round(seconds, 2),
        "requests": len(results), "ok": len(good), "offered_rps": round(len(results) / seconds, 2),
        "goodput_rps": round(len(in_window) / seconds, 2),
        "goodput_tokens_per_s": round(sum(r["tokens"] for r in in_window) / seconds, 1),
        "success": round(len(good) / len(results), 4) if results else None,
        "statuses": statuses, "errors": errors, "by_tier": per_tier,
        "ttft_ms": {"p50": ms(percentile(ttfts, 50)), "p99": ms(percentile(ttfts, 99)), "max": ms(max(ttfts, default=None))},
        "total_ms": {"p50": ms(percentile(totals, 50)), "p99": ms(percentile(totals, 99)), "max": ms(max(totals, default=None))},
        "refused": len(refused),
        "refused_with_retry_after": sum(1 for r in refused if r["retry_after"] is not None),
        "retry_after_s": {"p50": percentile(retry_values, 50), "max": max(retry_values, default=None)},
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def fmt(v: Any, width: int, digits: int = 1) -> str:
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        return f"{v:.{digits}f}".rjust(width)
    return str(v).rjust(width)


def pct(v: float | None) -> float | None:
    return None if v is None else 100 * v


def print_report(capacity: dict[str, Any], baseline: dict[str, Any], phases: list[dict[str, Any]],
                 targets: list[dict[str, Any]]) -> None:
    print(f"capacity (direct to the simulators, {capacity['clients']} clients): {capacity['goodput_rps']:.2f} completions/s, "
          f"{capacity['goodput_tokens_per_s']:.0f} tokens/s; TTFT p50 {capacity['ttft_ms']['p50']} ms, "
          f"total p50 {capacity['total_ms']['p50']} ms")
    print(f"baseline (through the gateway, {baseline['clients']} clients): TTFT p50/p99 {baseline['ttft_ms']['p50']}/"
          f"{baseline['ttft_ms']['p99']} ms, total p50/p99 {baseline['total_ms']['p50']}/{baseline['total_ms']['p99']} ms, "
          f"success {pct(baseline['success']):.1f} %")
    print()
    head = (f"{'phase':<6}{'clients':>8}{'reqs':>6}{'ok/s':>7}{'tok/s':>7}{'vs 1x':>7}{'vs cap':>7}"
            f"{'crit %':>8}{'high %':>8}{'norm %':>8}{'low %':>8}"
            f"{'ttft50':>8}{'ttft99':>8}{'x base':>7}{'tot50':>7}{'tot99':>7}{'x base':>7}"
            f"{'refused':>8}{'w/ RA %':>8}{'limit':>6}{'range':>8}{'shed':>6}")
    print(head)
    print("-" * len(head))
    for p in phases:
        t = p["by_tier"]
        g = p["gateway"]
        rng = f"{g['limit_min']:.0f}-{g['limit_max']:.0f}" if g["limit_min"] is not None else "-"
        print(f"{p['phase']:<6}{fmt(p['clients'], 8)}{fmt(p['requests'], 6)}{fmt(p['goodput_rps'], 7)}"
              f"{fmt(p['goodput_tokens_per_s'], 7, 0)}{fmt(p['vs_1x'], 7, 2)}{fmt(p['vs_capacity'], 7, 2)}"
              + "".join(fmt(pct(t[tier]["success"]), 8) for tier in TIERS)
              + f"{fmt(p['ttft_ms']['p50'], 8, 0)}{fmt(p['ttft_ms']['p99'], 8, 0)}{fmt(p['ttft_p99_vs_baseline'], 7, 2)}"
              f"{fmt(p['total_ms']['p50'], 7, 0)}{fmt(p['total_ms']['p99'], 7, 0)}{fmt(p['total_p99_vs_baseline'], 7, 2)}"
              f"{fmt(p['refused'], 8)}{fmt(pct(p['retry_after_share']), 8)}{fmt(g['limit_end'], 6, 0)}{rng:>8}"
              f"{fmt(g['shed_total_delta'], 6, 0)}")
    print("ok/s, tok/s = completions and completion tokens per second that ended inside the phase (goodput); vs 1x / vs cap =")
    print("goodput (completions/s) against the 1x phase and the measured capacity; crit..low % = success per priority;")
    print("ttft/tot = p50/p99 ms of admitted (successful) requests, x base = p99 against the unloaded baseline;")
    print("w/ RA % = refused (429/503) answers carrying Retry-After; limit = lifeline_concurrency_limit at the end of the")
    print("phase, range = its min-max sampled every 0.5 s; shed = increase of lifeline_shed_total in the phase")
    for p in phases:
        print(f"  {p['phase']}: statuses {p['statuses']}; shed {p['gateway']['shed_by_label'] or '{}'}"
              + (f"; errors {p['errors']}" if p["errors"] else "")
              + f"; Retry-After p50/max {p['retry_after_s']['p50']}/{p['retry_after_s']['max']} s")
        g = p["gateway"]
        print(f"      upstream in flight p50/max {g['upstream_in_flight_p50']}/{g['upstream_in_flight_max']}; "
              f"gateway's recent median first token p50 {g['recent_median_ms_p50']} ms, baseline at the end {g['baseline_ms_end']} ms")
    print()
    for t in targets:
        print(f"target {t['target']:<48} {t['measured']:<40} {t['verdict']}")


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each loaded phase")
    ap.add_argument("--baseline-seconds", type=float, default=15.0)
    ap.add_argument("--capacity-seconds", type=float, default=10.0)
    ap.add_argument("--capacity", type=int, default=8, help="requests each simulator serves at once")
    ap.add_argument("--multiples", default="1,2,5", help="loads, as multiples of the combined capacity")
    ap.add_argument("--mix", default="10,20,30,40", help="shares of critical,high,normal,low clients")
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--tokens-per-second", type=float, default=50.0, help="simulator pace")
    ap.add_argument("--ttft-ms", type=int, default=50, help="simulator time to first token")
    ap.add_argument("--limit-initial", type=int, default=16)
    ap.add_argument("--limit-min", type=int, default=4)
    ap.add_argument("--limit-max", type=int, default=256)
    ap.add_argument("--queue-length", type=int, default=32)
    ap.add_argument("--queue-wait-ms", type=int, default=1000)
    ap.add_argument("--no-backoff", action="store_true", help="refused clients retry at once instead of waiting Retry-After")
    ap.add_argument("--max-backoff", type=float, default=5.0, help="longest wait on Retry-After, seconds")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = ap.parse_args()
    multiples = [float(m) for m in args.multiples.split(",") if m.strip()]
    mix = [float(m) for m in args.mix.split(",")]
    if not (1 <= args.seconds <= 600 and 1 <= args.capacity <= 64 and len(mix) == 4 and sum(mix) > 0
            and all(0 < m <= 10 for m in multiples) and 1.0 in multiples):
        ap.error("--seconds 1..600, --capacity 1..64, --mix four shares, --multiples in (0, 10] including 1")
    if 2 * args.capacity * max(multiples) > 1000:
        ap.error("at most 1000 clients")

    raw_bin = os.environ.get("LIFELINE_BIN")
    binary = Path(raw_bin) if raw_bin else ROOT / ".build-release" / "release" / "lifeline"
    if not binary.is_absolute():
        binary = ROOT / binary
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary} (set LIFELINE_BIN)", file=sys.stderr)
        return 1

    args.out.parent.mkdir(parents=True, exist_ok=True)
    logdir = Path(tempfile.mkdtemp(prefix="lifeline-overload."))
    env = dict(os.environ)
    for var in ("LIFELINE_CONFIG", "LIFELINE_ADMIN_TOKEN"):
        env.pop(var, None)
    procs: list[Proc] = []
    combined = 2 * args.capacity
    load_start = os.getloadavg()
    phases: list[dict[str, Any]] = []

    try:
        sims = []
        for name in ("sim-1", "sim-2"):
            port = free_port()
            p = Proc(name, [str(binary), "simulate", "--port", str(port), "--protocol", "both", "--model", UPSTREAM_MODEL,
                            "--capacity", str(args.capacity), "--tokens-per-second", str(args.tokens_per_second),
                            "--ttft-ms", str(args.ttft_ms), "--log-level", "warning"], port, logdir, env)
            procs.append(p)
            sims.append(p)
        for p in sims:
            p.wait_ready("/healthz")
        config = logdir / "gateway.yaml"
        config.write_text(gateway_config([s.port for s in sims], args))
        gport = free_port()
        gateway = Proc("gateway", [str(binary), "serve", "--config", str(config), "--port", str(gport),
                                   "--log-level", "warning"], gport, logdir, env)
        procs.append(gateway)
        gateway.wait_ready("/readyz")
        keys = create_keys(gateway.url)
        print(f"binary {binary}; simulators: 2 x capacity {args.capacity}, {args.tokens_per_second:g} tokens/s, "
              f"ttft {args.ttft_ms} ms; max_tokens {args.max_tokens}; admission initial/min/max "
              f"{args.limit_initial}/{args.limit_min}/{args.limit_max}, queue {args.queue_length} x {args.queue_wait_ms} ms; "
              f"{'no backoff' if args.no_backoff else f'refused clients wait Retry-After (<= {args.max_backoff:g} s)'}; "
              f"logs in {logdir}; load average {load_start[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)

        # Capacity: half the clients straight at each simulator.
        print(f"phase capacity: {combined} clients direct, {args.capacity_seconds:g}s ...", flush=True)
        cap_results: list[dict[str, Any]] = []
        threads_out: list[Any] = [None, None]

        def direct(i: int) -> None:
            threads_out[i] = run_load(sims[i].url, UPSTREAM_MODEL, args.capacity_seconds, ["critical"] * args.capacity, None, args)

        ts = [threading.Thread(target=direct, args=(i,), daemon=True) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=args.capacity_seconds + CLIENT_TIMEOUT_S + 10)
        if any(o is None for o in threads_out):
            raise SystemExit("the capacity phase did not finish")
        start = min(o[1] for o in threads_out)
        deadline = max(o[2] for o in threads_out)
        for o in threads_out:
            cap_results.extend(o[0])
        capacity = summarise("capacity", combined, ["critical"] * combined, cap_results, start, deadline)
        if capacity["goodput_rps"] <= 0:
            raise SystemExit(f"no completions straight from the simulators: {capacity['statuses']} {capacity['errors']}")

        plan = [("baseline", max(1, args.capacity // 2), args.baseline_seconds)] + [
            (f"{m:g}x", max(1, round(combined * m)), args.seconds) for m in multiples]
        for name, clients, seconds in plan:
            tiers = assign_tiers(clients, mix)
            with httpx.Client(timeout=5.0) as c:
                before = c.get(gateway.url + "/metrics").text
            print(f"phase {name}: {clients} clients, {seconds:g}s ...", flush=True)
            load_before = os.getloadavg()[0]
            with LimitSampler(gateway.url) as sampler:
                results, start, deadline = run_load(gateway.url, MODEL, seconds, tiers, keys, args)
            load_after = os.getloadavg()[0]
            with httpx.Client(timeout=5.0) as c:
                after = c.get(gateway.url + "/metrics").text
            s = summarise(name, clients, tiers, results, start, deadline)
            limits = [x["limit"] for x in sampler.samples]
            s["gateway"] = {
                "limit_end": metric_sum(after, "lifeline_concurrency_limit", scope="gateway"),
                "limit_min": min(limits, default=None), "limit_max": max(limits, default=None),
                "in_flight_max": max((x["in_flight"] for x in sampler.samples), default=None),
                "queued_max": max((x["queued"] for x in sampler.samples), default=None),
                "upstream_in_flight_p50": percentile([x["upstream_in_flight"] for x in sampler.samples], 50),
                "upstream_in_flight_max": max((x["upstream_in_flight"] for x in sampler.samples), default=None),
                "recent_median_ms_p50": percentile([x["recent_s"] * 1000 for x in sampler.samples], 50),
                "baseline_ms_end": sampler.samples[-1]["baseline_s"] * 1000 if sampler.samples else None,
                "trace": sampler.samples,
                "shed_total_end": metric_sum(after, "lifeline_shed_total"),
                "shed_total_delta": metric_sum(after, "lifeline_shed_total") - metric_sum(before, "lifeline_shed_total"),
                "shed_by_label": series_delta(before, after, "lifeline_shed_total"),
                "rate_limited_delta": metric_sum(after, "lifeline_rate_limited_total") - metric_sum(before, "lifeline_rate_limited_total"),
            }
            s["host_load_1m"] = [round(load_before, 2), round(load_after, 2)]
            phases.append(s)
            # Let the gateway's in-flight work drain before the next phase (bounded).
            for _ in range(50):
                with httpx.Client(timeout=2.0) as c:
                    if metric_sum(c.get(gateway.url + "/metrics").text, "lifeline_in_flight_requests") == 0:
                        break
                time.sleep(0.1)
    finally:
        for p in reversed(procs):
            p.stop()

    baseline = phases[0]
    loaded = phases[1:]
    one_x = next(p for p in loaded if p["phase"] == "1x")
    for p in phases:
        p["vs_1x"] = ratio(p["goodput_rps"], one_x["goodput_rps"])
        p["vs_capacity"] = ratio(p["goodput_rps"], capacity["goodput_rps"])
        p["tokens_vs_capacity"] = ratio(p["goodput_tokens_per_s"], capacity["goodput_tokens_per_s"])
        p["ttft_p99_vs_baseline"] = ratio(p["ttft_ms"]["p99"], baseline["ttft_ms"]["p99"])
        p["total_p99_vs_baseline"] = ratio(p["total_ms"]["p99"], baseline["total_ms"]["p99"])
        p["ttft_p50_vs_baseline"] = ratio(p["ttft_ms"]["p50"], baseline["ttft_ms"]["p50"])
        p["total_p50_vs_baseline"] = ratio(p["total_ms"]["p50"], baseline["total_ms"]["p50"])
        p["retry_after_share"] = ratio(p["refused_with_retry_after"], p["refused"])

    top = max(loaded, key=lambda p: p["clients"])

    def verdict(passed: bool | None) -> str:
        return "-" if passed is None else ("PASS" if passed else "MISS")

    crit = top["by_tier"]["critical"]["success"]
    targets = [
        {"target": f"{top['phase']}: goodput >= 90 % of capacity",
         "measured": f"{top['vs_capacity']} x (tokens {top['tokens_vs_capacity']} x)",
         "verdict": verdict(None if top["vs_capacity"] is None else top["vs_capacity"] >= 0.9)},
        {"target": f"{top['phase']}: critical success >= 99 %",
         "measured": "-" if crit is None else f"{100 * crit:.2f} %",
         "verdict": verdict(None if crit is None else crit >= 0.99)},
        {"target": f"{top['phase']}: admitted TTFT p99 <= 2 x unloaded",
         "measured": f"{top['ttft_p99_vs_baseline']} x ({top['ttft_ms']['p99']} vs {baseline['ttft_ms']['p99']} ms)",
         "verdict": verdict(None if top["ttft_p99_vs_baseline"] is None else top["ttft_p99_vs_baseline"] <= 2)},
        {"target": f"{top['phase']}: admitted total p99 <= 2 x unloaded",
         "measured": f"{top['total_p99_vs_baseline']} x ({top['total_ms']['p99']} vs {baseline['total_ms']['p99']} ms)",
         "verdict": verdict(None if top["total_p99_vs_baseline"] is None else top["total_p99_vs_baseline"] <= 2)},
    ]

    print()
    print_report(capacity, baseline, loaded, targets)
    load_end = os.getloadavg()
    print(f"host load average (1 min) {load_start[0]:.2f} before, {load_end[0]:.2f} after; per phase: "
          + ", ".join(f"{p['phase']} {p['host_load_1m'][0]:.1f}-{p['host_load_1m'][1]:.1f}" for p in phases))

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {
        "benchmark": "overload",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "binary": str(binary),
        "binary_sha256": hashlib.sha256(binary.read_bytes()).hexdigest(),
        "commit": commit,
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                 "load_average_before": [round(x, 2) for x in load_start], "load_average_after": [round(x, 2) for x in load_end]},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "capacity": capacity,
        "phases": phases,
        "targets": targets,
        "logs": str(logdir),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
