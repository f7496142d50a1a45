-- wrk script: every request is the same small non-streaming chat completion.
-- BENCH_MODEL picks the model name sent (the gateway's public name, or the
-- upstream id when calling the simulator directly or through nginx, so the
-- simulator sees the same request on every path).
local model = os.getenv("BENCH_MODEL") or "sim-model"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. model .. '","max_tokens":16,"messages":[' ..
  '{"role":"user","content":"Say something short about latency."}]}'

-- Prints one line, prefixed with "WRK_JSON ", that run.sh picks up.
-- Latencies are in microseconds, as wrk records them.
function done(summary, latency, requests)
  local e = summary.errors
  local parts = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
      latency.mean, latency.stdev, latency.min, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)),
  }
  io.write("WRK_JSON {" .. table.concat(parts, ",") .. "}\n")
end
