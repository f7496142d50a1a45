#!/usr/bin/env bash
# Overhead benchmark: the same requests sent to the simulator directly, through
# nginx, and through Lifeline, in one run, with ratios against those baselines.
# A benchmark, not a test: it reports the targets as PASS/MISS and exits 0
# unless something could not be measured at all.
#
# Environment:
#   LIFELINE_BIN      the binary (default .build-release/release/lifeline, built if absent)
#   FLOOR_BIN         the floor: the least proxy built on Hummingbird and AsyncHTTPClient
#                     (bench/floor; default .build-release/release/lifeline-bench-floor, built if absent)
#   DURATION          seconds per wrk run (default 10)
#   ROUNDS            repeat the wrk runs this many times and report medians (default 1)
#   WARMUP            seconds of warm-up per target before measuring (default 2)
#   STREAM_REQUESTS   sequential streaming requests per target (default 200)
#   STREAM_TPS        simulator pace for the streaming part, tokens/s (default 200)
#   STREAM_MAX_TOKENS tokens per streamed answer (default 20)
#   RESULTS           JSON output (default bench/overhead/results/latest.json)
#   LIFELINE_COMMIT   what to record as the binary's source (default: this tree's HEAD, +dirty)
#   KEEP_TMP=1        keep the temporary directory (configs, logs, raw wrk output)
#   PROFILE=1         also sample the gateway with perf during one extra 32-connection
#                     run and write the top symbols to results/lifeline-c32.perf.txt
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-1}"
WARMUP="${WARMUP:-2}"
STREAM_REQUESTS="${STREAM_REQUESTS:-200}"
STREAM_TPS="${STREAM_TPS:-200}"
STREAM_MAX_TOKENS="${STREAM_MAX_TOKENS:-20}"
RESULTS="${RESULTS:-$HERE/results/latest.json}"
PY="$HERE/overhead.py"
LUA="$HERE/post.lua"

for tool in wrk nginx python3 timeout; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run.sh: '$tool' not found (apt-get install -y nginx wrk python3 coreutils)" >&2
    exit 1
  fi
done
NGINX="$(command -v nginx)"

source "$ROOT/bench/lib.sh"
bench_release_binary run.sh
FLOOR_BIN="${FLOOR_BIN:-$ROOT/.build-release/release/lifeline-bench-floor}"
if [[ ! -x "$FLOOR_BIN" ]]; then
  echo "building the floor proxy (bench/floor)..." >&2
  (cd "$ROOT" && timeout 3600 swift build -c release --scratch-path .build-release --product lifeline-bench-floor)
fi

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  echo "note: load average is $LOAD_START on $(nproc) CPUs; other work will skew the figures" >&2
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/lifeline-overhead.XXXXXX")"
PIDS=()

bench_trap_cleanup

read -r P_SIM P_SIM_STREAM P_GW P_NGX P_NGX_STREAM P_FLOOR P_FLOOR_STREAM < <(python3 "$PY" ports 7)

# --- upstreams: one simulator answering at once, one pacing tokens for the streaming part
"$LIFELINE_BIN" simulate --host 127.0.0.1 --port "$P_SIM" --protocol both --log-level warning >"$TMP/sim.log" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")
"$LIFELINE_BIN" simulate --host 127.0.0.1 --port "$P_SIM_STREAM" --protocol both --tokens-per-second "$STREAM_TPS" \
  --log-level warning >"$TMP/sim-stream.log" 2>&1 &
PIDS+=($!)

# --- the gateway: one public model per simulator
mkdir -p "$TMP/data"
cat >"$TMP/lifeline.yaml" <<EOF
server: {host: 127.0.0.1, port: $P_GW, data_dir: "$TMP/data"}
models:
  - name: bench
    deployments:
      - {name: sim, protocol: openai, base_url: "http://127.0.0.1:$P_SIM/v1", model: sim-model}
  - name: bench-stream
    deployments:
      - {name: sim-stream, protocol: openai, base_url: "http://127.0.0.1:$P_SIM_STREAM/v1", model: sim-model}
EOF
# An admin token set here keeps the gateway from generating and printing one.
LIFELINE_ADMIN_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export LIFELINE_ADMIN_TOKEN
(cd "$TMP" && exec "$LIFELINE_BIN" serve --config "$TMP/lifeline.yaml" --log-level warning) >"$TMP/lifeline.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")

# --- the floor: Hummingbird and AsyncHTTPClient relaying bytes, one process per simulator as nginx has a server each
"$FLOOR_BIN" "$P_FLOOR" "http://127.0.0.1:$P_SIM/v1/chat/completions" >"$TMP/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
"$FLOOR_BIN" "$P_FLOOR_STREAM" "http://127.0.0.1:$P_SIM_STREAM/v1/chat/completions" >"$TMP/floor-stream.log" 2>&1 &
PIDS+=($!)

# --- nginx: a reverse proxy with upstream keepalive, no buffering
bench_nginx_conf <<EOF
  upstream sim { server 127.0.0.1:$P_SIM; keepalive 64; }
  upstream sim_stream { server 127.0.0.1:$P_SIM_STREAM; keepalive 64; }
  server {
    listen 127.0.0.1:$P_NGX;
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
  server {
    listen 127.0.0.1:$P_NGX_STREAM;
    location / {
      proxy_pass http://sim_stream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" -g 'daemon off;' \
  >"$TMP/nginx.log" 2>&1 &
NGX_PID=$!
PIDS+=("$NGX_PID")

URL_DIRECT="http://127.0.0.1:$P_SIM/v1/chat/completions"
URL_NGINX="http://127.0.0.1:$P_NGX/v1/chat/completions"
URL_LIFELINE="http://127.0.0.1:$P_GW/v1/chat/completions"
URL_FLOOR="http://127.0.0.1:$P_FLOOR/v1/chat/completions"
python3 "$PY" wait "$URL_DIRECT" sim-model 60
python3 "$PY" wait "http://127.0.0.1:$P_SIM_STREAM/v1/chat/completions" sim-model 60
python3 "$PY" wait "$URL_NGINX" sim-model 60
python3 "$PY" wait "$URL_LIFELINE" bench 60
python3 "$PY" wait "$URL_FLOOR" sim-model 60
python3 "$PY" wait "http://127.0.0.1:$P_FLOOR_STREAM/v1/chat/completions" sim-model 60
python3 "$PY" wait "http://127.0.0.1:$P_GW/v1/chat/completions" bench-stream 60

# The simulator sees the same request on every path: direct and nginx send the
# upstream model id, Lifeline's public name maps to it.
target_url() {
  case "$1" in
    direct) echo "$URL_DIRECT" ;; nginx) echo "$URL_NGINX" ;; lifeline) echo "$URL_LIFELINE" ;; floor) echo "$URL_FLOOR" ;;
    # Hummingbird alone: the floor's fixed answer, no upstream.
    server) echo "http://127.0.0.1:$P_FLOOR/fixed/v1/chat/completions" ;;
  esac
}
target_model() { case "$1" in lifeline) echo bench ;; *) echo sim-model ;; esac; }

# CPU time (utime + stime, in clock ticks) of the given processes, summed.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    [[ -r "/proc/$pid/stat" ]] || continue
    # Fields after "(comm) ": state is $1, so utime (field 14) is $12 and stime $13.
    total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
proxy_pids() {
  case "$1" in
    nginx) ps -o pid= --ppid "$NGX_PID" | tr -d ' ' ;;  # the workers
    lifeline) echo "$GW_PID" ;;
    floor | server) echo "$FLOOR_PID" ;;
  esac
}
HZ="$(getconf CLK_TCK)"

mkdir -p "$TMP/wrk"
run_wrk() { # scenario target threads connections seconds [round]
  local scenario=$1 target=$2 threads=$3 conns=$4 seconds=$5 round=${6:-}
  local out="$TMP/wrk/raw.$scenario.$target.${round:-warmup}.txt"
  local -a proxies
  mapfile -t proxies < <(proxy_pids "$target")
  local sim0 proxy0
  sim0=$(cpu_ticks "$SIM_PID"); proxy0=$(cpu_ticks "${proxies[@]}")
  BENCH_MODEL="$(target_model "$target")" timeout $((seconds + 30)) \
    wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 5s --latency -s "$LUA" "$(target_url "$target")" >"$out" 2>&1 || {
    echo "wrk failed for $target ($scenario):" >&2; cat "$out" >&2; return 1; }
  if [[ -n "$round" ]]; then
    grep '^WRK_JSON ' "$out" | sed 's/^WRK_JSON //' >"$TMP/wrk/$scenario.$target.$round.json"
    printf '{"hz":%s,"sim_ticks":%s,"proxy_ticks":%s}\n' "$HZ" $(($(cpu_ticks "$SIM_PID") - sim0)) \
      $(($(cpu_ticks "${proxies[@]}") - proxy0)) >"$TMP/wrk/$scenario.$target.$round.cpu"
    local rps p50 p99
    rps=$(grep -m1 '^Requests/sec' "$out" | awk '{print $2}')
    p50=$(awk '$1 == "50%" {print $2}' "$out"); p99=$(awk '$1 == "99%" {print $2}' "$out")
    printf '  %-4s %-9s round %d: %10s req/s  p50 %8s  p99 %8s\n' "$scenario" "$target" "$round" "$rps" "$p50" "$p99" >&2
  fi
}

echo "warm-up (${WARMUP} s per target)..." >&2
for target in direct nginx floor lifeline; do run_wrk c32 "$target" 2 32 "$WARMUP"; done

echo "non-streaming: ${ROUNDS} round(s) of ${DURATION} s per target and scenario..." >&2
for round in $(seq 1 "$ROUNDS"); do
  # Alternate the order between rounds so no target always runs first.
  if (( round % 2 == 1 )); then order="direct nginx floor lifeline"; else order="lifeline floor nginx direct"; fi
  for target in $order; do run_wrk c1 "$target" 1 1 "$DURATION" "$round"; done
  for target in $order server; do run_wrk c32 "$target" 2 32 "$DURATION" "$round"; done
done

echo "streaming: ${STREAM_REQUESTS} sequential requests per target at ${STREAM_TPS} tokens/s..." >&2
timeout $((STREAM_REQUESTS * 3 + 120)) python3 "$PY" stream "$TMP/stream.json" "$STREAM_REQUESTS" "$STREAM_MAX_TOKENS" \
  "direct=http://127.0.0.1:$P_SIM_STREAM/v1/chat/completions=sim-model" \
  "nginx=http://127.0.0.1:$P_NGX_STREAM/v1/chat/completions=sim-model" \
  "floor=http://127.0.0.1:$P_FLOOR_STREAM/v1/chat/completions=sim-model" \
  "lifeline=http://127.0.0.1:$P_GW/v1/chat/completions=bench-stream"

if [[ "${PROFILE:-0}" == 1 ]]; then
  if command -v perf >/dev/null 2>&1; then
    echo "profiling the gateway during one more 32-connection run..." >&2
    # Software clock event: hardware counters are often missing in virtual machines.
    timeout $((DURATION + 30)) perf record -e cpu-clock -F 999 -g -p "$GW_PID" -o "$TMP/perf.data" -- sleep "$DURATION" \
      >"$TMP/perf-record.log" 2>&1 &
    PERF_PID=$!
    run_wrk c32 lifeline 2 32 "$DURATION"
    wait "$PERF_PID" || true
    PROFILE_OUT="$(dirname "$RESULTS")/lifeline-c32.perf.txt"
    mkdir -p "$(dirname "$PROFILE_OUT")"
    DEMANGLE=(cat)
    command -v swift-demangle >/dev/null 2>&1 && DEMANGLE=(swift-demangle --simplified)
    command -v swift >/dev/null 2>&1 && DEMANGLE=(swift demangle --simplified)
    # Reads every line (no early exit), so no writer in the pipeline dies of SIGPIPE.
    first() { awk -v n="$1" 'n-- > 0'; }
    report() { timeout 300 perf report -i "$TMP/perf.data" --stdio -g none "$@" 2>/dev/null \
      | grep -v -e '^#' -e '^$' | sed -E -e 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' -e 's/[[:space:]]+$//' \
      | "${DEMANGLE[@]}" || true; }
    { echo "# perf cpu-clock samples of lifeline serve, 32 connections, ${DURATION} s"
      echo "# self time by symbol (top 40)"
      report --no-children --sort symbol | first 40
      echo
      echo "# self time by shared object"
      report --no-children --sort dso | first 15
      echo
      echo "# time including callees (children, self), Lifeline and server-library symbols (top 50)"
      report --children --sort symbol | grep -E 'Lifeline|Hummingbird|HTTP|Gateway|Upstream|Stream|JSON|Chat|Prometheus|Metric|Counter|Histogram|Router|Middleware' | first 50 || true
    } >"$PROFILE_OUT"
    echo "profile: $PROFILE_OUT" >&2
  else
    echo "PROFILE=1: perf not found, skipped" >&2
  fi
fi

if [[ -n "${LIFELINE_COMMIT:-}" ]]; then
  COMMIT="$LIFELINE_COMMIT"
else
  # The tree the script runs in; it names the binary only when that was built from this tree.
  COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ -n "$(git -C "$ROOT" status --porcelain -- Sources Package.swift 2>/dev/null)" ]]; then COMMIT="$COMMIT+dirty"; fi
fi
export BENCH_META
BENCH_META=$(printf '{"binary":"%s","binary_sha256":"%s","commit":"%s","loadavg_start":"%s","loadavg_end":"%s","duration_s":%s,"rounds":%s,"warmup_s":%s,"stream_requests":%s,"stream_tokens_per_second":%s,"stream_max_tokens":%s,"wrk":"%s","nginx":"%s"}' \
  "$LIFELINE_BIN" "$(sha256sum "$LIFELINE_BIN" | cut -c1-16)" "$COMMIT" "$LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)" "$DURATION" "$ROUNDS" "$WARMUP" "$STREAM_REQUESTS" "$STREAM_TPS" "$STREAM_MAX_TOKENS" \
  "$(wrk --version 2>&1 | head -n1 | awk '{print $2}')" "$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')")
echo >&2
python3 "$PY" report "$TMP" "$RESULTS"
echo "results: $RESULTS"
