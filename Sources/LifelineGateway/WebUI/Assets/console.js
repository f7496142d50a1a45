// The operator console: deployments, drills and traffic from the admin API and /metrics.
// The admin token stays in this tab (sessionStorage) and goes out only as a bearer header.

import { ApiFailure } from "./api.js";
import { formatSeconds, h, preservingFocus, replaceChildren, svg } from "./dom.js";
import { parsePrometheus, trafficBetween } from "./metrics.js";

const POLL_MS = 2_000;
const HISTORY_POINTS = 60; // two minutes at one point per poll
const PROBE_MS = 30_000;
const TOKEN_KEY = "lifeline.console.adminToken";

// Panels for admin APIs that may not exist on this server: each is shown only when a GET of its
// path answers, and never with made-up data. Alerts and keys have their own sections in the page
// (`section`, drawn by `render`); any other list is drawn as a plain table.
const OPTIONAL_PANELS = [
  { id: "incidents", title: "Incidents", path: "/admin/v1/incidents" },
  { id: "alerts", title: "Alerts", path: "/admin/v1/alerts", section: "#panel-alerts", render: (body) => renderAlerts(body) },
  { id: "keys", title: "API keys", path: "/admin/v1/keys", section: "#panel-keys", render: (body) => renderKeys(body) },
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
  for (const panel of OPTIONAL_PANELS) if (panel.section) $(panel.section).hidden = true;
  dismissSecret();
  state.revoking = null;
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
        h("p", { class: "detail" }, `Burn rates ${burnRates(alert.burn_rates)}; ${alert.severity ?? "alert"} at ${burn(alert.threshold)}.`))))
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
  return h("span", { class: "confirm-revoke", role: "group", "aria-label": `Confirm revoking ${name}` },
    h("span", { class: "confirm-text" }, `Revoke ${name}? Requests with it fail at once.`),
    h("button", { type: "button", class: "small danger", "data-focus-key": `revoke-confirm:${id}`, "aria-label": `Yes, revoke ${name}`,
      onclick: (event) => revokeKey(id, name, event.currentTarget) }, "Yes, revoke"),
    h("button", { type: "button", class: "small", "data-focus-key": `revoke-cancel:${id}`, "aria-label": `Keep ${name}`,
      onclick: () => cancelRevoke(id) }, "Keep"));
}

function redrawKeys() {
  const known = state.panels.get("keys");
  if (known?.body) renderKeys(known.body);
}

function askToRevoke(id) {
  state.revoking = id;
  redrawKeys();
  document.querySelector(`[data-focus-key="${CSS.escape(`revoke-cancel:${id}`)}"]`)?.focus();
}

function cancelRevoke(id) {
  state.revoking = null;
  redrawKeys();
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
  await refreshKeys();
  ui.keysRegion.focus({ preventScroll: true });
}

async function refreshKeys() {
  const generation = state.generation;
  try {
    const body = await adminRequest("GET", "/admin/v1/keys");
    if (generation !== state.generation) return;
    state.panels.set("keys", { available: true, body, error: null, checkedAt: performance.now() });
    preservingFocus(() => renderKeys(body));
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

function clearFieldErrors() {
  for (const field of ui.keyForm.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    const described = (field.getAttribute("aria-describedby") ?? "").split(" ").filter((d) => d && d !== "key-form-error");
    if (described.length) field.setAttribute("aria-describedby", described.join(" "));
    else field.removeAttribute("aria-describedby");
  }
}

async function createKey(event) {
  event.preventDefault();
  clearFieldErrors();
  showFailure(ui.keyFormError, null);
  const body = keyRequest();
  const submit = ui.keyForm.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const created = await adminRequest("POST", "/admin/v1/keys", body);
    ui.keyForm.reset();
    showSecret(String(created.name ?? body.name), String(created.secret ?? ""));
    ui.keysStatus.textContent = `Key ${created.name ?? body.name} created.`;
    await refreshKeys();
  } catch (error) {
    if (error instanceof SignedOut) return;
    const field = error.param ? ui.keyForm.querySelector(`[name="${CSS.escape(error.param)}"]`) : null;
    showFailure(ui.keyFormError, error, field ? `${field.labels?.[0]?.textContent ?? error.param}: ` : "The key was not created: ");
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", [field.getAttribute("aria-describedby"), "key-form-error"].filter(Boolean).join(" "));
      field.focus();
    }
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
  for (const panel of OPTIONAL_PANELS.filter((p) => p.section)) {
    const known = state.panels.get(panel.id);
    const section = $(panel.section);
    section.hidden = !known?.available;
    if (!known?.available) continue;
    showFailure($(`#${panel.id}-refresh-error`), known.error, "Refresh failed: ");
    if (known.body) panel.render(known.body);
  }
  replaceChildren(ui.optionalPanels, OPTIONAL_PANELS.filter((p) => !p.section).flatMap((panel) => {
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
ui.keyForm.addEventListener("submit", createKey);
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
