// The operator console: deployments, drills, incidents with their postmortems, maintenance, status
// subscribers and keys from the admin API;
// traffic, concurrency limits and load shedding from /metrics.
// The admin token stays in this tab (sessionStorage) and goes out only as a bearer header.

import { ApiFailure } from "./api.js";
import { formatSeconds, h, preservingFocus, replaceChildren, svg } from "./dom.js";
import { cacheBetween, limitsIn, parsePrometheus, sheddingBetween, trafficBetween } from "./metrics.js";

const POLL_MS = 2_000;
const HISTORY_POINTS = 60; // two minutes at one point per poll
const PROBE_MS = 30_000;
const TOKEN_KEY = "lifeline.console.adminToken";

// Panels for admin APIs that may not exist on this server: each is shown only when a GET of its
// path answers, and never with made-up data. Each has its section in the page, drawn by `render`.
const OPTIONAL_PANELS = [
  { id: "incidents", path: "/admin/v1/incidents", section: "#panel-incidents", render: (body) => renderIncidents(body) },
  { id: "alerts", path: "/admin/v1/alerts", section: "#panel-alerts", render: (body) => renderAlerts(body) },
  { id: "keys", path: "/admin/v1/keys", section: "#panel-keys", render: (body) => renderKeys(body) },
  { id: "maintenances", path: "/admin/v1/maintenances", section: "#panel-maintenances", render: (body) => renderMaintenances(body) },
  { id: "subscribers", path: "/admin/v1/subscribers", section: "#panel-subscribers", render: (body) => renderSubscribers(body) },
];

const $ = (selector) => document.querySelector(selector);
const ui = {
  signIn: $("#sign-in"),
  tokenForm: $("#token-form"),
  tokenInput: $("#admin-token"),
  signInError: $("#sign-in-error"),
  signOut: $("#sign-out"),
  dashboard: $("#dashboard"),
  pollState: $("#poll-state"),
  instanceState: $("#instance-state"),
  pollError: $("#poll-error"),
  traffic: $("#traffic"),
  deployments: $("#deployments"),
  deploymentError: $("#deployment-error"),
  faultForm: $("#fault-form"),
  faultDeployment: $("#fault-deployment"),
  faultError: $("#fault-error"),
  faults: $("#faults"),
  limitsGateway: $("#limits-gateway"),
  limitsDeployments: $("#limits-deployments"),
  sheddingSummary: $("#shedding-summary"),
  cachePanel: $("#panel-cache"),
  cacheSummary: $("#cache-summary"),
  sheddingPriorities: $("#shedding-priorities"),
  incidentsOpen: $("#incidents-open"),
  incidentsResolved: $("#incidents-resolved"),
  incidentsStatus: $("#incidents-status"),
  incidentError: $("#incident-error"),
  incidentForm: $("#incident-form"),
  incidentFormError: $("#incident-form-error"),
  incidentComponents: $("#incident-components"),
  maintenances: $("#maintenances"),
  maintenancesStatus: $("#maintenances-status"),
  maintenanceError: $("#maintenance-error"),
  maintenanceForm: $("#maintenance-form"),
  maintenanceFormError: $("#maintenance-form-error"),
  maintenanceDeployments: $("#maintenance-deployments"),
  postmortem: $("#postmortem"),
  postmortemIncident: $("#postmortem-incident"),
  postmortemState: $("#postmortem-state"),
  postmortemImpact: $("#postmortem-impact"),
  postmortemForm: $("#postmortem-form"),
  postmortemBody: $("#postmortem-body"),
  postmortemPublish: $("#postmortem-publish"),
  postmortemConfirm: $("#postmortem-confirm"),
  postmortemError: $("#postmortem-error"),
  postmortemStatus: $("#postmortem-status"),
  subscribers: $("#subscribers"),
  subscribersRegion: $("#subscribers-region"),
  subscribersStatus: $("#subscribers-status"),
  subscriberError: $("#subscriber-error"),
  alertsSummary: $("#alerts-summary"),
  alertsFiring: $("#alerts-firing"),
  alertsResolved: $("#alerts-resolved"),
  slos: $("#slos"),
  keys: $("#keys"),
  keysRegion: $("#keys-region"),
  keysStatus: $("#keys-status"),
  keyError: $("#key-error"),
  keyForm: $("#key-form"),
  keyFormError: $("#key-form-error"),
  secretBox: $("#key-secret-box"),
  secretName: $("#key-secret-name"),
  secret: $("#key-secret"),
  secretCopied: $("#key-secret-copied"),
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? "",
  pollTimer: 0,
  generation: 0, // bumps on sign-in/out so a late answer from an old session is ignored
  lastScrape: null, // { samples, at }
  history: [],
  panels: new Map(), // id -> { available, body, error, checkedAt }
  revoking: null, // id of the key whose revocation waits for confirmation
  incidentEditor: null, // { id, mode: "update" | "edit" | "resolve", node }: the one open form on an incident
  incidentsDrawn: "", // what the incident list was last drawn from, so a poll with no change keeps forms as they are
  componentNames: null, // the status page's components, for the incident form
  endingMaintenance: null, // id of the maintenance whose early end waits for confirmation
  postmortem: null, // { id, name }: the postmortem open below the resolved incidents
  removingSubscriber: null, // id of the subscriber whose removal waits for confirmation
};

class SignedOut extends Error {}

async function adminRequest(method, path, body) {
  const generation = state.generation;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${state.token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiFailure({ message: `Could not reach the server: ${error.message}` });
  }
  if (generation !== state.generation) throw new SignedOut();
  if (!response.ok) throw await ApiFailure.from(response);
  const type = response.headers.get("content-type") ?? "";
  return type.includes("json") ? response.json() : response.text();
}

function showFailure(node, error, prefix = "") {
  if (!error) {
    node.hidden = true;
    replaceChildren(node);
    return;
  }
  node.hidden = false;
  replaceChildren(node, h("p", { class: "failure-message" }, prefix, error.status ? `(HTTP ${error.status}) ` : "", error.message));
}

// ---------------------------------------------------------------- sign in and out

async function signIn(token) {
  state.token = token;
  state.generation++;
  showFailure(ui.signInError, null);
  try {
    const deployments = await adminRequest("GET", "/admin/v1/deployments");
    sessionStorage.setItem(TOKEN_KEY, token);
    ui.signIn.hidden = true;
    ui.dashboard.hidden = false;
    ui.signOut.hidden = false;
    state.history = [];
    state.lastScrape = null;
    renderDeployments(deployments.data ?? []);
    renderTraffic();
    $("#console-main").focus({ preventScroll: true });
    schedulePoll(0);
  } catch (error) {
    if (error instanceof SignedOut) return;
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = "";
    const refused = error.status === 401 || error.status === 403;
    showFailure(ui.signInError, error, refused ? "The server refused this admin token. " : "Could not sign in. ");
    ui.tokenInput.focus();
    ui.tokenInput.select();
  }
}

function signOut(reason) {
  state.generation++;
  window.clearTimeout(state.pollTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = "";
  state.panels.clear();
  ui.dashboard.hidden = true;
  ui.signOut.hidden = true;
  ui.signIn.hidden = false;
  ui.tokenInput.value = "";
  for (const panel of OPTIONAL_PANELS) $(panel.section).hidden = true;
  dismissSecret();
  state.revoking = null;
  state.incidentEditor = null;
  state.incidentsDrawn = "";
  state.componentNames = null;
  state.endingMaintenance = null;
  state.removingSubscriber = null;
  closePostmortem();
  showFailure(ui.signInError, reason ? { message: reason } : null);
  ui.tokenInput.focus();
}

// ---------------------------------------------------------------- polling

function schedulePoll(delay = POLL_MS) {
  window.clearTimeout(state.pollTimer);
  state.pollTimer = window.setTimeout(poll, delay);
}

async function poll() {
  const generation = state.generation;
  const [deployments, faults, metrics, readiness] = await Promise.allSettled([
    adminRequest("GET", "/admin/v1/deployments"),
    adminRequest("GET", "/admin/v1/faults"),
    adminRequest("GET", "/metrics"),
    readInstance(),
    probePanels(),
  ]);
  if (generation !== state.generation) return;
  const failures = [deployments, faults, metrics].filter((r) => r.status === "rejected").map((r) => r.reason);
  if (failures.some((e) => e.status === 401 || e.status === 403)) {
    signOut("The admin token is no longer accepted; sign in again.");
    return;
  }
  preservingFocus(() => {
    if (deployments.status === "fulfilled") renderDeployments(deployments.value.data ?? []);
    if (faults.status === "fulfilled") renderFaults(faults.value.data ?? []);
    if (metrics.status === "fulfilled") recordScrape(metrics.value);
    renderTraffic();
    renderLimits();
    renderShedding();
    renderCache();
    renderPanels();
  });
  ui.instanceState.textContent = readiness.status === "fulfilled" ? describeInstance(readiness.value) : "";
  showFailure(ui.pollError, failures[0] ?? null, "Refresh failed: ");
  ui.pollState.textContent = failures.length
    ? `Last refresh failed at ${clock(new Date())}; retrying every ${POLL_MS / 1000} s.`
    : `Updated ${clock(new Date())}, every ${POLL_MS / 1000} s.`;
  schedulePoll();
}

// Behind a load balancer the console may be served by any instance: which one answered, whether
// it runs the singleton duties, and whether it reaches the store (GET /readyz, public).
async function readInstance() {
  const response = await fetch("/readyz", { credentials: "omit", cache: "no-store" });
  return { ready: response.ok, body: await response.json() };
}

function describeInstance({ ready, body }) {
  const instance = body.instance ?? {};
  const role = instance.leader
    ? "which leads: automatic incidents, alerts, notifications and maintenance run here."
    : "a follower: another instance runs automatic incidents, alerts, notifications and maintenance.";
  const store = body.store ?? {};
  const storeText = store.status === "unreachable"
    ? ` The store has not answered since ${clock(new Date(store.since))}: serving from cached keys and local limits.`
    : " The store answers.";
  const readyText = ready ? "" : " It is starting or draining (its /readyz answers 503).";
  return `Answered by instance ${instance.id ?? "unknown"}, ${role}${storeText}${readyText}`;
}

function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// ---------------------------------------------------------------- traffic

function recordScrape(text) {
  const samples = parsePrometheus(text);
  const at = performance.now();
  const before = state.lastScrape;
  const seconds = before ? (at - before.at) / 1000 : 0;
  const limits = limitsIn(samples);
  const shedding = sheddingBetween(before?.samples ?? null, samples, seconds);
  const cache = cacheBetween(before?.samples ?? null, samples);
  if (before) {
    state.history.push({ ...trafficBetween(before.samples, samples, seconds), limits, shedding, cache });
    if (state.history.length > HISTORY_POINTS) state.history.shift();
  }
  state.lastScrape = { samples, at, limits, shedding, cache };
}

const STATS = [
  { id: "rate", label: "Requests", pick: (p) => p.requestsPerSecond, format: (v) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} /s` },
  { id: "errors", label: "Server errors", pick: (p) => p.errorRatio, format: (v) => `${(v * 100).toFixed(v < 0.1 ? 1 : 0)} %`, empty: "no requests" },
  { id: "ttft-p50", label: "First token p50", pick: (p) => p.ttftP50, format: formatLatency, empty: "no streams" },
  { id: "ttft-p99", label: "First token p99", pick: (p) => p.ttftP99, format: formatLatency, empty: "no streams" },
];

function formatLatency(seconds) {
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(2)} s`;
}

function renderTraffic() {
  renderStats(ui.traffic, STATS, state.history.at(-1));
}

/** Stat cards: each stat's value in `latest` (null until something is measured) and its line over the history. */
function renderStats(node, stats, latest) {
  replaceChildren(node, stats.map((stat) => {
    const series = state.history.map(stat.pick);
    const value = latest ? stat.pick(latest) : null;
    const text = value === null || value === undefined ? (latest ? stat.empty ?? "—" : "measuring…") : stat.format(value);
    return h("div", { class: `stat stat-${stat.id}`, "data-stat": stat.id },
      h("p", { class: "stat-label" }, stat.label),
      h("p", { class: "stat-value" }, text),
      sparkline(series, stat));
  }));
}

/** A small line of the last values; gaps where nothing was measured. */
function sparkline(values, stat) {
  const width = 200;
  const height = 40;
  const measured = values.filter((v) => v !== null && Number.isFinite(v));
  const top = Math.max(...measured, stat.id === "errors" ? 0.05 : 1e-9);
  const step = width / (HISTORY_POINTS - 1);
  const offset = (HISTORY_POINTS - values.length) * step;
  const lines = [];
  let points = [];
  values.forEach((value, index) => {
    if (value === null || !Number.isFinite(value)) {
      if (points.length) lines.push(points);
      points = [];
      return;
    }
    points.push(`${(offset + index * step).toFixed(1)},${(height - 3 - (value / top) * (height - 6)).toFixed(1)}`);
  });
  if (points.length) lines.push(points);
  const description = measured.length
    ? `${stat.label} over the last ${formatSeconds(values.length * POLL_MS / 1000)}: lowest ${stat.format(Math.min(...measured))}, highest ${stat.format(Math.max(...measured))}`
    : `${stat.label}: nothing measured yet`;
  return svg("svg", { class: "sparkline", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": description },
    svg("line", { class: "sparkline-base", x1: 0, y1: height - 3, x2: width, y2: height - 3 }),
    lines.map((line) => line.length === 1
      ? svg("circle", { class: "sparkline-dot", cx: line[0].split(",")[0], cy: line[0].split(",")[1], r: 1.8 })
      : svg("polyline", { class: "sparkline-line", points: line.join(" ") })));
}

// ---------------------------------------------------------------- concurrency limits and shedding

const wholeNumber = (value) => NUMBER.format(Math.round(value));
const perSecond = (value) => `${value < 10 ? value.toFixed(2) : value.toFixed(1)} /s`;

const LIMIT_STATS = [
  { id: "gateway-limit", label: "Gateway limit", pick: (p) => p.limits?.gateway.limit, format: wholeNumber, empty: "not reported" },
  { id: "gateway-in-flight", label: "In flight", pick: (p) => p.limits?.gateway.inFlight, format: wholeNumber, empty: "not reported" },
  { id: "gateway-queued", label: "Waiting for a slot", pick: (p) => p.limits?.gateway.queued, format: wholeNumber, empty: "not reported" },
];

const SHED_STATS = [
  { id: "shed-rate", label: "Shed now", pick: (p) => p.shedding?.perSecond, format: perSecond, empty: "measuring…" },
  { id: "shed-total", label: "Shed since start", pick: (p) => p.shedding?.total, format: wholeNumber },
];

const CACHE_STATS = [
  { id: "cache-hit-rate", label: "Hit rate now", pick: (p) => p.cache?.hitRatio, format: (v) => percent(v, 0), empty: "no lookups" },
  { id: "cache-hit-rate-total", label: "Hit rate since start", pick: (p) => p.cache?.hitRatioSinceStart, format: (v) => percent(v, 0), empty: "no lookups" },
  { id: "cache-stale", label: "Stale answers in outages", pick: (p) => p.cache?.stale, format: wholeNumber },
  { id: "cache-entries", label: "Entries", pick: (p) => p.cache?.entries, format: wholeNumber },
];

/** The latest scrape as a history point, so gauges show from the first scrape on. */
function latestPoint() {
  if (!state.lastScrape) return null;
  const last = state.history.at(-1);
  const cache = state.lastScrape.cache ? { ...state.lastScrape.cache, hitRatio: last?.cache?.hitRatio ?? null } : null;
  return { limits: state.lastScrape.limits, shedding: state.lastScrape.shedding, cache };
}

/** The answer cache panel, shown only when a model has a cache. */
function renderCache() {
  const configured = Boolean(state.lastScrape?.cache);
  ui.cachePanel.hidden = !configured;
  if (configured) renderStats(ui.cacheSummary, CACHE_STATS, latestPoint());
}

function renderLimits() {
  renderStats(ui.limitsGateway, LIMIT_STATS, latestPoint());
  const deployments = state.lastScrape?.limits.deployments ?? [];
  replaceChildren(ui.limitsDeployments, deployments.length ? deployments.map((d) => {
    const known = d.limit !== null && d.inFlight !== null && d.limit > 0;
    const share = known ? d.inFlight / d.limit : null;
    return h("tr", { "data-limit-deployment": d.name },
      h("th", { scope: "row" }, d.name),
      h("td", { "data-cell": "in-flight" }, d.inFlight === null ? "—" : wholeNumber(d.inFlight)),
      h("td", { "data-cell": "limit" }, d.limit === null ? "—" : wholeNumber(d.limit)),
      h("td", { class: "budget" },
        h("meter", { min: 0, max: 1, low: 0.75, high: 0.95, optimum: 0, value: share === null ? 0 : Math.min(1, share),
          "aria-label": `${d.name}: share of its limit in use` }),
        h("span", { class: share !== null && share >= 1 ? "budget-text budget-spent" : "budget-text" },
          share === null ? "—" : share >= 1 ? "at its limit" : percent(share, 0))));
  }) : h("tr", {}, h("td", { colspan: 4, class: "muted" }, state.lastScrape ? "No deployment reports a limit." : "measuring…")));
}

const REASON_WORDS = { queue_full: "queue full", queue_timeout: "waited too long", deployment_busy: "deployments at their limit" };

function renderShedding() {
  renderStats(ui.sheddingSummary, SHED_STATS, latestPoint());
  const shedding = state.lastScrape?.shedding;
  if (!shedding) {
    replaceChildren(ui.sheddingPriorities, h("tr", {}, h("td", { colspan: 5, class: "muted" }, "measuring…")));
    return;
  }
  replaceChildren(ui.sheddingPriorities, shedding.byPriority.map((row) => {
    const other = row.total - (row.byReason.queue_full ?? 0) - (row.byReason.queue_timeout ?? 0);
    const reasons = Object.entries(row.byReason).filter(([, n]) => n > 0)
      .map(([reason, n]) => `${wholeNumber(n)} ${REASON_WORDS[reason] ?? reason.replace(/_/g, " ")}`).join(", ");
    return h("tr", { "data-priority": row.priority, class: row.total > 0 ? "shed-some" : null },
      h("th", { scope: "row" }, h("span", { class: "deployment-name" }, row.priority),
        reasons ? h("span", { class: "detail narrow-detail" }, reasons) : null),
      h("td", { "data-cell": "rate" }, row.perSecond === null ? "—" : perSecond(row.perSecond)),
      h("td", { class: "wide-only", "data-cell": "queue_full" }, wholeNumber(row.byReason.queue_full ?? 0)),
      h("td", { class: "wide-only", "data-cell": "queue_timeout" },
        wholeNumber(row.byReason.queue_timeout ?? 0), other > 0 ? h("span", { class: "detail" }, `${wholeNumber(other)} for other reasons`) : null),
      h("td", { "data-cell": "total" }, h("strong", {}, wholeNumber(row.total))));
  }));
}

// ---------------------------------------------------------------- deployments

const STATE_WORDS = {
  healthy: "healthy",
  ejected: "ejected",
  half_open: "half open",
  cooling: "cooling down",
  faulted: "drill fault",
  draining: "draining",
  starting: "process starting",
  restarting: "process restarting",
  stopped: "process stopped",
};

/** A refusal traffic will not fix (credentials, base_url or model): what, and when last. */
function problemDetail(problem) {
  if (!problem || typeof problem !== "object") return null;
  const last = Date.parse(String(problem.last_at ?? ""));
  const when = Number.isNaN(last) ? "" : `, last at ${clock(new Date(last))}`;
  return h("span", { class: "detail detail-alarm deployment-problem", "data-problem": String(problem.kind ?? "") },
    `${String(problem.summary ?? problem.kind ?? "failing")} (HTTP ${Number(problem.status) || "?"}${when})`);
}

function renderDeployments(deployments) {
  replaceChildren(ui.deployments, deployments.map((d) => {
    const name = String(d.name ?? "");
    const breaker = d.breaker ?? {};
    const breakerText = [
      String(breaker.state ?? "unknown").replace("_", " "),
      breaker.ejections ? `${breaker.ejections} ejection${breaker.ejections === 1 ? "" : "s"}` : null,
      breaker.ejected_for_s ? `back in ${formatSeconds(breaker.ejected_for_s)}` : null,
    ].filter(Boolean).join(", ");
    const faultCount = Array.isArray(d.faults) ? d.faults.length : 0;
    const drained = Boolean(d.drained);
    return h("tr", { "data-deployment": name, "data-state": String(d.state ?? "") },
      h("th", { scope: "row" }, h("span", { class: "deployment-name" }, name),
        h("span", { class: "detail" }, [d.model, d.protocol, d.priority !== undefined ? `priority ${d.priority}` : null].filter(Boolean).join(" · "))),
      h("td", {}, h("span", { class: `state state-${String(d.state ?? "unknown").replace(/[^a-z_]/g, "")}` }, STATE_WORDS[d.state] ?? String(d.state ?? "unknown")),
        problemDetail(d.problem)),
      h("td", { class: "wide-only" }, breakerText),
      h("td", { class: "wide-only" }, faultCount ? `${faultCount} active` : "none"),
      h("td", { class: "actions" },
        h("button", {
          type: "button", class: "small", "data-focus-key": `drain:${name}`,
          "aria-label": `${drained ? "Undrain" : "Drain"} ${name}`,
          onclick: (event) => setDrained(name, !drained, event.currentTarget),
        }, drained ? "Undrain" : "Drain")));
  }));
  const names = deployments.map((d) => String(d.name ?? ""));
  renderMaintenanceDeployments(names);
  const known = [...ui.faultDeployment.options].map((o) => o.value);
  if (names.join("\n") !== known.join("\n")) {
    const selected = ui.faultDeployment.value;
    replaceChildren(ui.faultDeployment, names.map((name) => h("option", { value: name }, name)));
    if (names.includes(selected)) ui.faultDeployment.value = selected;
  }
}

async function setDrained(name, drained, button) {
  button.disabled = true;
  try {
    await adminRequest("POST", `/admin/v1/deployments/${encodeURIComponent(name)}/${drained ? "drain" : "undrain"}`);
    showFailure(ui.deploymentError, null);
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFailure(ui.deploymentError, error, `Could not ${drained ? "drain" : "undrain"} ${name}: `);
  }
  schedulePoll(0);
}

// ---------------------------------------------------------------- faults

function faultSettings(fault) {
  const rate = fault.rate !== undefined && fault.rate !== 1 ? `, ${Math.round(fault.rate * 100)} % of attempts` : "";
  switch (fault.kind) {
    case "error": return `HTTP ${fault.status}${rate}`;
    case "latency": return `${fault.latency_ms} ms${rate}`;
    case "disconnect": return `after ${fault.after_tokens} tokens${rate}`;
    default: return rate ? rate.slice(2) : "every attempt";
  }
}

function renderFaults(faults) {
  if (!faults.length) {
    replaceChildren(ui.faults, h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No active faults.")));
    return;
  }
  replaceChildren(ui.faults, faults.map((fault) => {
    const id = String(fault.id ?? "");
    const ends = Date.parse(fault.expires_at);
    return h("tr", { "data-fault": id },
      h("td", { class: "wide-only" }, h("code", {}, id)),
      h("td", {}, String(fault.deployment ?? "")),
      h("td", {}, String(fault.kind ?? "")),
      h("td", {}, faultSettings(fault)),
      h("td", {}, Number.isNaN(ends) ? "" : `in ${formatSeconds((ends - Date.now()) / 1000)}`),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "small", "data-focus-key": `clear:${id}`, "aria-label": `Clear fault ${id}`,
          onclick: (event) => clearFault(id, event.currentTarget) }, "Clear")));
  }));
}

/** Shows only the settings that the chosen kind of fault uses. */
function showFieldsForKind() {
  const kind = $("#fault-kind").value;
  for (const field of ui.faultForm.querySelectorAll("[data-kinds]")) {
    field.hidden = !field.dataset.kinds.split(" ").includes(kind);
  }
}

async function injectFault(event) {
  event.preventDefault();
  const number = (id) => Number($(id).value);
  const kind = $("#fault-kind").value;
  const body = {
    deployment: ui.faultDeployment.value,
    kind,
    status: kind === "error" ? number("#fault-status") : undefined,
    latency_ms: kind === "latency" ? number("#fault-latency") : undefined,
    after_tokens: kind === "disconnect" ? number("#fault-after-tokens") : undefined,
    rate: number("#fault-rate"),
    duration_s: number("#fault-duration"),
  };
  try {
    await adminRequest("POST", "/admin/v1/faults", body);
    showFailure(ui.faultError, null);
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFailure(ui.faultError, error, "The fault was not injected: ");
  }
  schedulePoll(0);
}

async function clearFault(id, button) {
  button.disabled = true;
  try {
    await adminRequest("DELETE", `/admin/v1/faults/${encodeURIComponent(id)}`);
    showFailure(ui.faultError, null);
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFailure(ui.faultError, error, `Could not clear ${id}: `);
  }
  schedulePoll(0);
}

// ---------------------------------------------------------------- alerts

const NUMBER = new Intl.NumberFormat("en");

const SEVERITY_WORDS = { page: "page", ticket: "ticket" };

function severityBadge(severity) {
  const name = String(severity ?? "unknown");
  return h("span", { class: `severity severity-${name.replace(/[^a-z]/g, "")}` }, SEVERITY_WORDS[name] ?? name);
}

function percent(share, digits = 1) {
  if (typeof share !== "number" || !Number.isFinite(share)) return "—";
  const value = share * 100;
  const text = value.toFixed(digits).replace(/\.0+$/, "").replace(/(\.\d*?)0+$/, "$1");
  return `${text} %`;
}

function burn(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function burnRates(rates) {
  return Object.entries(rates ?? {}).map(([window, value]) => `${window}: ${burn(value)}`).join(", ");
}

function sinceText(iso) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  return `since ${clock(new Date(at))} (${formatSeconds((Date.now() - at) / 1000)} ago)`;
}

function renderAlerts(body) {
  const firing = Array.isArray(body.firing) ? body.firing : [];
  const resolved = Array.isArray(body.resolved) ? body.resolved : [];
  const slos = Array.isArray(body.slos) ? body.slos : [];
  $("#panel-alerts").classList.toggle("alarming", firing.length > 0);

  const summary = firing.length
    ? `${firing.length} alert${firing.length === 1 ? "" : "s"} firing: ${firing.map((a) => `${a.alert} (${a.severity})`).join("; ")}`
    : "No alerts firing.";
  if (ui.alertsSummary.textContent !== summary) ui.alertsSummary.textContent = summary; // announced only when it changes

  replaceChildren(ui.alertsFiring, firing.length
    ? h("ul", { class: "alert-list", "aria-label": "Firing alerts" }, firing.map((alert) =>
      h("li", { class: `alert-item alert-${String(alert.severity ?? "").replace(/[^a-z]/g, "")}`, "data-alert": String(alert.alert ?? "") },
        h("p", { class: "alert-head" },
          severityBadge(alert.severity),
          h("span", { class: "alert-firing-word" }, "Firing"),
          h("strong", { class: "alert-name" }, String(alert.alert ?? "")),
          h("span", { class: "muted alert-since" }, sinceText(alert.since))),
        h("p", { class: "alert-summary" }, String(alert.summary ?? "")),
        h("p", { class: "detail" }, alert.deployment
          ? `Deployment ${alert.deployment} answers HTTP ${Number(alert.status) || "?"}: no traffic will fix it.`
          : `Burn rates ${burnRates(alert.burn_rates)}; ${alert.severity ?? "alert"} at ${burn(alert.threshold)}.`))))
    : h("p", { class: "all-clear" }, h("span", { class: "state state-healthy" }, "all clear"), " No alerts firing."));

  replaceChildren(ui.slos, slos.length ? slos.map((slo) => {
    const left = typeof slo.error_budget_remaining === "number" ? slo.error_budget_remaining : null;
    const isFiring = Array.isArray(slo.firing) && slo.firing.length > 0;
    const latency = typeof slo.threshold_ms === "number" ? `, first token within ${formatLatency(slo.threshold_ms / 1000)}` : "";
    const promise = `${percent(slo.target, 3)} over ${slo.period_days ?? "?"} days${latency}`;
    return h("tr", { "data-slo": String(slo.slo ?? ""), "data-budget": left === null ? "" : String(left) },
      h("th", { scope: "row" }, h("span", { class: "deployment-name" }, String(slo.slo ?? "")),
        isFiring ? h("span", { class: "detail detail-alarm" }, "burning: alert firing") : null,
        h("span", { class: "detail narrow-detail" }, promise)),
      h("td", { class: "wide-only" }, promise),
      h("td", { class: "budget" },
        h("meter", { min: 0, max: 1, low: 0.25, high: 0.5, optimum: 1, value: left === null ? 0 : Math.max(0, Math.min(1, left)),
          "aria-label": `${slo.slo} error budget left` }),
        h("span", { class: left !== null && left <= 0 ? "budget-text budget-spent" : "budget-text" },
          left === null ? "—" : left <= 0 ? `spent: ${burn(1 - left)}× the budget used` : percent(left))),
      h("td", { class: "wide-only" }, `${burn(slo.burn_rates?.["1h"])} / ${burn(slo.burn_rates?.["6h"])}`));
  }) : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No SLOs are tracked.")));

  const recent = resolved.slice(0, 10);
  replaceChildren(ui.alertsResolved, recent.length ? recent.map((alert) => {
    const started = Date.parse(alert.since);
    const ended = Date.parse(alert.until);
    const lasted = Number.isNaN(started) || Number.isNaN(ended) ? "" : formatSeconds((ended - started) / 1000);
    return h("tr", { "data-resolved": String(alert.id ?? alert.alert ?? "") },
      h("th", { scope: "row" }, h("span", { class: "deployment-name" }, String(alert.alert ?? "")),
        h("span", { class: "detail" }, Number.isNaN(ended) ? "" : `resolved ${clock(new Date(ended))}${lasted ? ` after ${lasted}` : ""}`)),
      h("td", {}, severityBadge(alert.severity)),
      h("td", { class: "wide-only" }, burn(alert.peak_burn_rate)));
  }) : h("tr", {}, h("td", { colspan: 3, class: "muted" }, "Nothing resolved recently.")));
}

// ---------------------------------------------------------------- keys


function keyLimits(key) {
  return [
    key.rpm ? `${NUMBER.format(key.rpm)} requests/min` : null,
    key.tpm ? `${NUMBER.format(key.tpm)} tokens/min` : null,
    key.max_concurrency ? `${NUMBER.format(key.max_concurrency)} at once` : null,
    key.budget_tokens ? `budget ${NUMBER.format(key.budget_tokens)} tokens/${key.budget_period ?? "month"}` : null,
    Array.isArray(key.models) && key.models.length ? `models ${key.models.join(", ")}` : null,
    key.expires_at ? `expires ${String(key.expires_at).slice(0, 10)}` : null,
  ].filter(Boolean).join(" · ") || "no limits";
}

function renderKeys(body) {
  const keys = Array.isArray(body.data) ? body.data : [];
  if (state.revoking && !keys.some((k) => k.id === state.revoking && k.status === "active")) state.revoking = null;
  replaceChildren(ui.keys, keys.length ? keys.map((key) => {
    const id = String(key.id ?? "");
    const name = String(key.name ?? "");
    const status = String(key.status ?? "unknown");
    const used = Number(key.usage?.tokens_used ?? 0);
    const usedText = key.budget_tokens
      ? `${NUMBER.format(used)} of ${NUMBER.format(key.budget_tokens)}`
      : NUMBER.format(used);
    return h("tr", { "data-key": id, "data-status": status },
      h("th", { scope: "row" }, h("span", { class: "deployment-name" }, name),
        h("span", { class: "detail" }, h("code", {}, `${key.prefix ?? ""}…`)),
        h("span", { class: "detail narrow-detail" }, `${key.tier ?? ""} · ${keyLimits(key)} · ${usedText} tokens used this ${key.budget_period ?? "month"}`)),
      h("td", { class: "wide-only" }, String(key.tier ?? "")),
      h("td", {}, h("span", { class: `state key-${status.replace(/[^a-z]/g, "")}` }, status)),
      h("td", { class: "wide-only" }, keyLimits(key)),
      h("td", { class: "wide-only" }, usedText, h("span", { class: "detail" }, `this ${key.budget_period ?? "month"}`)),
      h("td", { class: "actions" }, keyActions(id, name, status)));
  }) : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No keys yet.")));
}

function keyActions(id, name, status) {
  if (status !== "active") return null;
  if (state.revoking !== id) {
    return h("button", { type: "button", class: "small", "data-focus-key": `revoke:${id}`, "aria-label": `Revoke ${name}`,
      onclick: () => askToRevoke(id) }, "Revoke");
  }
  return confirmation({
    label: `Confirm revoking ${name}`, text: `Revoke ${name}? Requests with it fail at once.`,
    yes: "Yes, revoke", yesLabel: `Yes, revoke ${name}`, yesKey: `revoke-confirm:${id}`, onYes: (button) => revokeKey(id, name, button),
    keep: "Keep", keepLabel: `Keep ${name}`, keepKey: `revoke-cancel:${id}`, onKeep: () => cancelRevoke(id),
  });
}

function redraw(id) {
  const known = state.panels.get(id);
  if (known?.body) OPTIONAL_PANELS.find((panel) => panel.id === id).render(known.body);
}

function askToRevoke(id) {
  state.revoking = id;
  redraw("keys");
  document.querySelector(`[data-focus-key="${CSS.escape(`revoke-cancel:${id}`)}"]`)?.focus();
}

function cancelRevoke(id) {
  state.revoking = null;
  redraw("keys");
  document.querySelector(`[data-focus-key="${CSS.escape(`revoke:${id}`)}"]`)?.focus();
}

async function revokeKey(id, name, button) {
  button.disabled = true;
  try {
    await adminRequest("DELETE", `/admin/v1/keys/${encodeURIComponent(id)}`);
    showFailure(ui.keyError, null);
    ui.keysStatus.textContent = `${name} is revoked; requests with it are refused.`;
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFailure(ui.keyError, error, `Could not revoke ${name}: `);
  }
  state.revoking = null;
  await refreshPanel("keys");
  ui.keysRegion.focus({ preventScroll: true });
}

/** Reads one optional panel's API again at once (after a change made here) and redraws it. */
async function refreshPanel(id) {
  const panel = OPTIONAL_PANELS.find((p) => p.id === id);
  const generation = state.generation;
  try {
    const body = await adminRequest("GET", panel.path);
    if (generation !== state.generation) return;
    state.panels.set(id, { available: true, body, error: null, checkedAt: performance.now() });
    preservingFocus(() => panel.render(body));
  } catch {
    // the next poll shows what went wrong
  }
}

/** The create form as the API's body: empty fields are left out, so the server's defaults apply. */
function keyRequest() {
  const value = (id) => $(id).value.trim();
  const whole = (id) => (value(id) === "" ? undefined : Number(value(id)));
  const models = value("#key-models").split(",").map((m) => m.trim()).filter(Boolean);
  return {
    name: value("#key-name"),
    tier: $("#key-tier").value,
    rpm: whole("#key-rpm"),
    tpm: whole("#key-tpm"),
    max_concurrency: whole("#key-max-concurrency"),
    budget_tokens: whole("#key-budget-tokens"),
    budget_period: $("#key-budget-period").value,
    models: models.length ? models : undefined,
    expires_in_days: whole("#key-expires"),
  };
}

// ---------------------------------------------------------------- incidents

const INCIDENT_STATUS_WORDS = { investigating: "investigating", identified: "identified", monitoring: "monitoring", resolved: "resolved" };
const COMPONENT_STATUS_WORDS = {
  operational: "operational",
  degraded_performance: "degraded performance",
  partial_outage: "partial outage",
  major_outage: "major outage",
  under_maintenance: "under maintenance",
};
const UPDATES_SHOWN = 3;

/** "12 Jan, 14:05" in the browser's time zone, with the year when it is not this one. */
function when(iso) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  const date = new Date(at);
  const year = date.getFullYear() === new Date().getFullYear() ? undefined : "numeric";
  return date.toLocaleString([], { year, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function incidentStatusBadge(status) {
  const name = String(status ?? "unknown");
  return h("span", { class: `state incident-status incident-status-${name.replace(/[^a-z]/g, "")}` }, INCIDENT_STATUS_WORDS[name] ?? name);
}

function renderIncidents(body) {
  loadComponentNames();
  const incidents = Array.isArray(body.data) ? body.data : [];
  const open = incidents.filter((incident) => incident.status !== "resolved");
  const resolved = incidents.filter((incident) => incident.status === "resolved").slice(0, 5);
  if (state.incidentEditor && !open.some((incident) => incident.id === state.incidentEditor.id)) state.incidentEditor = null;
  // Redraw only when something changed: an unchanged poll leaves an open form (and what is typed in it) alone.
  const drawn = JSON.stringify([open, resolved, state.incidentEditor?.id, state.incidentEditor?.mode]);
  if (drawn === state.incidentsDrawn) return;
  state.incidentsDrawn = drawn;
  preservingFocus(() => {
    replaceChildren(ui.incidentsOpen, open.length
      ? open.map(incidentCard)
      : h("p", { class: "all-clear" }, h("span", { class: "state state-healthy" }, "none open"), " No open incidents."));
    replaceChildren(ui.incidentsResolved, resolved.length ? resolved.map((incident) =>
      h("tr", { "data-resolved-incident": String(incident.id ?? "") },
        h("th", { scope: "row" }, h("span", { class: "deployment-name" }, String(incident.name ?? "")),
          h("span", { class: "detail" }, String(incident.incident_updates?.[0]?.body ?? ""))),
        h("td", { class: "wide-only" }, String(incident.impact ?? "")),
        h("td", {}, when(incident.resolved_at)),
        h("td", { class: "postmortem-cell" }, postmortemSummary(incident))))
      : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "Nothing resolved recently.")));
  });
}

function incidentCard(incident) {
  const id = String(incident.id ?? "");
  const name = String(incident.name ?? "");
  const updates = Array.isArray(incident.incident_updates) ? incident.incident_updates : [];
  const components = (incident.components ?? []).map((c) => `${c.name} ${COMPONENT_STATUS_WORDS[c.status] ?? c.status}`).join(", ");
  const titleId = `incident-title-${id}`;
  return h("article", { class: "incident", "data-incident": id, "data-status": String(incident.status ?? ""), "aria-labelledby": titleId,
    tabindex: "-1", "data-focus-key": `incident:${id}` },
    h("p", { class: "incident-flags" },
      incidentStatusBadge(incident.status),
      h("span", { class: `impact impact-${String(incident.impact ?? "").replace(/[^a-z]/g, "")}` },
        incident.impact === "none" ? "no impact" : `${incident.impact ?? "unknown"} impact`),
      incident.published === false ? h("span", { class: "flag flag-draft" }, "draft: not on the status page") : null,
      incident.automatic ? h("span", { class: "flag" }, "automatic") : null),
    h("h3", { class: "incident-name", id: titleId }, name),
    h("p", { class: "detail" }, [`opened ${when(incident.created_at)}`, components ? `components: ${components}` : "no components named"].join(" · ")),
    h("ol", { class: "incident-updates", "aria-label": `Updates to ${name}, newest first` }, updates.slice(0, UPDATES_SHOWN).map((update) =>
      h("li", { class: "incident-update" },
        h("p", { class: "update-head" }, h("strong", {}, INCIDENT_STATUS_WORDS[update.status] ?? String(update.status ?? "")), " ",
          h("span", { class: "muted" }, when(update.created_at))),
        h("p", { class: "update-body" }, String(update.body ?? ""))))),
    updates.length > UPDATES_SHOWN ? h("p", { class: "detail" }, `and ${updates.length - UPDATES_SHOWN} earlier, on the status page`) : null,
    state.incidentEditor?.id === id ? state.incidentEditor.node : incidentActions(incident));
}

function incidentActions(incident) {
  const id = String(incident.id ?? "");
  const name = String(incident.name ?? "");
  const button = (mode, text, label, extra = {}) => h("button", {
    type: "button", class: "small", "data-focus-key": `incident-${mode}:${id}`, "aria-label": label,
    onclick: () => openIncidentEditor(incident, mode), ...extra }, text);
  return h("div", { class: "row incident-actions" },
    button("update", "Post update", `Post an update to ${name}`),
    button("edit", "Edit", `Edit the title and impact of ${name}`),
    incident.published === false
      ? h("button", { type: "button", class: "small", "data-focus-key": `incident-publish:${id}`, "aria-label": `Publish ${name}`,
        onclick: (event) => publishIncident(id, name, event.currentTarget) }, "Publish")
      : null,
    button("resolve", "Resolve", `Resolve ${name}`));
}

function selectOf(name, values, selected, attributes) {
  return h("select", { name, ...attributes }, values.map(([value, text]) => h("option", { value, selected: value === selected }, text)));
}

/** The form for one action on an incident; kept across redraws until it is sent or cancelled. */
function openIncidentEditor(incident, mode) {
  const id = String(incident.id ?? "");
  const name = String(incident.name ?? "");
  const error = h("div", { class: "failure", role: "alert", id: `incident-editor-error-${id}`, hidden: true });
  const cancel = h("button", { type: "button", "data-focus-key": `incident-cancel:${id}`, onclick: () => closeIncidentEditor(id, mode) },
    mode === "resolve" ? "Keep open" : "Cancel");
  const field = (label, control, wide = false) => {
    control.id = `incident-${mode}-${control.name}-${id}`;
    control.dataset.focusKey = control.id;
    return h("div", { class: wide ? "field field-wide" : "field" }, h("label", { for: control.id }, label), control);
  };
  let form;
  if (mode === "update") {
    const statuses = ["investigating", "identified", "monitoring"].map((s) => [s, s]);
    form = h("form", { class: "incident-editor", "aria-label": `Update to ${name}`, novalidate: true },
      field("Status", selectOf("status", statuses, incident.status, {})),
      field("Message", h("textarea", { name: "body", rows: 3, maxlength: 5000 }), true),
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Post update"), cancel),
      error);
  } else if (mode === "edit") {
    const impacts = ["none", "minor", "major", "critical"].map((s) => [s, s]);
    form = h("form", { class: "incident-editor", "aria-label": `Edit ${name}`, novalidate: true },
      field("Title", h("input", { name: "name", value: name, maxlength: 200, autocomplete: "off" }), true),
      field("Impact", selectOf("impact", impacts, incident.impact, {})),
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Save"), cancel),
      error);
  } else {
    form = h("form", { class: "incident-editor confirm-resolve", "aria-label": `Confirm resolving ${name}`, novalidate: true },
      h("p", { class: "confirm-text" }, `Resolve ${name}? It moves to the past incidents on the status page, and the components it names are shown as measured again.`),
      field("Closing message (optional)", h("textarea", { name: "body", rows: 2, maxlength: 5000 }), true),
      h("div", { class: "row" },
        h("button", { type: "submit", class: "danger", "aria-label": `Yes, resolve ${name}` }, "Yes, resolve"), cancel),
      error);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendIncidentEditor(incident, mode, form, error);
  });
  state.incidentEditor = { id, mode, node: form };
  redraw("incidents");
  form.querySelector(mode === "resolve" ? "button[data-focus-key]" : "input, select, textarea")?.focus();
}

function closeIncidentEditor(id, mode) {
  state.incidentEditor = null;
  redraw("incidents");
  document.querySelector(`[data-focus-key="${CSS.escape(`incident-${mode}:${id}`)}"]`)?.focus();
}

async function sendIncidentEditor(incident, mode, form, error) {
  const id = String(incident.id ?? "");
  const value = (name) => form.elements[name]?.value.trim() ?? "";
  const path = `/admin/v1/incidents/${encodeURIComponent(id)}`;
  const requests = {
    update: () => adminRequest("POST", `${path}/updates`, { status: value("status"), body: value("body") || undefined }),
    edit: () => adminRequest("PATCH", path, { name: value("name"), impact: value("impact") }),
    resolve: () => adminRequest("POST", `${path}/resolve`, value("body") ? { body: value("body") } : {}),
  };
  const done = { update: "Update posted to", edit: "Saved", resolve: "Resolved" };
  clearFormFailure(form, error);
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  try {
    const answer = await requests[mode]();
    state.incidentEditor = null;
    ui.incidentsStatus.textContent = `${done[mode]} ${answer.name ?? incident.name}.`;
    showFailure(ui.incidentError, null);
    await refreshPanel("incidents");
    const next = mode === "resolve" ? $("#incidents-resolved").closest(".table-scroll") : $(`[data-focus-key="${CSS.escape(`incident:${id}`)}"]`);
    next?.focus({ preventScroll: mode !== "resolve" });
  } catch (failure) {
    if (failure instanceof SignedOut) return;
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    showFormFailure(form, error, failure, "Not saved: ");
  }
}

async function publishIncident(id, name, button) {
  button.disabled = true;
  try {
    await adminRequest("POST", `/admin/v1/incidents/${encodeURIComponent(id)}/publish`);
    showFailure(ui.incidentError, null);
    ui.incidentsStatus.textContent = `${name} is published on the status page.`;
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFailure(ui.incidentError, error, `Could not publish ${name}: `);
  }
  await refreshPanel("incidents");
  $(`[data-focus-key="${CSS.escape(`incident:${id}`)}"]`)?.focus({ preventScroll: true });
}

/** One status choice per component of the status page, for the form that opens an incident. */
async function loadComponentNames() {
  if (state.componentNames) return;
  state.componentNames = [];
  try {
    const body = await adminRequest("GET", "/api/v2/components.json");
    state.componentNames = (body.components ?? []).map((c) => String(c.name ?? "")).filter(Boolean);
  } catch {
    state.componentNames = null; // tried again at the next poll
    return;
  }
  const choices = [["", "not affected"], ...Object.entries(COMPONENT_STATUS_WORDS).filter(([s]) => s !== "operational")];
  replaceChildren(ui.incidentComponents, state.componentNames.map((name, index) => {
    const id = `incident-component-${index}`;
    return h("div", { class: "field" }, h("label", { for: id }, name), selectOf(`components.${name}`, choices, "", { id, "data-component": name }));
  }));
}

function incidentRequest() {
  const form = ui.incidentForm;
  const components = {};
  for (const select of ui.incidentComponents.querySelectorAll("select")) {
    if (select.value) components[select.dataset.component] = select.value;
  }
  const message = form.elements.body.value.trim();
  return {
    name: form.elements.name.value.trim(),
    status: form.elements.status.value,
    impact: form.elements.impact.value || undefined,
    components: Object.keys(components).length ? components : undefined,
    body: message || undefined,
    published: !$("#incident-draft").checked,
  };
}

async function createIncident(event) {
  event.preventDefault();
  clearFormFailure(ui.incidentForm, ui.incidentFormError);
  const body = incidentRequest();
  const submit = ui.incidentForm.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const created = await adminRequest("POST", "/admin/v1/incidents", body);
    ui.incidentForm.reset();
    ui.incidentsStatus.textContent = created.published === false
      ? `${created.name} is saved as a draft; publish it to show it on the status page.`
      : `${created.name} is open and on the status page.`;
    await refreshPanel("incidents");
    $(`[data-focus-key="${CSS.escape(`incident:${created.id}`)}"]`)?.focus();
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFormFailure(ui.incidentForm, ui.incidentFormError, error, "The incident was not opened: ");
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- postmortems

/** Where a resolved incident's postmortem stands, and the button that opens it. */
function postmortemSummary(incident) {
  const id = String(incident.id ?? "");
  const name = String(incident.name ?? "");
  const words = incident.postmortem_published_at ? "published" : incident.postmortem_body ? "draft" : "none yet";
  return [
    h("span", { class: "detail postmortem-word" }, words),
    h("button", { type: "button", class: "small", "data-focus-key": `postmortem:${id}`, "aria-label": `Postmortem of ${name}`,
      "aria-controls": "postmortem", "aria-expanded": state.postmortem?.id === id ? "true" : "false", onclick: () => openPostmortem(id) }, "Postmortem"),
  ];
}

const count = (value) => NUMBER.format(Number(value ?? 0));
/** The sum of a map of counts, or of maps of counts (upstream failures are per deployment, then per outcome). */
const total = (map) => Object.values(map ?? {}).reduce((sum, value) => sum + (value && typeof value === "object" ? total(value) : Number(value) || 0), 0);
const breakdown = (map) => Object.entries(map ?? {})
  .map(([name, value]) => `${name.replace(/_/g, " ")} ${count(value && typeof value === "object" ? total(value) : value)}`).join(", ");

/** The figures a postmortem was drafted from, each with its label, in plain words. */
function impactFigures(impact) {
  const requests = Number(impact.requests ?? 0);
  const failed = Number(impact.failed_requests ?? 0);
  const deployments = (impact.deployments ?? []).map(String);
  return [
    ["requests", "Requests", count(requests)],
    ["failed", "Failed", count(failed), requests ? `${percent(failed / requests)} of all` : null],
    ["slow", "Slow first answers", count(impact.slow_requests)],
    ["callers", "Callers affected", count(impact.callers_affected)],
    ["tokens-lost", "Tokens lost", count(impact.tokens_lost), "in answers that failed part-way"],
    ["worst-errors", "Worst error share", percent(impact.worst_error_share)],
    ["worst-slow", "Worst slow share", percent(impact.worst_slow_share)],
    ["failovers", "Failovers", count(total(impact.failovers)), breakdown(impact.failovers) || null],
    ["ejections", "Ejections", count(total(impact.ejections)), breakdown(impact.ejections) || null],
    ["upstream-failures", "Failed upstream attempts", count(total(impact.upstream_failures)), breakdown(impact.upstream_failures) || null],
    ["deployments", "Deployments involved", deployments.length ? deployments.join(", ") : "none"],
  ];
}

/** Draws a postmortem as the API answered it, its text in the editor (replacing what was typed there). */
function showPostmortem(postmortem) {
  const published = Boolean(postmortem.published);
  state.postmortem = { id: String(postmortem.incident_id ?? ""), name: String(postmortem.incident ?? "") };
  ui.postmortemIncident.textContent = state.postmortem.name;
  replaceChildren(ui.postmortemState, published
    ? [h("span", { class: "state incident-status-resolved" }, "published"),
      ` Published at ${when(postmortem.published_at)}: under the incident on the status page, in incidents.json and the feeds. Saving changes it there too.`]
    : [h("span", { class: "flag flag-draft" }, "draft"),
      postmortem.body === null || postmortem.body === undefined
        ? " Nothing written yet."
        : ` Not public until it is published. Last saved ${when(postmortem.updated_at)}.`]);
  replaceChildren(ui.postmortemImpact, impactFigures(postmortem.impact ?? {}).map(([id, label, value, detail]) =>
    h("div", { class: "figure", "data-figure": id },
      h("dt", {}, label),
      h("dd", {}, h("span", { class: "figure-value" }, value), detail ? h("span", { class: "detail" }, detail) : null))));
  ui.postmortemBody.value = postmortem.body ?? "";
  ui.postmortemPublish.hidden = published;
  ui.postmortem.hidden = false;
}

async function openPostmortem(id) {
  clearFormFailure(ui.postmortemForm, ui.postmortemError);
  askPostmortem(null);
  ui.postmortemStatus.textContent = "";
  try {
    showPostmortem(await adminRequest("GET", `/admin/v1/incidents/${encodeURIComponent(id)}/postmortem`));
    showFailure(ui.incidentError, null);
    redrawIncidents();
    ui.postmortem.focus();
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFailure(ui.incidentError, error, "Could not read the postmortem: ");
  }
}

function closePostmortem() {
  const id = state.postmortem?.id;
  state.postmortem = null;
  ui.postmortem.hidden = true;
  ui.postmortemBody.value = "";
  askPostmortem(null);
  if (!id) return;
  redrawIncidents();
  $(`[data-focus-key="${CSS.escape(`postmortem:${id}`)}"]`)?.focus();
}

/** Redraws the incident list at once (the Postmortem buttons say which one is open). */
function redrawIncidents() {
  state.incidentsDrawn = "";
  redraw("incidents");
}

const POSTMORTEM_CHANGES = {
  save: { request: () => ({ body: ui.postmortemBody.value }), done: "Saved." },
  redraft: {
    request: () => ({ redraft: true }), done: "Written anew from what was recorded.",
    ask: "Write the draft anew from what was recorded? It replaces the text above, edits included.",
    yes: "Yes, redraft", keep: "Keep my text",
  },
  publish: {
    // The text as shown is what gets published, saved in the same request.
    request: () => ({ body: ui.postmortemBody.value, publish: true }), done: "Published on the status page.",
    ask: "Publish this text? It appears under the incident on the status page, in incidents.json and the feeds, and subscribers are told.",
    yes: "Yes, publish", keep: "Not yet",
  },
};

/** Shows the confirmation for `change` (redraft or publish) under the buttons, or takes it away (null). */
function askPostmortem(change) {
  const ask = change ? POSTMORTEM_CHANGES[change] : null;
  ui.postmortemConfirm.hidden = !ask;
  if (!ask) {
    replaceChildren(ui.postmortemConfirm);
    return;
  }
  const name = state.postmortem?.name ?? "";
  replaceChildren(ui.postmortemConfirm, confirmation({
    label: `Confirm: ${change} the postmortem of ${name}`, text: ask.ask,
    yes: ask.yes, yesLabel: `${ask.yes} the postmortem of ${name}`, onYes: () => changePostmortem(change),
    keep: ask.keep, onKeep: () => {
      askPostmortem(null);
      $(`#postmortem-${change}`).focus();
    },
  }));
  ui.postmortemConfirm.querySelector("button:last-of-type").focus();
}

async function changePostmortem(change) {
  const id = state.postmortem?.id;
  if (!id) return;
  const form = ui.postmortemForm;
  clearFormFailure(form, ui.postmortemError);
  const buttons = [...form.querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  try {
    const answer = await adminRequest("PUT", `/admin/v1/incidents/${encodeURIComponent(id)}/postmortem`, POSTMORTEM_CHANGES[change].request());
    askPostmortem(null);
    showPostmortem(answer);
    ui.postmortemStatus.textContent = POSTMORTEM_CHANGES[change].done;
    await refreshPanel("incidents");
    ui.postmortemBody.focus({ preventScroll: true });
  } catch (error) {
    if (error instanceof SignedOut) return;
    askPostmortem(null);
    showFormFailure(form, ui.postmortemError, error, change === "publish" ? "Not published: " : "Not saved: ");
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

/** An inline question before something that cannot be undone: what happens, a button to do it, one to keep things. */
function confirmation({ label, text, yes, yesLabel, yesKey, onYes, keep, keepLabel, keepKey, onKeep }) {
  return h("span", { class: "confirm-revoke", role: "group", "aria-label": label },
    h("span", { class: "confirm-text" }, text),
    h("button", { type: "button", class: "small danger", "data-focus-key": yesKey, "aria-label": yesLabel,
      onclick: (event) => onYes(event.currentTarget) }, yes),
    h("button", { type: "button", class: "small", "data-focus-key": keepKey, "aria-label": keepLabel, onclick: onKeep }, keep));
}

// ---------------------------------------------------------------- maintenance

const MAINTENANCE_STATUS_WORDS = { scheduled: "scheduled", in_progress: "in progress", verifying: "verifying", completed: "completed" };

function maintenanceWindow(maintenance) {
  const from = Date.parse(maintenance.scheduled_for);
  const until = Date.parse(maintenance.scheduled_until);
  if (Number.isNaN(from) || Number.isNaN(until)) return "";
  if (until <= from) return `${when(maintenance.scheduled_for)}, cancelled before it began`;
  const sameDay = new Date(from).toDateString() === new Date(until).toDateString();
  const end = sameDay ? new Date(until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : when(maintenance.scheduled_until);
  return `${when(maintenance.scheduled_for)} – ${end}`;
}

function renderMaintenances(body) {
  const all = Array.isArray(body.data) ? body.data : [];
  const current = all.filter((m) => m.status !== "completed");
  const shown = [...current, ...all.filter((m) => m.status === "completed").slice(0, 5)];
  if (state.endingMaintenance && !current.some((m) => m.id === state.endingMaintenance)) state.endingMaintenance = null;
  replaceChildren(ui.maintenances, shown.length ? shown.map((maintenance) => {
    const id = String(maintenance.id ?? "");
    const status = String(maintenance.status ?? "");
    const deployments = (maintenance.deployments ?? []).map(String).join(", ");
    return h("tr", { "data-maintenance": id, "data-status": status },
      h("th", { scope: "row" }, h("span", { class: "deployment-name" }, String(maintenance.name ?? "")),
        h("span", { class: "detail" }, String(maintenance.message ?? "")),
        h("span", { class: "detail narrow-detail" }, `${maintenanceWindow(maintenance)} · ${deployments}`)),
      h("td", {}, h("span", { class: `state maintenance-${status.replace(/[^a-z_]/g, "")}` }, MAINTENANCE_STATUS_WORDS[status] ?? status)),
      h("td", { class: "wide-only" }, maintenanceWindow(maintenance)),
      h("td", { class: "wide-only" }, deployments),
      h("td", { class: "actions" }, maintenanceActions(maintenance)));
  }) : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No maintenance scheduled.")));
}

function maintenanceActions(maintenance) {
  const id = String(maintenance.id ?? "");
  const name = String(maintenance.name ?? "");
  if (maintenance.status === "completed") return null;
  const running = maintenance.status !== "scheduled";
  const verb = running ? "End" : "Cancel";
  if (state.endingMaintenance !== id) {
    return h("button", { type: "button", class: "small", "data-focus-key": `maintenance-end:${id}`, "aria-label": `${verb} ${name}`,
      onclick: () => askToEndMaintenance(id) }, running ? "End now" : "Cancel");
  }
  const deployments = (maintenance.deployments ?? []).map(String).join(", ");
  return confirmation({
    label: `Confirm: ${verb.toLowerCase()} ${name}`,
    text: running ? `End it now? Traffic goes to ${deployments} again at once.` : "Cancel it? It is taken off the status page's plans.",
    yes: running ? "Yes, end it" : "Yes, cancel it", yesLabel: `Yes, ${verb.toLowerCase()} ${name}`, yesKey: `maintenance-confirm:${id}`,
    onYes: (button) => endMaintenance(id, name, running, button),
    keep: "Keep", keepLabel: `Keep ${name}`, keepKey: `maintenance-keep:${id}`, onKeep: () => keepMaintenance(id),
  });
}

function askToEndMaintenance(id) {
  state.endingMaintenance = id;
  redraw("maintenances");
  document.querySelector(`[data-focus-key="${CSS.escape(`maintenance-keep:${id}`)}"]`)?.focus();
}

function keepMaintenance(id) {
  state.endingMaintenance = null;
  redraw("maintenances");
  document.querySelector(`[data-focus-key="${CSS.escape(`maintenance-end:${id}`)}"]`)?.focus();
}

async function endMaintenance(id, name, running, button) {
  button.disabled = true;
  try {
    await adminRequest("POST", `/admin/v1/maintenances/${encodeURIComponent(id)}/complete`);
    showFailure(ui.maintenanceError, null);
    ui.maintenancesStatus.textContent = running ? `${name} is over; its deployments are back.` : `${name} is cancelled.`;
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFailure(ui.maintenanceError, error, `Could not end ${name}: `);
  }
  state.endingMaintenance = null;
  await refreshPanel("maintenances");
  ui.maintenances.closest(".table-scroll").focus({ preventScroll: true });
  schedulePoll(0);
}

/** A checkbox per deployment for the schedule form; what is ticked stays ticked when the list is redrawn. */
function renderMaintenanceDeployments(names) {
  const known = [...ui.maintenanceDeployments.querySelectorAll("input")].map((input) => input.value);
  if (names.join("\n") === known.join("\n")) return;
  const checked = new Set([...ui.maintenanceDeployments.querySelectorAll("input:checked")].map((input) => input.value));
  replaceChildren(ui.maintenanceDeployments, names.map((name, index) => {
    const id = `maintenance-deployment-${index}`;
    return h("label", { class: "check", for: id }, h("input", { type: "checkbox", id, value: name, checked: checked.has(name) }), ` ${name}`);
  }));
}

async function scheduleMaintenance(event) {
  event.preventDefault();
  const form = ui.maintenanceForm;
  clearFormFailure(form, ui.maintenanceFormError);
  const minutes = Number(form.elements.scheduled_until.value);
  if (!Number.isFinite(minutes) || minutes <= 0) {
    showFormFailure(form, ui.maintenanceFormError,
      { message: "give the length in minutes, 1 or more.", param: "scheduled_until" }, "");
    return;
  }
  const from = form.elements.scheduled_for.value ? new Date(form.elements.scheduled_for.value) : new Date();
  const body = {
    name: form.elements.name.value.trim(),
    deployments: [...ui.maintenanceDeployments.querySelectorAll("input:checked")].map((input) => input.value),
    scheduled_for: from.toISOString(),
    scheduled_until: new Date(from.getTime() + minutes * 60_000).toISOString(),
    message: form.elements.message.value.trim() || undefined,
  };
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const created = await adminRequest("POST", "/admin/v1/maintenances", body);
    form.reset();
    for (const input of ui.maintenanceDeployments.querySelectorAll("input")) input.checked = false;
    ui.maintenancesStatus.textContent = `${created.name} is scheduled for ${maintenanceWindow(created)} and announced on the status page.`;
    await refreshPanel("maintenances");
    ui.maintenances.closest(".table-scroll").focus({ preventScroll: true });
    schedulePoll(0);
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFormFailure(form, ui.maintenanceFormError, error, "The maintenance was not scheduled: ");
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- status subscribers

const SUBSCRIBER_STATE_WORDS = { pending: "waiting for approval", active: "active" };

function renderSubscribers(body) {
  const subscribers = Array.isArray(body.data) ? body.data : [];
  if (state.removingSubscriber && !subscribers.some((s) => s.id === state.removingSubscriber)) state.removingSubscriber = null;
  replaceChildren(ui.subscribers, subscribers.length ? subscribers.map((subscriber) => {
    const id = String(subscriber.id ?? "");
    const status = String(subscriber.state ?? "");
    const components = (subscriber.components ?? []).map(String);
    const componentText = components.length ? components.join(", ") : "all components";
    const registered = [`registered ${when(subscriber.created_at)}`, subscriber.approved_at ? `approved ${when(subscriber.approved_at)}` : null]
      .filter(Boolean).join(", ");
    const badge = () => h("span", { class: `state subscriber-${status.replace(/[^a-z]/g, "")}` }, SUBSCRIBER_STATE_WORDS[status] ?? status);
    return h("tr", { "data-subscriber": id, "data-state": status },
      h("th", { scope: "row", class: "subscriber-endpoint" }, h("span", { class: "deployment-name" }, String(subscriber.endpoint_host ?? "")),
        h("span", { class: "detail" }, h("code", { class: "endpoint" }, String(subscriber.endpoint ?? ""))),
        h("span", { class: "detail narrow-detail" }, badge(), ` ${componentText} · ${registered}`)),
      h("td", { class: "wide-only" }, badge()),
      h("td", { class: "wide-only" }, componentText),
      h("td", { class: "wide-only" }, registered),
      h("td", { class: "actions" }, subscriberActions(subscriber)));
  }) : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No subscribers.")));
}

function subscriberActions(subscriber) {
  const id = String(subscriber.id ?? "");
  const endpoint = String(subscriber.endpoint ?? "");
  const host = String(subscriber.endpoint_host ?? "");
  if (state.removingSubscriber === id) {
    return confirmation({
      label: `Confirm removing the subscriber ${endpoint}`,
      text: `Remove ${host}? It gets no more updates, and only a new registration brings it back.`,
      yes: "Yes, remove", yesLabel: `Yes, remove ${endpoint}`, yesKey: `subscriber-confirm:${id}`, onYes: (button) => removeSubscriber(id, host, button),
      keep: "Keep", keepLabel: `Keep ${endpoint}`, keepKey: `subscriber-keep:${id}`, onKeep: () => askToRemoveSubscriber(null, id),
    });
  }
  return h("span", { class: "row subscriber-actions" },
    subscriber.state === "pending"
      ? h("button", { type: "button", class: "small primary", "data-focus-key": `subscriber-approve:${id}`, "aria-label": `Approve ${endpoint}`,
        onclick: (event) => approveSubscriber(id, host, event.currentTarget) }, "Approve")
      : null,
    h("button", { type: "button", class: "small", "data-focus-key": `subscriber-remove:${id}`, "aria-label": `Remove ${endpoint}`,
      onclick: () => askToRemoveSubscriber(id, id) }, "Remove"));
}

/** Opens the removal question for `id` (or closes it, null) and moves focus to where the choice is made. */
function askToRemoveSubscriber(id, focusId) {
  state.removingSubscriber = id;
  redraw("subscribers");
  const key = id ? `subscriber-keep:${focusId}` : `subscriber-remove:${focusId}`;
  document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}

async function approveSubscriber(id, host, button) {
  await changeSubscriber(button, () => adminRequest("POST", `/admin/v1/subscribers/${encodeURIComponent(id)}/approve`),
    `${host} is approved and gets updates from now on.`, `Could not approve ${host}: `);
  document.querySelector(`[data-focus-key="${CSS.escape(`subscriber-remove:${id}`)}"]`)?.focus();
}

async function removeSubscriber(id, host, button) {
  await changeSubscriber(button, () => adminRequest("DELETE", `/admin/v1/subscribers/${encodeURIComponent(id)}`),
    `${host} is removed.`, `Could not remove ${host}: `);
  state.removingSubscriber = null;
  redraw("subscribers");
  ui.subscribersRegion.focus({ preventScroll: true });
}

async function changeSubscriber(button, request, done, failed) {
  button.disabled = true;
  try {
    await request();
    showFailure(ui.subscriberError, null);
    ui.subscribersStatus.textContent = done;
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFailure(ui.subscriberError, error, failed);
  }
  await refreshPanel("subscribers");
}

// ---------------------------------------------------------------- forms

/** Takes away the marks a previous failure left on a form's fields and hides its message. */
function clearFormFailure(form, errorNode) {
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    const described = (field.getAttribute("aria-describedby") ?? "").split(" ").filter((d) => d && d !== errorNode.id);
    if (described.length) field.setAttribute("aria-describedby", described.join(" "));
    else field.removeAttribute("aria-describedby");
  }
  showFailure(errorNode, null);
}

/**
 * Shows the API's validation message under a form; when its `param` names one of the form's
 * fields (by `name`), that field is marked invalid, described by the message and focused.
 */
function showFormFailure(form, errorNode, error, fallbackPrefix) {
  const field = error.param ? form.querySelector(`[name="${CSS.escape(error.param)}"]`) : null;
  const label = field ? (field.labels?.[0] ?? field.querySelector("legend"))?.textContent?.trim() : null;
  showFailure(errorNode, error, field ? `${label || error.param}: ` : fallbackPrefix);
  if (!field) return;
  field.setAttribute("aria-invalid", "true");
  field.setAttribute("aria-describedby", [field.getAttribute("aria-describedby"), errorNode.id].filter(Boolean).join(" "));
  (field.matches("fieldset") ? field.querySelector("input, select, textarea") : field)?.focus();
}

async function createKey(event) {
  event.preventDefault();
  clearFormFailure(ui.keyForm, ui.keyFormError);
  const body = keyRequest();
  const submit = ui.keyForm.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const created = await adminRequest("POST", "/admin/v1/keys", body);
    ui.keyForm.reset();
    showSecret(String(created.name ?? body.name), String(created.secret ?? ""));
    ui.keysStatus.textContent = `Key ${created.name ?? body.name} created.`;
    await refreshPanel("keys");
  } catch (error) {
    if (error instanceof SignedOut) return;
    showFormFailure(ui.keyForm, ui.keyFormError, error, "The key was not created: ");
  } finally {
    submit.disabled = false;
  }
}

/** The new secret, in the page only (never in storage or state), until it is dismissed. */
function showSecret(name, secret) {
  ui.secretName.textContent = name;
  ui.secret.textContent = secret;
  ui.secretCopied.textContent = "";
  ui.secretBox.hidden = false;
  ui.secretBox.focus();
}

function dismissSecret() {
  ui.secret.textContent = "";
  ui.secretName.textContent = "";
  ui.secretCopied.textContent = "";
  ui.secretBox.hidden = true;
}

async function copySecret() {
  const text = ui.secret.textContent;
  try {
    await navigator.clipboard.writeText(text);
    ui.secretCopied.textContent = "Copied.";
  } catch {
    // No clipboard access (an insecure origin or a refused permission): select it for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents(ui.secret);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    ui.secretCopied.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

// ---------------------------------------------------------------- optional panels

/** Checks which optional admin APIs answer; present ones are read every poll, absent ones now and then. */
async function probePanels() {
  const now = performance.now();
  await Promise.all(OPTIONAL_PANELS.map(async (panel) => {
    const known = state.panels.get(panel.id);
    if (known && !known.available && now - known.checkedAt < PROBE_MS) return;
    try {
      const body = await adminRequest("GET", panel.path);
      state.panels.set(panel.id, { available: true, body, error: null, checkedAt: now });
    } catch (error) {
      if (error instanceof SignedOut) return;
      const absent = error.status === 404 || error.status === 405 || error.status === 501;
      state.panels.set(panel.id, { available: !absent && Boolean(known?.available), body: known?.body, error: absent ? null : error, checkedAt: now });
    }
  }));
}

function renderPanels() {
  for (const panel of OPTIONAL_PANELS) {
    const known = state.panels.get(panel.id);
    const section = $(panel.section);
    section.hidden = !known?.available;
    if (!known?.available) continue;
    showFailure($(`#${panel.id}-refresh-error`), known.error, "Refresh failed: ");
    if (known.body) panel.render(known.body);
  }
}

// ---------------------------------------------------------------- wiring

ui.tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ui.tokenInput.value.trim();
  if (token) signIn(token);
});
ui.signOut.addEventListener("click", () => signOut(null));
ui.faultForm.addEventListener("submit", injectFault);
ui.keyForm.addEventListener("submit", createKey);
ui.incidentForm.addEventListener("submit", createIncident);
ui.maintenanceForm.addEventListener("submit", scheduleMaintenance);
ui.postmortemForm.addEventListener("submit", (event) => {
  event.preventDefault();
  changePostmortem("save");
});
$("#postmortem-redraft").addEventListener("click", () => askPostmortem("redraft"));
ui.postmortemPublish.addEventListener("click", () => askPostmortem("publish"));
$("#postmortem-close").addEventListener("click", closePostmortem);
$("#key-secret-copy").addEventListener("click", copySecret);
$("#key-secret-dismiss").addEventListener("click", () => {
  dismissSecret();
  ui.keysRegion.focus({ preventScroll: true });
});
$("#fault-kind").addEventListener("change", showFieldsForKind);
showFieldsForKind();

if (state.token) signIn(state.token);
else ui.tokenInput.focus();
document.body.dataset.ready = "true";
