#!/usr/bin/env bash
# Tracing overhead: the same non-streaming chat completions through two gateways over one
# simulator, one with tracing off and one with tracing on at sample_ratio 1.0 exporting to an
# OTLP/HTTP sink on loopback, alternated ROUNDS times; prints requests/s and latency per run
# and the medians, with the gateway's CPU time per request (from /proc, user + system), the
# figure that other load on the machine disturbs least. A benchmark, not a test: loopback only.
#
# Environment:
#   LIFELINE_BIN   the binary (default .build/debug/lifeline; a release binary gives the figures that matter)
#   DURATION       seconds per wrk run (default 10)
#   ROUNDS         off/on pairs (default 3)
#   CONNECTIONS    wrk connections (default 8)
#   THREADS        wrk threads (default 1)
#   RATIO          the traced gateway's sample_ratio (default 1.0; 0 makes spans that are never exported)
#   BASE_BIN       compare two binaries instead: BASE_BIN and LIFELINE_BIN, both with tracing off
#                  (modes "base" and "new"), for a change on the request path
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LIFELINE_BIN="${LIFELINE_BIN:-$ROOT/.build/debug/lifeline}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-8}"
THREADS="${THREADS:-1}"
RATIO="${RATIO:-1.0}"
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "tracing.sh: '$tool' not found" >&2; exit 1; }
done
source "$ROOT/bench/lib.sh"
bench_absolute_binary tracing.sh

TMP="$(mktemp -d "${TMPDIR:-/tmp}/lifeline-tracing-bench.XXXXXX")"
PIDS=()
bench_trap_cleanup

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_ready() {  # url, at most 30 s
  local i
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "tracing.sh: $1 did not come up" >&2
  exit 1
}

P_SIM=$(free_port); P_SINK=$(free_port); P_OFF=$(free_port); P_ON=$(free_port)

"$LIFELINE_BIN" simulate --host 127.0.0.1 --port "$P_SIM" --protocol both --log-level warning >"$TMP/sim.log" 2>&1 &
PIDS+=($!)

# The OTLP/HTTP sink: reads each export and answers 200 with an empty ExportTraceServiceResponse
# (an empty protobuf message is zero bytes); counts the bytes it was sent.
cat >"$TMP/sink.py" <<'EOF'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = [0, 0]

class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        received[0] += 1
        received[1] += len(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        text = f"{received[0]} {received[1]}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
EOF
python3 "$TMP/sink.py" "$P_SINK" &
PIDS+=($!)

gateway() {  # name, port, extra config, binary
  mkdir -p "$TMP/$1"
  cat >"$TMP/$1/lifeline.yaml" <<EOF
server: {host: 127.0.0.1, port: $2}
models:
  - name: bench
    deployments:
      - {name: sim, protocol: openai, base_url: "http://127.0.0.1:$P_SIM/v1", model: sim-model}
$3
EOF
  (cd "$TMP/$1" && exec "$4" serve --config "$TMP/$1/lifeline.yaml" --log-level warning) >"$TMP/$1.log" 2>&1 &
  PIDS+=($!)
  echo $! >"$TMP/$1.pid"
}
cat >"$TMP/summary.py" <<'EOF'
import json, sys
d = json.load(sys.stdin)
cpu_us = int(sys.argv[1]) / int(sys.argv[2]) * 1e6
print("%.1f %d %d %d %.0f" % (d["requests"] / d["duration_us"] * 1e6, d["latency_us"]["p50"], d["latency_us"]["p99"],
                              sum(d["errors"].values()), cpu_us / max(d["requests"], 1)))
EOF
MODES=(off on)
if [[ -n "${BASE_BIN:-}" ]]; then
  BASE_BIN="$(cd "$(dirname "$BASE_BIN")" && pwd)/$(basename "$BASE_BIN")"
  MODES=(base new)
  gateway base "$P_OFF" "" "$BASE_BIN"
  gateway new "$P_ON" "" "$LIFELINE_BIN"
else
  gateway off "$P_OFF" "" "$LIFELINE_BIN"
  gateway on "$P_ON" "tracing: {otlp_endpoint: \"http://127.0.0.1:$P_SINK\", sample_ratio: $RATIO}" "$LIFELINE_BIN"
fi
wait_ready "http://127.0.0.1:$P_SIM/healthz"
wait_ready "http://127.0.0.1:$P_SINK/"
wait_ready "http://127.0.0.1:$P_OFF/readyz"
wait_ready "http://127.0.0.1:$P_ON/readyz"

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime of a process

run() {  # mode → "requests/s p50_us p99_us errors cpu_us_per_request"
  local port=$P_OFF pid
  [[ $1 == "${MODES[1]}" ]] && port=$P_ON
  pid=$(cat "$TMP/$1.pid")
  local before after
  before=$(cpu_ticks "$pid")
  BENCH_MODEL=bench wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$HERE/post.lua" "http://127.0.0.1:$port/v1/chat/completions" \
    | sed -n 's/^WRK_JSON //p' >"$TMP/wrk.json"
  after=$(cpu_ticks "$pid")
  python3 "$TMP/summary.py" "$((after - before))" "$TICKS" <"$TMP/wrk.json"
}

echo "binary: $LIFELINE_BIN${BASE_BIN:+ against $BASE_BIN}; sample_ratio $RATIO; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up: connection pools, the simulator, the exporter's first batch.
BENCH_MODEL=bench wrk -t1 -c2 -d2s -s "$HERE/post.lua" "http://127.0.0.1:$P_OFF/v1/chat/completions" >/dev/null
BENCH_MODEL=bench wrk -t1 -c2 -d2s -s "$HERE/post.lua" "http://127.0.0.1:$P_ON/v1/chat/completions" >/dev/null
printf '%-6s %-5s %10s %9s %9s %6s %10s\n' round mode 'req/s' 'p50_us' 'p99_us' errors 'cpu_us/req'
: >"$TMP/${MODES[0]}.txt"; : >"$TMP/${MODES[1]}.txt"
for round in $(seq 1 "$ROUNDS"); do
  for mode in "${MODES[@]}"; do
    line=$(run "$mode")
    echo "$line" >>"$TMP/$mode.txt"
    # shellcheck disable=SC2086 # the words are the fields
    printf '%-6s %-5s %10s %9s %9s %6s %10s\n' "$round" "$mode" $line
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
for mode in "${MODES[@]}"; do
  printf 'median %-5s %10s %9s %9s %6s %10s\n' "$mode" \
    "$(cut -d' ' -f1 "$TMP/$mode.txt" | median)" "$(cut -d' ' -f2 "$TMP/$mode.txt" | median)" "$(cut -d' ' -f3 "$TMP/$mode.txt" | median)" \
    "" "$(cut -d' ' -f5 "$TMP/$mode.txt" | median)"
done
sleep 6  # one more export interval, so the sink has the last batch
echo "OTLP exports received by the sink (requests, bytes): $(curl -fsS "http://127.0.0.1:$P_SINK/")"
