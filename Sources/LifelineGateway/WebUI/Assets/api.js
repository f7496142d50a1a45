// Talking to the gateway: errors in plain words, Retry-After, and streamed chat answers.

/** A request that failed, with what the API said about it. */
export class ApiFailure extends Error {
  constructor({ status = 0, message, retryAfterSeconds = null, code = null, param = null }) {
    super(message);
    this.name = "ApiFailure";
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
    this.code = code;
    this.param = param;
  }

  static async from(response) {
    const text = await response.text().catch(() => "");
    return new ApiFailure(describeFailure(response.status, text, response.headers.get("retry-after")));
  }
}

const STATUS_WORDS = {
  400: "The request was not accepted",
  401: "An API key is needed, or the one given was refused",
  403: "This key may not do that",
  404: "Not found",
  408: "The request took too long",
  413: "The message is too large",
  429: "Too many requests for this key right now",
  500: "The server had an internal error",
  502: "The model provider answered badly",
  503: "The service cannot answer right now",
  504: "The model provider took too long",
};

/**
 * What a failed answer means, from its status, body and Retry-After header. Reads OpenAI's
 * `{"error":{"message"}}` and Anthropic's `{"type":"error","error":{"message"}}`. Pure.
 */
export function describeFailure(status, bodyText, retryAfterHeader, now = Date.now()) {
  let message = "";
  let code = null;
  let param = null;
  try {
    const body = JSON.parse(bodyText);
    const error = body && typeof body === "object" ? body.error : null;
    if (error && typeof error === "object") {
      if (typeof error.message === "string") message = error.message;
      if (typeof error.code === "string") code = error.code;
      if (typeof error.param === "string") param = error.param;
    } else if (typeof error === "string") {
      message = error;
    }
  } catch {
    // Not JSON: a proxy's page or an empty body. Fall back to the status in words.
  }
  if (!message) {
    const words = STATUS_WORDS[status] ?? (status >= 500 ? "The server failed" : "The request failed");
    message = `${words} (HTTP ${status}).`;
  }
  return { status, message, code, param, retryAfterSeconds: parseRetryAfter(retryAfterHeader, now) };
}

/** Retry-After as whole seconds from `now`: either delta-seconds or an HTTP date. Null if absent or unreadable. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined) return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** Bearer header when a key is set. */
export function authorization(key) {
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** Splits a byte stream into server-sent events: `{data}` for each event, `{comment}` for `:` lines. */
export async function* readServerSentEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length) yield { data: data.join("\n") };
          data = [];
        } else if (line.startsWith(":")) {
          yield { comment: line.slice(1).trim() };
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
      }
    }
    if (data.length) yield { data: data.join("\n") };
  } finally {
    reader.releaseLock();
  }
}

/**
 * Streams one answer from `/v1/chat/completions`. Calls `onText` with each piece of text and
 * `onNote` with what the gateway reports (deployment, cache result, resumptions). Resolves with the usage when
 * the stream completes; throws ApiFailure when it fails, and the abort error when `signal` stops it.
 */
export async function streamChat({ model, messages, apiKey, signal, onText, onNote }) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", ...authorization(apiKey) },
    body: JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true } }),
    credentials: "omit", // the key travels in the header only; no cookies, ever
    signal,
  });
  if (!response.ok) throw await ApiFailure.from(response);
  if (!response.body) throw new ApiFailure({ status: response.status, message: "The server sent no answer body." });
  // x-lifeline-cache: "stale" when an earlier answer stands in while every deployment fails.
  onNote?.({ deployment: response.headers.get("x-lifeline-deployment"), cache: response.headers.get("x-lifeline-cache") });
  let usage = null;
  for await (const event of readServerSentEvents(response.body)) {
    if (event.comment !== undefined) {
      const resumed = /^lifeline resumed on (\S+)/.exec(event.comment);
      if (resumed) onNote?.({ resumedOn: resumed[1] });
      continue;
    }
    if (event.data === "[DONE]") return usage;
    let chunk;
    try {
      chunk = JSON.parse(event.data);
    } catch {
      continue;
    }
    if (chunk.error) {
      const { message, code } = describeFailure(response.status, JSON.stringify(chunk), null);
      throw new ApiFailure({ status: 0, message: `The answer stopped part-way: ${message}`, code });
    }
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices ?? []) {
      const text = choice.delta?.content;
      if (typeof text === "string" && text) onText(text);
    }
  }
  throw new ApiFailure({ status: 0, message: "The connection closed before the answer was complete." });
}

/** The public model names from `/v1/models`. */
export async function listModels(apiKey) {
  const response = await fetch("/v1/models", { headers: authorization(apiKey), credentials: "omit" });
  if (!response.ok) throw await ApiFailure.from(response);
  const body = await response.json();
  return (body.data ?? []).map((model) => model.id).filter((id) => typeof id === "string");
}
