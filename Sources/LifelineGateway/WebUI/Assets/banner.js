// The service-status banner, from a Statuspage-shaped `/api/v2/status.json`:
// {"status": {"indicator": "none|minor|major|critical|maintenance", "description": "…"}}

const HEADLINES = {
  minor: "Some parts of the service are having problems. Answers may be slower or fail now and then.",
  major: "The service is having a major outage. Many requests are failing.",
  critical: "The service is down. Requests are failing.",
  maintenance: "Maintenance is in progress. Some requests may fail.",
};

/**
 * What the banner should say for a status document, or null for no banner. Pure: no banner
 * when everything is operational or when the document is not in the expected shape.
 */
export function statusBanner(document) {
  const status = document && typeof document === "object" ? document.status : null;
  const indicator = status && typeof status === "object" ? status.indicator : null;
  if (typeof indicator !== "string" || indicator === "none") return null;
  const level = Object.hasOwn(HEADLINES, indicator) ? indicator : "minor";
  const headline = HEADLINES[level];
  const description = typeof status.description === "string" ? status.description.trim() : "";
  return { level, headline, description, link: "/status" };
}

/**
 * Fetches the status document: the parsed JSON, or null when there is none (404, not JSON,
 * network error) — then the page shows no banner rather than guessing.
 */
export async function fetchStatus() {
  try {
    const response = await fetch("/api/v2/status.json", { headers: { accept: "application/json" }, credentials: "omit" });
    if (!response.ok) return null;
    return await response.json();
  } catch {
    return null;
  }
}
