// Reading Prometheus text and turning two scrapes into rates and latency percentiles. Pure.

/** Samples of a Prometheus text exposition: [{ name, labels, value }]. */
export function parsePrometheus(text) {
  const samples = [];
  for (const raw of String(text).split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = parseValue(match[3]);
    if (Number.isNaN(value)) continue;
    samples.push({ name: match[1], labels: parseLabels(match[2] ?? ""), value });
  }
  return samples;
}

function parseValue(text) {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

function parseLabels(text) {
  const labels = {};
  const pattern = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;
  for (const match of text.matchAll(pattern)) {
    labels[match[1]] = match[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
  }
  return labels;
}

/** Sum of a metric's samples whose labels pass `filter`. */
export function sum(samples, name, filter = () => true) {
  return samples.filter((s) => s.name === name && filter(s.labels)).reduce((total, s) => total + s.value, 0);
}

/** Cumulative histogram buckets summed over all label sets: [{ le, count }] sorted by `le`. */
export function buckets(samples, name) {
  const byBound = new Map();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
    const le = parseValue(s.labels.le);
    byBound.set(le, (byBound.get(le) ?? 0) + s.value);
  }
  return [...byBound.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/**
 * The q-quantile of cumulative buckets, interpolating linearly inside a bucket as Prometheus's
 * histogram_quantile does. Null when the buckets hold no observations.
 */
export function histogramQuantile(q, cumulative) {
  if (!cumulative.length) return null;
  const total = cumulative.at(-1).count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const { le, count } of cumulative) {
    if (count >= rank) {
      if (le === Infinity) return previousBound; // the highest finite bound is all that is known
      const inBucket = count - previousCount;
      if (inBucket <= 0) return le;
      return previousBound + (le - previousBound) * ((rank - previousCount) / inBucket);
    }
    previousBound = le;
    previousCount = count;
  }
  return previousBound;
}

/** Counter growth between two scrapes; a counter that went down was reset, so it counts from zero. */
function growth(before, after) {
  return after >= before ? after - before : after;
}

/**
 * Traffic between two scrapes `seconds` apart: requests per second, the share of requests that
 * failed with a server error (5xx), and time-to-first-token p50/p99 in seconds. Values are null
 * where there was nothing to measure.
 */
export function trafficBetween(before, after, seconds) {
  const requests = growth(sum(before, "lifeline_requests_total"), sum(after, "lifeline_requests_total"));
  const isServerError = (labels) => /^5\d\d$/.test(labels.status ?? "");
  const errors = growth(sum(before, "lifeline_requests_total", isServerError), sum(after, "lifeline_requests_total", isServerError));
  const earlier = new Map(buckets(before, "lifeline_time_to_first_token_seconds").map((b) => [b.le, b.count]));
  const window = buckets(after, "lifeline_time_to_first_token_seconds")
    .map(({ le, count }) => ({ le, count: growth(earlier.get(le) ?? 0, count) }));
  return {
    requestsPerSecond: seconds > 0 ? requests / seconds : null,
    errorRatio: requests > 0 ? Math.min(1, errors / requests) : null,
    ttftP50: histogramQuantile(0.5, window),
    ttftP99: histogramQuantile(0.99, window),
  };
}

/** The value of the one sample of `name` whose labels pass `filter`; null when there is none. */
function gaugeValue(samples, name, filter = () => true) {
  const found = samples.find((s) => s.name === name && filter(s.labels));
  return found ? found.value : null;
}

/**
 * The adaptive concurrency limits as one scrape shows them: the gateway's limit with its admitted
 * requests and queue, and each deployment's limit with the attempts it has in progress. Null
 * where a metric is absent.
 */
export function limitsIn(samples) {
  const names = new Set();
  for (const s of samples) {
    if (s.name === "lifeline_concurrency_limit" && s.labels.scope && s.labels.scope !== "gateway") names.add(s.labels.scope);
    if (s.name === "lifeline_deployment_in_flight_requests" && s.labels.deployment) names.add(s.labels.deployment);
  }
  return {
    gateway: {
      limit: gaugeValue(samples, "lifeline_concurrency_limit", (l) => l.scope === "gateway"),
      inFlight: gaugeValue(samples, "lifeline_in_flight_requests"),
      queued: gaugeValue(samples, "lifeline_admission_queue_length"),
    },
    deployments: [...names].sort().map((name) => ({
      name,
      limit: gaugeValue(samples, "lifeline_concurrency_limit", (l) => l.scope === name),
      inFlight: gaugeValue(samples, "lifeline_deployment_in_flight_requests", (l) => l.deployment === name),
    })),
  };
}

/** The priorities the gateway sheds by, most important first. */
export const PRIORITIES = ["critical", "high", "normal", "low"];

/**
 * Requests shed (503) by priority: the count since the server started, by reason, from the
 * `after` scrape; and the rate between `before` and `after` (null without an earlier scrape).
 */
export function sheddingBetween(before, after, seconds) {
  const reasons = new Set(after.filter((s) => s.name === "lifeline_shed_total" && s.labels.reason).map((s) => s.labels.reason));
  const seen = new Set(after.filter((s) => s.name === "lifeline_shed_total" && s.labels.priority).map((s) => s.labels.priority));
  const priorities = [...PRIORITIES, ...[...seen].filter((p) => !PRIORITIES.includes(p)).sort()];
  const rate = (filter) => (before && seconds > 0
    ? growth(sum(before, "lifeline_shed_total", filter), sum(after, "lifeline_shed_total", filter)) / seconds
    : null);
  const byPriority = priorities.map((priority) => {
    const mine = (labels) => labels.priority === priority;
    const byReason = {};
    for (const reason of [...reasons].sort()) byReason[reason] = sum(after, "lifeline_shed_total", (l) => mine(l) && l.reason === reason);
    return { priority, total: sum(after, "lifeline_shed_total", mine), byReason, perSecond: rate(mine) };
  });
  return { total: sum(after, "lifeline_shed_total"), perSecond: rate(() => true), byPriority };
}

/**
 * The answer cache as two scrapes show it; null when no model has a cache (the counters are
 * exported only for models that do). `hitRatio` is hits over lookups (hit, miss, bypass) between
 * the scrapes, null without an earlier scrape or without lookups; `stale` counts the answers an
 * expired entry gave while every deployment failed, since the server started.
 */
export function cacheBetween(before, after) {
  const name = "lifeline_cache_requests_total";
  if (!after.some((s) => s.name === name)) return null;
  const count = (samples, results) => sum(samples, name, (labels) => results.includes(labels.result));
  const lookups = ["hit", "miss", "bypass"];
  const ratio = (hits, all) => (all > 0 ? hits / all : null);
  return {
    hitRatio: before ? ratio(growth(count(before, ["hit"]), count(after, ["hit"])), growth(count(before, lookups), count(after, lookups))) : null,
    hitRatioSinceStart: ratio(count(after, ["hit"]), count(after, lookups)),
    stale: count(after, ["stale"]),
    entries: sum(after, "lifeline_cache_entries"),
  };
}
