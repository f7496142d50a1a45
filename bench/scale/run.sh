#!/usr/bin/env bash
# Scale benchmark: 1, 2 and 3 Lifeline instances sharing one PostgreSQL database behind
# HAProxy (deploy/haproxy's shape), all on loopback, against the same two simulators; plus
# the simulators directly and one instance without the balancer, as baselines in the same run.
# Prints throughput and latency per configuration with ratios. A benchmark, not a test:
# every run is bounded by DURATION and everything started is stopped at the end.
#
# Environment:
#   LIFELINE_BIN   the binary (default: this tree's debug build; a release build measures better)
#   DURATION       seconds per wrk run (default 10)
#   CONNECTIONS    wrk connections (default 32)
#   KEEP_TMP=1     keep the temporary directory (configs, logs)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
LUA="$ROOT/bench/overhead/post.lua"
for tool in wrk haproxy python3 timeout curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: '$tool' not found (apt-get install -y wrk haproxy python3 curl)" >&2; exit 1; }
done
LIFELINE_BIN="${LIFELINE_BIN:-$(cd "$ROOT" && swift build --show-bin-path)/lifeline}"
[[ -x "$LIFELINE_BIN" ]] || { echo "run.sh: no executable at $LIFELINE_BIN (swift build first)" >&2; exit 1; }
PG_URL="$(bash "$ROOT/scripts/postgres.sh")"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/lifeline-scale.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ "${KEEP_TMP:-0}" == 1 ]] || rm -rf "$TMP"
}
trap cleanup EXIT

wait_ready() { # url
  for _ in $(seq 1 200); do
    if curl -fs -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  echo "run.sh: $1 never became ready" >&2
  exit 1
}

SIM_A=18711 SIM_B=18712 LB=18700   # instances take LB+1…LB+3
"$LIFELINE_BIN" simulate --port "$SIM_A" --protocol openai --model sim-model >"$TMP/sim-a.log" 2>&1 & PIDS+=($!)
"$LIFELINE_BIN" simulate --port "$SIM_B" --protocol openai --model sim-model >"$TMP/sim-b.log" 2>&1 & PIDS+=($!)
wait_ready "http://127.0.0.1:$SIM_A/v1/models"
wait_ready "http://127.0.0.1:$SIM_B/v1/models"

DB="lifeline_scale_$$"
python3 - "$PG_URL" "$DB" <<'PY'
import subprocess, sys
url, db = sys.argv[1], sys.argv[2]
subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", "SET client_min_messages = warning", "-c", f"DROP DATABASE IF EXISTS {db}", "-c", f"CREATE DATABASE {db}"], check=True)
PY
DB_URL="${PG_URL%/*}/$DB"

cat >"$TMP/lifeline.yaml" <<YAML
models:
  - name: chat-default
    deployments:
      - {name: sim-a, protocol: openai, base_url: "http://127.0.0.1:$SIM_A/v1", model: sim-model, priority: 1}
      - {name: sim-b, protocol: openai, base_url: "http://127.0.0.1:$SIM_B/v1", model: sim-model, priority: 1}
storage:
  postgres: {url: "$DB_URL"}
YAML

run_wrk() { # label url model
  local out
  out="$(BENCH_MODEL="$3" timeout $((DURATION + 30)) wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$LUA" "$2" 2>&1 | grep '^WRK_JSON ' | cut -c10-)"
  echo "$1 $out" >>"$TMP/results.txt"
}

run_wrk "simulators-direct" "http://127.0.0.1:$SIM_A/v1/chat/completions" sim-model

start_instances() { # count
  for i in $(seq 1 "$1"); do
    LIFELINE_ADMIN_TOKEN=scale-bench "$LIFELINE_BIN" serve --config "$TMP/lifeline.yaml" --port $((LB + i)) \
      >"$TMP/instance-$i.log" 2>&1 & PIDS+=($!)
    INSTANCE_PIDS+=($!)
  done
  for i in $(seq 1 "$1"); do wait_ready "http://127.0.0.1:$((LB + i))/readyz"; done
}

for count in 1 2 3; do
  INSTANCE_PIDS=()
  start_instances "$count"
  if [[ "$count" == 1 ]]; then run_wrk "1-instance-direct" "http://127.0.0.1:$((LB + 1))/v1/chat/completions" chat-default; fi
  {
    echo "global"; echo "    maxconn 4096"
    echo "defaults"; echo "    mode http"; echo "    timeout connect 2s"; echo "    timeout client 60s"; echo "    timeout server 60s"
    echo "frontend lifeline"; echo "    bind 127.0.0.1:$LB"; echo "    default_backend instances"
    echo "backend instances"; echo "    balance leastconn"; echo "    option httpchk"; echo "    http-check send meth GET uri /readyz"
    for i in $(seq 1 "$count"); do echo "    server lifeline-$i 127.0.0.1:$((LB + i)) check inter 1s"; done
  } >"$TMP/haproxy-$count.cfg"
  haproxy -f "$TMP/haproxy-$count.cfg" >"$TMP/haproxy-$count.log" 2>&1 & HAPROXY=$!
  PIDS+=("$HAPROXY")
  wait_ready "http://127.0.0.1:$LB/readyz"
  sleep 2  # every server's first health check
  run_wrk "$count-behind-haproxy" "http://127.0.0.1:$LB/v1/chat/completions" chat-default
  kill "$HAPROXY" "${INSTANCE_PIDS[@]}" 2>/dev/null || true
  wait "$HAPROXY" "${INSTANCE_PIDS[@]}" 2>/dev/null || true
done

python3 - "$TMP/results.txt" "$LIFELINE_BIN" "$CONNECTIONS" "$DURATION" <<'PY'
import json, os, sys
rows = {}
for line in open(sys.argv[1]):
    label, _, raw = line.strip().partition(" ")
    data = json.loads(raw) if raw else None
    rows[label] = data
def rps(d): return d["requests"] / (d["duration_us"] / 1e6) if d else 0
base = rps(rows.get("1-instance-direct"))
print(f"binary: {sys.argv[2]}; {sys.argv[3]} connections, {sys.argv[4]} s per run; {os.cpu_count()} CPUs; "
      f"load average {open('/proc/loadavg').read().split()[0]}")
print(f"{'configuration':22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'× 1 instance':>13}")
for label in ["simulators-direct", "1-instance-direct", "1-behind-haproxy", "2-behind-haproxy", "3-behind-haproxy"]:
    d = rows.get(label)
    if not d:
        print(f"{label:22} not measured"); continue
    errors = sum(d["errors"].values())
    ratio = rps(d) / base if base else 0
    print(f"{label:22} {rps(d):9.0f} {d['latency_us']['p50']/1000:8.2f} {d['latency_us']['p99']/1000:8.2f} {errors:7d} {ratio:13.2f}")
PY
