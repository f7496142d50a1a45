#!/usr/bin/env bash
# Concurrent paced streams through nginx and through Lifeline (see run.py's docstring).
# Creates .venv-bench (uvloop for the load generator; without network it runs on plain
# asyncio), raises the open-file limit to the hard limit, and runs run.py.
#
#   LEVELS="100 1000" bench/streams/run.sh
#   LIFELINE_BIN=/path/to/lifeline LEVELS="100 1000 5000" bench/streams/run.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"

for tool in nginx python3 timeout; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" ]]; then
    echo "run.sh: '$tool' not found (apt-get install -y nginx python3 python3-venv)" >&2
    exit 1
  fi
done
PATH="$PATH:/usr/sbin"

if [[ ! -x "$VENV/bin/python" ]]; then
  timeout 120 python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import uvloop, httpx' 2>/dev/null; then
  timeout 300 "$VENV/bin/pip" install -q uvloop httpx \
    || echo "run.sh: could not install uvloop/httpx; the load generator uses plain asyncio" >&2
fi

# Every stream through a proxy holds two descriptors; raise the soft limit as far as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Bounded as a whole: each level is bounded by its streams' timeouts; this only stops a hang.
exec timeout --foreground --signal=TERM 3600 "$VENV/bin/python" "$HERE/run.py" "$@"
