#!/usr/bin/env bash
# Cache benchmark: what a cache hit costs, next to nginx returning a fixed answer and to a
# cache miss through Lifeline, in one run, on loopback. Reports latency (p50/p99), req/s and
# CPU per request of the serving process. A benchmark, not a test: it exits 0 unless
# something could not be measured.
#
# Targets:
#   nginx     nginx `return 200` with the same JSON bytes a hit answers (no upstream)
#   hit       Lifeline, the same cacheable request every time (a hit after the first)
#   miss      Lifeline, a question of its own every time: key, lookup, the simulator, store
#
# Environment:
#   LIFELINE_BIN  the binary (default .build-release/release/lifeline, built if absent)
#   DURATION      seconds per wrk run (default 10)
#   CONNECTIONS   connections for the loaded run (default 32; a 1-connection run always goes first)
#   RESULTS       JSON output (default bench/cache/results/latest.json)
#   KEEP_TMP=1    keep the temporary directory
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
RESULTS="${RESULTS:-$HERE/results/latest.json}"
PY="$ROOT/bench/overhead/overhead.py"
LUA="$HERE/cache.lua"

for tool in wrk nginx python3 curl timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: '$tool' not found (apt-get install -y nginx wrk python3 curl)" >&2; exit 1; }
done
NGINX="$(command -v nginx)"

source "$ROOT/bench/lib.sh"
bench_release_binary run.sh

TMP="$(mktemp -d "${TMPDIR:-/tmp}/lifeline-cache-bench.XXXXXX")"
PIDS=()
bench_trap_cleanup

read -r P_SIM P_GW P_NGX < <(python3 "$PY" ports 3)

"$LIFELINE_BIN" simulate --host 127.0.0.1 --port "$P_SIM" --protocol both --log-level warning >"$TMP/sim.log" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")

mkdir -p "$TMP/data"
cat >"$TMP/lifeline.yaml" <<EOF
server: {host: 127.0.0.1, port: $P_GW, data_dir: "$TMP/data"}
models:
  - name: bench
    cache: {ttl_s: 3600, max_entries: 10000, shared: true}
    deployments:
      - {name: sim, protocol: openai, base_url: "http://127.0.0.1:$P_SIM/v1", model: sim-model}
EOF
LIFELINE_ADMIN_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export LIFELINE_ADMIN_TOKEN
(cd "$TMP" && exec "$LIFELINE_BIN" serve --config "$TMP/lifeline.yaml" --log-level warning) >"$TMP/lifeline.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
URL_GW="http://127.0.0.1:$P_GW/v1/chat/completions"
python3 "$PY" wait "$URL_GW" bench 60

# The hit's bytes, for nginx to return as they are.
BODY='{"model":"bench","max_tokens":16,"temperature":0,"messages":[{"role":"user","content":"Say something short about latency."}]}'
timeout 30 curl -sS -o /dev/null -H 'content-type: application/json' -d "$BODY" "$URL_GW"
timeout 30 curl -sS -D "$TMP/hit.headers" -o "$TMP/hit.json" -H 'content-type: application/json' -d "$BODY" "$URL_GW"
grep -qi '^x-lifeline-cache: hit' "$TMP/hit.headers" || { echo "run.sh: the repeated request was not a cache hit" >&2; cat "$TMP/hit.headers" >&2; exit 1; }

# nginx's `return` text is a quoted string: escape backslashes and single quotes.
FIXED="$(sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g" "$TMP/hit.json")"
bench_nginx_conf <<EOF
  server {
    listen 127.0.0.1:$P_NGX;
    location / { default_type application/json; return 200 '$FIXED'; }
  }
}
EOF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" -g 'daemon off;' >"$TMP/nginx.log" 2>&1 &
NGX_PID=$!
PIDS+=("$NGX_PID")
URL_NGX="http://127.0.0.1:$P_NGX/v1/chat/completions"
for i in $(seq 1 100); do curl -sf -o /dev/null -d '{}' "$URL_NGX" && break; sleep 0.1; done
curl -sf -o /dev/null -d '{}' "$URL_NGX" || { echo "run.sh: nginx did not start" >&2; exit 1; }

cpu_ticks() { # utime + stime of the given processes, in clock ticks
  local total=0 pid
  for pid in "$@"; do
    [[ -r "/proc/$pid/stat" ]] || continue
    total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
HZ="$(getconf CLK_TCK)"

mkdir -p "$TMP/wrk"
run_wrk() { # target connections seconds [record]
  local target=$1 conns=$2 seconds=$3 record=${4:-}
  local url=$URL_GW unique=0 threads=1
  local -a serving=("$GW_PID")
  (( conns > 1 )) && threads=2
  case "$target" in
    nginx) url=$URL_NGX; mapfile -t serving < <(ps -o pid= --ppid "$NGX_PID" | tr -d ' ') ;;
    miss) unique=1 ;;
  esac
  local out="$TMP/wrk/$target.c$conns.txt" cpu0 sim0
  cpu0=$(cpu_ticks "${serving[@]}"); sim0=$(cpu_ticks "$SIM_PID")
  BENCH_MODEL=bench BENCH_UNIQUE=$unique timeout $((seconds + 30)) \
    wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 5s --latency -s "$LUA" "$url" >"$out" 2>&1 || {
    echo "wrk failed for $target:" >&2; cat "$out" >&2; return 1; }
  [[ -z "$record" ]] && return 0
  printf '{"target":"%s","connections":%d,"hz":%s,"serving_ticks":%s,"simulator_ticks":%s,"wrk":%s}\n' \
    "$target" "$conns" "$HZ" $(($(cpu_ticks "${serving[@]}") - cpu0)) $(($(cpu_ticks "$SIM_PID") - sim0)) \
    "$(grep '^WRK_JSON ' "$out" | sed 's/^WRK_JSON //')" >>"$TMP/runs.jsonl"
}

echo "warm-up (2 s per target)..." >&2
for target in nginx hit miss; do run_wrk "$target" "$CONNECTIONS" 2; done
echo "measuring: ${DURATION} s per target at 1 and ${CONNECTIONS} connections..." >&2
for conns in 1 "$CONNECTIONS"; do
  for target in nginx hit miss; do run_wrk "$target" "$conns" "$DURATION" record; done
done
ENTRIES="$(timeout 10 curl -sf "http://127.0.0.1:$P_GW/metrics" | awk '/^lifeline_cache_entries\{model="bench"\}/ {print $2}')"

mkdir -p "$(dirname "$RESULTS")"
python3 - "$TMP/runs.jsonl" "$RESULTS" "$ENTRIES" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)" <<'EOF'
import datetime, json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
print(f"{'target':<7} {'conns':>5} {'req/s':>10} {'p50 us':>8} {'p99 us':>8} {'CPU us/req':>11} {'sim CPU us/req':>15} {'errors':>6}")
for run in runs:
    w = run["wrk"]
    seconds = w["duration_us"] / 1e6
    requests = max(1, w["requests"])
    run["requests_per_second"] = w["requests"] / seconds
    run["cpu_us_per_request"] = run["serving_ticks"] / run["hz"] * 1e6 / requests
    run["simulator_cpu_us_per_request"] = run["simulator_ticks"] / run["hz"] * 1e6 / requests
    print(f"{run['target']:<7} {run['connections']:>5} {run['requests_per_second']:>10.0f} {w['latency_us']['p50']:>8} "
          f"{w['latency_us']['p99']:>8} {run['cpu_us_per_request']:>11.1f} {run['simulator_cpu_us_per_request']:>15.1f} {w['errors']:>6}")
def find(target, conns):
    return next(r for r in runs if r["target"] == target and r["connections"] == conns)
ratios = {}
for conns in sorted({r["connections"] for r in runs}):
    hit, nginx, miss = find("hit", conns), find("nginx", conns), find("miss", conns)
    ratios[f"c{conns}"] = {
        "hit_p50_over_nginx": hit["wrk"]["latency_us"]["p50"] / max(1, nginx["wrk"]["latency_us"]["p50"]),
        "hit_p50_over_miss": hit["wrk"]["latency_us"]["p50"] / max(1, miss["wrk"]["latency_us"]["p50"]),
        "hit_cpu_over_nginx": hit["cpu_us_per_request"] / max(1e-9, nginx["cpu_us_per_request"]),
        "hit_cpu_over_miss": hit["cpu_us_per_request"] / max(1e-9, miss["cpu_us_per_request"]),
        "hit_rps_over_nginx": hit["requests_per_second"] / max(1e-9, nginx["requests_per_second"]),
    }
    print(f"c{conns}: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios[f"c{conns}"].items()))
print(f"cache entries after the run: {sys.argv[3] or '?'} (bound 10000)")
json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "loadavg_end": sys.argv[4], "cpus": int(sys.argv[5]),
           "cache_entries_after": sys.argv[3], "runs": runs, "ratios": ratios}, open(sys.argv[2], "w"), indent=2)
print(f"results: {sys.argv[2]}")
EOF
