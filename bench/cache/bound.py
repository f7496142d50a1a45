"""The answer cache's memory bound under many distinct questions (loopback only, bounded).

Starts `lifeline simulate` and `lifeline serve` with one cached model (max_entries, max_bytes
from the environment), sends DISTINCT different temperature-0 questions (default 100,000) with
CONCURRENCY clients at once, and samples every 2 s the cache's entries and bytes from /metrics
and the gateway's resident memory from /proc. Prints the highest of each against the bounds and
writes bench/cache/results/bound.json.

  LIFELINE_BIN=.build-release/release/lifeline .venv-bench/bin/python bench/cache/bound.py
  DISTINCT=100000 CONCURRENCY=32 MAX_ENTRIES=1000 MAX_BYTES=1048576
"""
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DISTINCT = int(os.environ.get("DISTINCT", "100000"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
MAX_ENTRIES = int(os.environ.get("MAX_ENTRIES", "1000"))
MAX_BYTES = int(os.environ.get("MAX_BYTES", str(1024 * 1024)))
DEADLINE_S = float(os.environ.get("DEADLINE_S", "1200"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def metric(text: str, name: str) -> float:
    match = re.search(rf'^{name}\{{model="bench"\}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def main() -> int:
    binary = str(Path(os.environ.get("LIFELINE_BIN") or ROOT / ".build-release" / "release" / "lifeline").resolve())
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary} (set LIFELINE_BIN)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="lifeline-cache-bound."))
    sim_port, gw_port = free_port(), free_port()
    (tmp / "lifeline.yaml").write_text(
        f"server: {{host: 127.0.0.1, port: {gw_port}, data_dir: \"{tmp}/data\"}}\n"
        "models:\n  - name: bench\n"
        f"    cache: {{ttl_s: 3600, max_entries: {MAX_ENTRIES}, max_bytes: {MAX_BYTES}}}\n"
        "    deployments:\n"
        f"      - {{name: sim, protocol: openai, base_url: \"http://127.0.0.1:{sim_port}/v1\", model: sim-model}}\n")
    env = dict(os.environ, LIFELINE_ADMIN_TOKEN="bench-" + os.urandom(8).hex())
    procs = [subprocess.Popen([binary, "simulate", "--host", "127.0.0.1", "--port", str(sim_port), "--log-level", "warning"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    procs.append(subprocess.Popen([binary, "serve", "--config", str(tmp / "lifeline.yaml"), "--log-level", "warning"],
                                  cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    gateway = procs[1]
    base = f"http://127.0.0.1:{gw_port}"
    samples: list[dict] = []
    try:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY + 4)) as client:
            for _ in range(300):
                try:
                    if (await client.get(base + "/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            rss_idle = rss_mib(gateway.pid)
            counter = iter(range(DISTINCT))
            statuses: dict[str, int] = {}
            started = time.monotonic()

            async def worker() -> None:
                for index in counter:
                    if time.monotonic() - started > DEADLINE_S:
                        return
                    r = await client.post(base + "/v1/chat/completions", json={
                        "model": "bench", "max_tokens": 8, "temperature": 0,
                        "messages": [{"role": "user", "content": f"distinct question number {index}"}]})
                    key = f"{r.status_code} {r.headers.get('x-lifeline-cache', '-')}"
                    statuses[key] = statuses.get(key, 0) + 1

            async def sampler() -> None:
                while True:
                    text = (await client.get(base + "/metrics")).text
                    samples.append({"t": round(time.monotonic() - started, 1), "entries": metric(text, "lifeline_cache_entries"),
                                    "bytes": metric(text, "lifeline_cache_bytes"), "rss_mib": round(rss_mib(gateway.pid), 1)})
                    await asyncio.sleep(2)

            sampling = asyncio.create_task(sampler())
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            sampling.cancel()
            elapsed = time.monotonic() - started
            text = (await client.get(base + "/metrics")).text
            final = {"entries": metric(text, "lifeline_cache_entries"), "bytes": metric(text, "lifeline_cache_bytes"),
                     "evictions": metric(text, "lifeline_cache_evictions_total"), "rss_mib": round(rss_mib(gateway.pid), 1)}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    sent = sum(statuses.values())
    peak_entries = max([s["entries"] for s in samples] + [final["entries"]])
    peak_bytes = max([s["bytes"] for s in samples] + [final["bytes"]])
    peak_rss = max([s["rss_mib"] for s in samples] + [final["rss_mib"]])
    result = {"distinct_sent": sent, "seconds": round(elapsed, 1), "requests_per_s": round(sent / elapsed, 1), "statuses": statuses,
              "max_entries": MAX_ENTRIES, "max_bytes": MAX_BYTES, "peak_entries": peak_entries, "peak_bytes": peak_bytes,
              "final": final, "rss_idle_mib": round(rss_idle, 1), "rss_peak_mib": peak_rss, "samples": samples,
              "load_average": os.getloadavg()}
    out = ROOT / "bench" / "cache" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bound.json").write_text(json.dumps(result, indent=1))
    print(f"{sent:,} distinct requests in {elapsed:.0f} s ({sent / elapsed:,.0f}/s), statuses {statuses}")
    print(f"entries peak {peak_entries:,.0f} of max {MAX_ENTRIES:,} ({'PASS' if peak_entries <= MAX_ENTRIES else 'MISS'}); "
          f"bytes peak {peak_bytes:,.0f} of max {MAX_BYTES:,} ({'PASS' if peak_bytes <= MAX_BYTES else 'MISS'}); "
          f"evictions {final['evictions']:,.0f}")
    print(f"gateway RSS idle {rss_idle:.1f} MiB, peak {peak_rss:.1f} MiB, end {final['rss_mib']:.1f} MiB; load average {os.getloadavg()}")
    return 0 if peak_entries <= MAX_ENTRIES and peak_bytes <= MAX_BYTES and sent == DISTINCT else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
