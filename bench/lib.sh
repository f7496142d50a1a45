# Shared by the shell benchmarks (bench/overhead/run.sh, bench/cache/run.sh): source it after
# setting ROOT. Each script keeps its own processes in PIDS and its files under TMP.

# LIFELINE_BIN as given, else the release build, built first if absent; made absolute.
bench_release_binary() {
  local name="$1"
  if [[ -z "${LIFELINE_BIN:-}" ]]; then
    LIFELINE_BIN="$ROOT/.build-release/release/lifeline"
    if [[ ! -x "$LIFELINE_BIN" ]]; then
      echo "building the release binary (several minutes)..." >&2
      (cd "$ROOT" && timeout 3600 swift build -c release --scratch-path .build-release --product lifeline)
    fi
  fi
  bench_absolute_binary "$name"
}

# LIFELINE_BIN made absolute (the benchmarks start processes from other directories), and checked.
bench_absolute_binary() {
  local name="$1"
  [[ -x "$LIFELINE_BIN" ]] || { echo "$name: no executable at $LIFELINE_BIN" >&2; exit 1; }
  LIFELINE_BIN="$(cd "$(dirname "$LIFELINE_BIN")" && pwd)/$(basename "$LIFELINE_BIN")"
}

# On exit: TERM every process in PIDS, KILL what is left after 5 s, print the logs' tails if
# the run failed, and remove TMP unless KEEP_TMP=1.
bench_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 1 50); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $status != 0 ]]; then
    echo "failed (status $status); logs:" >&2
    for log in "$TMP"/*.log; do [[ -f "$log" ]] && { echo "== $log" >&2; tail -n 20 "$log" >&2; }; done
  fi
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$status"
}

bench_trap_cleanup() {
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Writes $TMP/nginx/nginx.conf for an nginx run from the prefix $TMP/nginx in the foreground:
# the common head up to and including `http {` and its temp paths, then the caller's upstreams,
# servers and closing brace from standard input.
bench_nginx_conf() {
  mkdir -p "$TMP/nginx/logs" "$TMP/nginx/tmp"
  {
    if [[ "$(id -u)" == 0 ]]; then echo "user root root;"; fi
    cat <<CONF
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/tmp/body;
  proxy_temp_path $TMP/nginx/tmp/proxy;
  fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
  uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
  scgi_temp_path $TMP/nginx/tmp/scgi;
CONF
    cat
  } >"$TMP/nginx/nginx.conf"
}
