#!/usr/bin/env python3
"""Helpers for bench/overhead/run.sh (standard library only).

  ports N                    print N free loopback TCP ports
  wait URL MODEL SECONDS     POST a chat request until it answers 200 (bounded)
  stream OUT N MAX_TOKENS NAME=URL=MODEL...
                             N sequential streaming requests per target, targets
                             interleaved; records time to first token, total time
                             and the gaps between content chunks
  report DIR OUT.json        read the wrk and stream results in DIR, print the
                             table and ratios, write OUT.json
"""

import datetime
import http.client
import json
import os
import platform
import socket
import statistics
import sys
import time
import urllib.parse

# floor: the least proxy on Hummingbird and AsyncHTTPClient (bench/floor), what the libraries
# Lifeline is built on cost; server: Hummingbird alone answering a fixed body (32 connections only).
TARGETS = ["direct", "nginx", "floor", "lifeline", "server"]
PROXIES = ("nginx", "floor", "lifeline")

# Targets from the product's issue; a benchmark reports them, it does not fail on them.
GOAL_ADDED_P50_US = 100.0
GOAL_THROUGHPUT_VS_NGINX = 0.5
GOAL_ADDED_TTFT_US = 100.0
GOAL_CPU_VS_NGINX = 3.0

PROMPT = "Say something short about latency."


def chat_body(model, stream, max_tokens):
    body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def split_url(url):
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing a non-loopback address: {url}")
    return parts.hostname, parts.port, parts.path or "/"


# ---------------------------------------------------------------- ports / wait

def cmd_ports(count):
    sockets, ports = [], []
    for _ in range(int(count)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    print(" ".join(map(str, ports)))


def cmd_wait(url, model, seconds):
    host, port, path = split_url(url)
    deadline = time.monotonic() + float(seconds)
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("POST", path, body=chat_body(model, False, 4), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            if resp.status == 200:
                deployment = resp.getheader("x-lifeline-deployment")
                print(f"ready: {url}" + (f" (x-lifeline-deployment: {deployment})" if deployment else ""))
                return
            last = f"HTTP {resp.status}: {data[:200]!r}"
        except OSError as error:
            last = str(error)
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {seconds} s: {last}")


# ---------------------------------------------------------------- streaming

class StreamTarget:
    def __init__(self, spec):
        self.name, self.url, self.model = spec.split("=", 2)
        self.host, self.port, self.path = split_url(self.url)
        self.conn = None
        self.body = None
        self.samples = []
        self.failures = 0

    def connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        return self.conn

    def one(self):
        """One streaming request over a kept-alive connection; times are perf_counter seconds."""
        conn = self.connection()
        start = time.perf_counter()
        conn.request("POST", self.path, body=self.body,
                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            resp.read()
            raise RuntimeError(f"HTTP {resp.status}")
        content_times = []
        done_at = None
        for _ in range(100_000):  # bounded: a 20-token answer has a few dozen lines
            line = resp.readline()
            now = time.perf_counter()
            if not line:
                break
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done_at = now
                continue
            event = json.loads(payload)
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    content_times.append(now)
                    break
        end = time.perf_counter()
        if resp.will_close:
            conn.close()
            self.conn = None
        if not content_times or done_at is None:
            raise RuntimeError("stream ended without content or [DONE]")
        gaps = [b - a for a, b in zip(content_times, content_times[1:])]
        return {"ttft": content_times[0] - start, "total": end - start, "chunks": len(content_times), "gaps": gaps}


def cmd_stream(out, count, max_tokens, *specs):
    targets = [StreamTarget(spec) for spec in specs]
    for target in targets:
        target.body = chat_body(target.model, True, int(max_tokens))
        target.one()  # warm-up, not recorded
    for i in range(int(count)):
        # Rotate the order each round so no target always goes first.
        order = targets[i % len(targets):] + targets[:i % len(targets)]
        for target in order:
            try:
                target.samples.append(target.one())
            except (OSError, RuntimeError, ValueError, http.client.HTTPException) as error:
                target.failures += 1
                if target.conn is not None:
                    target.conn.close()
                    target.conn = None
                print(f"stream {target.name}: {error}", file=sys.stderr)
    result = {}
    for target in targets:
        result[target.name] = {"samples": target.samples, "failures": target.failures}
    with open(out, "w") as f:
        json.dump(result, f)


# ---------------------------------------------------------------- report

def percentile(values, p):
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values):
    return statistics.median(values) if values else float("nan")


def load_wrk(directory):
    runs = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        scenario, target, round_ = name[:-5].split(".")
        with open(os.path.join(directory, name)) as f:
            run = json.load(f)
        run["rps"] = run["requests"] / (run["duration_us"] / 1e6)
        cpu_path = os.path.join(directory, name[:-5] + ".cpu")
        if os.path.exists(cpu_path):
            with open(cpu_path) as f:
                cpu = json.load(f)
            per_request = 1e6 / cpu["hz"] / max(1, run["requests"])
            run["cpu_us_per_request"] = {"simulator": cpu["sim_ticks"] * per_request, "proxy": cpu["proxy_ticks"] * per_request}
        run["round"] = int(round_)
        runs.setdefault(scenario, {}).setdefault(target, []).append(run)
    summary = {}
    for scenario, targets in runs.items():
        for target, items in targets.items():
            summary.setdefault(scenario, {})[target] = {
                "rounds": len(items),
                "rps": median([r["rps"] for r in items]),
                "p50_us": median([r["latency_us"]["p50"] for r in items]),
                "p90_us": median([r["latency_us"]["p90"] for r in items]),
                "p99_us": median([r["latency_us"]["p99"] for r in items]),
                "errors": sum(sum(r["errors"].values()) for r in items),
                "proxy_cpu_us_per_request": median([r["cpu_us_per_request"]["proxy"] for r in items if "cpu_us_per_request" in r]),
                "simulator_cpu_us_per_request": median([r["cpu_us_per_request"]["simulator"] for r in items if "cpu_us_per_request" in r]),
                "requests": sum(r["requests"] for r in items),
                "runs": items,
            }
    return summary


def summarize_stream(path, interval_ms):
    with open(path) as f:
        raw = json.load(f)
    summary = {}
    for target, data in raw.items():
        samples = data["samples"]
        ttft = [s["ttft"] * 1e6 for s in samples]
        total = [s["total"] * 1e3 for s in samples]
        gaps = [g * 1e3 for s in samples for g in s["gaps"]]
        first_gaps = [s["gaps"][0] * 1e3 for s in samples if s["gaps"]]
        summary[target] = {
            "requests": len(samples),
            "failures": data["failures"],
            "ttft_p50_us": percentile(ttft, 50),
            "ttft_p90_us": percentile(ttft, 90),
            "ttft_p99_us": percentile(ttft, 99),
            "total_p50_ms": percentile(total, 50),
            "chunks_p50": percentile([s["chunks"] for s in samples], 50),
            "gap_mean_ms": statistics.fmean(gaps) if gaps else float("nan"),
            "gap_p50_ms": percentile(gaps, 50),
            # The gap between the first and second content chunk: near 0 when the first is held back.
            "first_gap_p50_ms": percentile(first_gaps, 50),
            # Gaps under a fifth of the pace mean chunks arrived bunched together.
            "bunched_share": (sum(1 for g in gaps if g < interval_ms / 5) / len(gaps)) if gaps else float("nan"),
        }
    return summary


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def verdict(ok):
    return "PASS" if ok else "MISS"


def fmt(value, digits=0):
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def cmd_report(directory, out):
    meta = json.loads(os.environ.get("BENCH_META", "{}"))
    meta.setdefault("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    meta.setdefault("cpus", os.cpu_count())
    meta.setdefault("cpu_model", cpu_model())
    meta.setdefault("kernel", platform.release())
    wrk = load_wrk(os.path.join(directory, "wrk"))
    interval_ms = 1000.0 / float(meta.get("stream_tokens_per_second", 200))
    stream_path = os.path.join(directory, "stream.json")
    stream = summarize_stream(stream_path, interval_ms) if os.path.exists(stream_path) else {}
    lines = []
    say = lines.append

    c1, c32 = wrk.get("c1", {}), wrk.get("c32", {})
    duration = meta.get("duration_s", "?")
    rounds = meta.get("rounds", 1)
    say(f"Lifeline overhead benchmark  {meta.get('date', '')}")
    say(f"machine: {meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')}), load generator, simulator and proxies share them")
    say(f"binary: {meta.get('binary', '?')} (sha256 {meta.get('binary_sha256', '?')})  commit: {meta.get('commit', '?')}")
    say(f"load average before / after: {meta.get('loadavg_start', '?')} / {meta.get('loadavg_end', '?')}")
    say(f"rounds: {rounds} (figures are medians over rounds)")
    say("")
    say(f"Non-streaming, 1 connection (wrk -t1 -c1 -d{duration}s)")
    say(f"  {'target':<10}{'req/s':>10}{'p50 us':>10}{'p90 us':>10}{'p99 us':>10}{'proxy CPU':>11}{'sim CPU':>9}{'errors':>8}")
    say(f"  {'':<10}{'':>10}{'':>10}{'':>10}{'':>10}{'us/req':>11}{'us/req':>9}{'':>8}")
    for t in TARGETS:
        r = c1.get(t)
        if r:
            say(f"  {t:<10}{fmt(r['rps']):>10}{fmt(r['p50_us']):>10}{fmt(r['p90_us']):>10}{fmt(r['p99_us']):>10}"
                f"{fmt(r['proxy_cpu_us_per_request']) if t != 'direct' else '-':>11}{fmt(r['simulator_cpu_us_per_request']):>9}{r['errors']:>8}")
    say("")
    say(f"Non-streaming, 32 connections (wrk -t2 -c32 -d{duration}s)")
    say(f"  {'target':<10}{'req/s':>10}{'p50 us':>10}{'p90 us':>10}{'p99 us':>10}{'proxy CPU':>11}{'sim CPU':>9}{'errors':>8}")
    say(f"  {'':<10}{'':>10}{'':>10}{'':>10}{'':>10}{'us/req':>11}{'us/req':>9}{'':>8}")
    for t in TARGETS:
        r = c32.get(t)
        if r:
            say(f"  {t:<10}{fmt(r['rps']):>10}{fmt(r['p50_us']):>10}{fmt(r['p90_us']):>10}{fmt(r['p99_us']):>10}"
                f"{fmt(r['proxy_cpu_us_per_request']) if t != 'direct' else '-':>11}{fmt(r['simulator_cpu_us_per_request']):>9}{r['errors']:>8}")
    say("  (floor: the least proxy on Hummingbird and AsyncHTTPClient, bench/floor; server: Hummingbird alone, a fixed answer)")
    if stream:
        say("")
        say(f"Streaming ({meta.get('stream_requests', '?')} sequential requests per target, simulator at "
            f"{meta.get('stream_tokens_per_second', '?')} tokens/s, max_tokens {meta.get('stream_max_tokens', '?')})")
        say(f"  {'target':<10}{'TTFT p50':>10}{'TTFT p90':>10}{'TTFT p99':>10}{'total p50':>11}{'chunks':>8}"
            f"{'gap mean':>10}{'gap p50':>9}{'1st gap':>9}{'bunched':>9}{'fail':>6}")
        say(f"  {'':<10}{'us':>10}{'us':>10}{'us':>10}{'ms':>11}{'':>8}{'ms':>10}{'ms':>9}{'':>9}{'':>6}")
        for t in TARGETS:
            s = stream.get(t)
            if s:
                say(f"  {t:<10}{fmt(s['ttft_p50_us']):>10}{fmt(s['ttft_p90_us']):>10}{fmt(s['ttft_p99_us']):>10}"
                    f"{fmt(s['total_p50_ms'], 1):>11}{fmt(s['chunks_p50']):>8}{fmt(s['gap_mean_ms'], 2):>10}"
                    f"{fmt(s['gap_p50_ms'], 2):>9}{fmt(s['first_gap_p50_ms'], 2):>9}{s['bunched_share'] * 100:>8.1f}%{s['failures']:>6}")

    ratios = {}
    say("")
    say("Overhead")
    if "direct" in c1:
        base = c1["direct"]["p50_us"]
        for t in PROXIES:
            if t in c1:
                ratios[f"added_p50_us_c1_{t}"] = c1[t]["p50_us"] - base
        say("  added p50 latency at 1 connection over direct: "
            + ", ".join(f"{t} {fmt(ratios[f'added_p50_us_c1_{t}'])} us" for t in PROXIES if f"added_p50_us_c1_{t}" in ratios))
    if "nginx" in c32 and "lifeline" in c32:
        ratios["rps_c32_lifeline_over_nginx"] = c32["lifeline"]["rps"] / c32["nginx"]["rps"]
    if "direct" in c32:
        for t in PROXIES:
            if t in c32:
                ratios[f"rps_c32_{t}_over_direct"] = c32[t]["rps"] / c32["direct"]["rps"]
    if "nginx" in c32 and "floor" in c32:
        ratios["rps_c32_floor_over_nginx"] = c32["floor"]["rps"] / c32["nginx"]["rps"]
    if ratios.get("rps_c32_lifeline_over_nginx") is not None:
        say(f"  throughput at 32 connections: lifeline / nginx = {ratios['rps_c32_lifeline_over_nginx']:.2f}x "
            f"(nginx / direct = {ratios.get('rps_c32_nginx_over_direct', float('nan')):.2f}x, "
            f"lifeline / direct = {ratios.get('rps_c32_lifeline_over_direct', float('nan')):.2f}x, "
            f"floor / nginx = {ratios.get('rps_c32_floor_over_nginx', float('nan')):.2f}x)")
    if "nginx" in c32 and "lifeline" in c32:
        cpu = {t: c32[t]["proxy_cpu_us_per_request"] for t in ("nginx", "floor", "server", "lifeline") if t in c32}
        ratios["proxy_cpu_us_per_request_c32"] = cpu
        ratios["cpu_c32_lifeline_over_nginx"] = cpu["lifeline"] / cpu["nginx"]
        say(f"  proxy CPU per request at 32 connections: nginx {fmt(cpu['nginx'])} us, lifeline {fmt(cpu['lifeline'])} us "
            f"({ratios['cpu_c32_lifeline_over_nginx']:.1f}x nginx)")
        if "floor" in cpu:
            ratios["cpu_c32_lifeline_over_floor_us"] = cpu["lifeline"] - cpu["floor"]
            say(f"  the libraries' floor: the least proxy on them {fmt(cpu['floor'])} us ({cpu['floor'] / cpu['nginx']:.1f}x nginx)"
                + (f", Hummingbird alone answering a fixed body {fmt(cpu['server'])} us ({cpu['server'] / cpu['nginx']:.1f}x nginx)" if "server" in cpu else "")
                + f"; Lifeline's own work over the floor {fmt(ratios['cpu_c32_lifeline_over_floor_us'])} us")
    if "direct" in c32:
        for t in PROXIES:
            if t in c32:
                ratios[f"added_p99_us_c32_{t}"] = c32[t]["p99_us"] - c32["direct"]["p99_us"]
    if stream and "direct" in stream:
        for t in PROXIES:
            if t in stream:
                ratios[f"added_ttft_p50_us_{t}"] = stream[t]["ttft_p50_us"] - stream["direct"]["ttft_p50_us"]
        say("  added TTFT p50 over direct: "
            + ", ".join(f"{t} {fmt(ratios[f'added_ttft_p50_us_{t}'])} us" for t in PROXIES if f"added_ttft_p50_us_{t}" in ratios))
        base = stream["direct"]
        kept = {}
        for t in PROXIES:
            if t in stream:
                s = stream[t]
                # Kept: the same mean gap as direct within 0.5 ms, no more than 2 points more chunks
                # arriving bunched together than direct shows (one held chunk in a 20-chunk answer
                # is 5 points), and the first two chunks as far apart as direct has them.
                kept[t] = (abs(s["gap_mean_ms"] - base["gap_mean_ms"]) <= 0.5
                           and s["bunched_share"] <= base["bunched_share"] + 0.02
                           and s["first_gap_p50_ms"] >= base["first_gap_p50_ms"] - 1.0)
        ratios["chunk_timing_kept"] = kept
        ratios["chunk_gap_mean_ms"] = {t: stream[t]["gap_mean_ms"] for t in TARGETS if t in stream}
        say(f"  inter-chunk timing (pace {interval_ms:.1f} ms): direct mean gap {base['gap_mean_ms']:.2f} ms; "
            + ", ".join(f"{t} {stream[t]['gap_mean_ms']:.2f} ms, {'kept' if ok else 'NOT kept'}" for t, ok in kept.items()))

    goals = {}
    if "added_p50_us_c1_lifeline" in ratios:
        goals["added_p50_latency_c1"] = {"target": f"<= {GOAL_ADDED_P50_US:.0f} us", "value_us": round(ratios["added_p50_us_c1_lifeline"], 1),
                                         "result": verdict(ratios["added_p50_us_c1_lifeline"] <= GOAL_ADDED_P50_US)}
    if "rps_c32_lifeline_over_nginx" in ratios:
        goals["throughput_c32_vs_nginx"] = {"target": f">= {GOAL_THROUGHPUT_VS_NGINX}x", "value": round(ratios["rps_c32_lifeline_over_nginx"], 3),
                                            "result": verdict(ratios["rps_c32_lifeline_over_nginx"] >= GOAL_THROUGHPUT_VS_NGINX)}
    if "cpu_c32_lifeline_over_nginx" in ratios:
        goals["proxy_cpu_c32_vs_nginx"] = {"target": f"<= {GOAL_CPU_VS_NGINX:.0f}x", "value": round(ratios["cpu_c32_lifeline_over_nginx"], 2),
                                           "result": verdict(ratios["cpu_c32_lifeline_over_nginx"] <= GOAL_CPU_VS_NGINX)}
    if "added_ttft_p50_us_lifeline" in ratios:
        goals["added_ttft_p50"] = {"target": f"<= {GOAL_ADDED_TTFT_US:.0f} us", "value_us": round(ratios["added_ttft_p50_us_lifeline"], 1),
                                   "result": verdict(ratios["added_ttft_p50_us_lifeline"] <= GOAL_ADDED_TTFT_US)}
    say("")
    say("Targets (reported, not enforced)")
    labels = {"added_p50_latency_c1": "added p50 latency at 1 connection", "throughput_c32_vs_nginx": "throughput at 32 connections vs nginx",
              "proxy_cpu_c32_vs_nginx": "proxy CPU per request at 32 connections vs nginx", "added_ttft_p50": "added TTFT p50 (streaming)"}
    for key, goal in goals.items():
        value = goal.get("value_us", goal.get("value"))
        unit = " us" if "value_us" in goal else "x"
        say(f"  {goal['result']}  {labels[key]}: {value}{unit} (target {goal['target']})")
    say("SUMMARY: " + ", ".join(f"{labels[k]} {g['result']}" for k, g in goals.items()))

    text = "\n".join(lines)
    print(text)
    document = {"meta": meta, "non_streaming": {"c1": c1, "c32": c32}, "streaming": stream, "overhead": ratios, "targets": goals}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(document, f, indent=2, default=str)
        f.write("\n")


def main(argv):
    if not argv:
        raise SystemExit(__doc__)
    command, args = argv[0], argv[1:]
    if command == "ports":
        cmd_ports(*args)
    elif command == "wait":
        cmd_wait(*args)
    elif command == "stream":
        cmd_stream(*args)
    elif command == "report":
        cmd_report(*args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
