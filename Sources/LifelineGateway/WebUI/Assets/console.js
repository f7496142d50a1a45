// The operator console: deployments, drills and traffic from the admin API and /metrics.
// The admin token stays in this tab (sessionStorage) and goes out only as a bearer header.

import { ApiFailure } from "./api.js";
import { formatSeconds, h, preservingFocus, replaceChildren, svg } from "./dom.js";
import { parsePrometheus, trafficBetween } from "./metrics.js";

const POLL_MS = 2_000;
const HISTORY_POINTS = 60; // two minutes at one point per poll
const PROBE_MS = 30_000;
const TOKEN_KEY = "lifeline.console.adminToken";

// Panels for admin APIs that may not exist on this server yet: each is shown only when a GET
// of its path answers, and never with made-up data.
const OPTIONAL_PANELS = [
  { id: "incidents", title: "Incidents", path: "/admin/v1/incidents" },
  { id: "alerts", title: "Alerts", path: "/admin/v1/alerts" },
  { id: "keys", title: "API keys", path: "/admin/v1/keys" },
  { id: "maintenances", title: "Maintenance", path: "/admin/v1/maintenances" },
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
  pollError: $("#poll-error"),
  traffic: $("#traffic"),
  deployments: $("#deployments"),
  deploymentError: $("#deployment-error"),
  faultForm: $("#fault-form"),
  faultDeployment: $("#fault-deployment"),
  faultError: $("#fault-error"),
  faults: $("#faults"),
  optionalPanels: $("#optional-panels"),
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? "",
  pollTimer: 0,
  generation: 0, // bumps on sign-in/out so a late answer from an old session is ignored
  lastScrape: null, // { samples, at }
  history: [],
  panels: new Map(), // id -> { available, body, error, checkedAt }
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
  replaceChildren(ui.optionalPanels);
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
  const [deployments, faults, metrics] = await Promise.allSettled([
    adminRequest("GET", "/admin/v1/deployments"),
    adminRequest("GET", "/admin/v1/faults"),
    adminRequest("GET", "/metrics"),
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
    renderPanels();
  });
  showFailure(ui.pollError, failures[0] ?? null, "Refresh failed: ");
  ui.pollState.textContent = failures.length
    ? `Last refresh failed at ${clock(new Date())}; retrying every ${POLL_MS / 1000} s.`
    : `Updated ${clock(new Date())}, every ${POLL_MS / 1000} s.`;
  schedulePoll();
}

function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// ---------------------------------------------------------------- traffic

function recordScrape(text) {
  const samples = parsePrometheus(text);
  const at = performance.now();
  if (state.lastScrape) {
    const seconds = (at - state.lastScrape.at) / 1000;
    state.history.push(trafficBetween(state.lastScrape.samples, samples, seconds));
    if (state.history.length > HISTORY_POINTS) state.history.shift();
  }
  state.lastScrape = { samples, at };
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
  const latest = state.history.at(-1);
  replaceChildren(ui.traffic, STATS.map((stat) => {
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

// ---------------------------------------------------------------- deployments

const STATE_WORDS = {
  healthy: "healthy",
  ejected: "ejected",
  half_open: "half open",
  cooling: "cooling down",
  faulted: "drill fault",
  draining: "draining",
};

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
      h("td", {}, h("span", { class: `state state-${String(d.state ?? "unknown").replace(/[^a-z_]/g, "")}` }, STATE_WORDS[d.state] ?? String(d.state ?? "unknown"))),
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
  replaceChildren(ui.optionalPanels, OPTIONAL_PANELS.flatMap((panel) => {
    const known = state.panels.get(panel.id);
    if (!known?.available) return [];
    const titleId = `panel-${panel.id}-title`;
    return [h("section", { class: "card", id: `panel-${panel.id}`, "aria-labelledby": titleId },
      h("h2", { id: titleId }, panel.title),
      known.error ? h("p", { class: "failure-message" }, `Refresh failed: ${known.error.message}`) : null,
      genericList(known.body, panel))];
  }));
}

/** Any list the API returns, as a table of its plain fields; every value shown as text. */
function genericList(body, panel) {
  const items = Array.isArray(body) ? body : Array.isArray(body?.data) ? body.data : Array.isArray(body?.[panel.id]) ? body[panel.id] : null;
  if (!items) return h("pre", { class: "raw", tabindex: "0" }, JSON.stringify(body, null, 2));
  if (!items.length) return h("p", { class: "muted" }, "None.");
  const isPlain = (v) => v === null || ["string", "number", "boolean"].includes(typeof v);
  const columns = [];
  for (const item of items) {
    for (const [key, value] of Object.entries(item ?? {})) if (isPlain(value) && !columns.includes(key)) columns.push(key);
  }
  const shown = columns.slice(0, 7);
  return h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": panel.title },
    h("table", { class: "data-table" },
      h("thead", {}, h("tr", {}, shown.map((c) => h("th", { scope: "col" }, c.replace(/_/g, " "))))),
      h("tbody", {}, items.map((item) => h("tr", {}, shown.map((c) => h("td", {}, item?.[c] === undefined || item?.[c] === null ? "" : String(item[c]))))))));
}

// ---------------------------------------------------------------- wiring

ui.tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ui.tokenInput.value.trim();
  if (token) signIn(token);
});
ui.signOut.addEventListener("click", () => signOut(null));
ui.faultForm.addEventListener("submit", injectFault);
$("#fault-kind").addEventListener("change", showFieldsForKind);
showFieldsForKind();

if (state.token) signIn(state.token);
else ui.tokenInput.focus();
document.body.dataset.ready = "true";
