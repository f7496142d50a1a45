-- wrk script for the cache benchmark: a small cacheable chat completion (temperature 0).
-- BENCH_MODEL: the model name sent. BENCH_UNIQUE=1: every request asks a question of its
-- own (thread id and counter in the text), so each one is a cache miss.
local model = os.getenv("BENCH_MODEL") or "bench"
local unique = os.getenv("BENCH_UNIQUE") == "1"
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local counter = 0

local function body(content)
  return '{"model":"' .. model .. '","max_tokens":16,"temperature":0,"messages":[' ..
    '{"role":"user","content":"' .. content .. '"}]}'
end

local fixed = body("Say something short about latency.")

request = function()
  if not unique then
    return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, fixed)
  end
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    body("Say something short about latency, " .. tostring(id) .. "-" .. counter .. "."))
end

-- Prints one line, prefixed with "WRK_JSON ", that run.sh picks up (latencies in microseconds).
function done(summary, latency, requests)
  local e = summary.errors
  local parts = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"errors":%d', e.connect + e.read + e.write + e.status + e.timeout),
    string.format('"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f}',
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean),
  }
  io.write("WRK_JSON {" .. table.concat(parts, ",") .. "}\n")
end
