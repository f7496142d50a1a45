#!/usr/bin/env bash
# Fuzzes the AWS event-stream decoder with libFuzzer for SECONDS (default 60).
# Usage: fuzz/event-stream.sh [SECONDS]   (from the repository root; needs a Swift toolchain on Linux)
# The corpus starts from AWS's published vectors and grows under .build/fuzz/event-stream-corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=.build/fuzz
mkdir -p "$out/event-stream-corpus"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name EventStreamFuzz \
  fuzz/EventStreamFuzzer.swift Sources/LifelineWire/Bedrock/AWSEventStream.swift -o "$out/event-stream-fuzzer"
# Seed the corpus with the published vectors (byte arrays in the test fixture).
python3 - "$out/event-stream-corpus" <<'PY'
import json, sys, pathlib
vectors = json.load(open("Tests/LifelineWireTests/Fixtures/aws-event-stream-vectors.json"))["vectors"]
for name, vector in vectors.items():
    pathlib.Path(sys.argv[1], name).write_bytes(bytes(vector["encoded"]))
PY
"$out/event-stream-fuzzer" -max_total_time="$seconds" -max_len=4096 "$out/event-stream-corpus"
