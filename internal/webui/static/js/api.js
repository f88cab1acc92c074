// Requests to the gateway. Everything goes to the page's own origin; OAuth2
// Proxy adds the signed-in person's identity and the gateway token.

// ApiError is a failed request: the HTTP status (0 when the gateway could
// not be reached), the gateway's message, and when to come back for a 429.
export class ApiError extends Error {
  constructor(status, message, { type = "", retryAt = null } = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.retryAt = retryAt;
  }
}

// request sends a JSON request and returns the parsed answer (null for 204).
export async function request(method, path, { body, signal, raw, contentType } = {}) {
  const init = { method, headers: { Accept: "application/json" }, signal, credentials: "same-origin" };
  if (raw !== undefined) {
    init.body = raw;
    init.headers["Content-Type"] = contentType || "application/octet-stream";
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "The gateway could not be reached. Check your connection.");
  }
  if (!resp.ok) throw await errorFrom(resp);
  if (resp.status === 204) return null;
  return resp.json();
}

// optional is request for a route the gateway may not have yet: a 404
// answers null, so the page can hide what it cannot do.
export async function optional(path) {
  try {
    return await request("GET", path);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
    throw err;
  }
}

// errorFrom reads the gateway's JSON error, {"error": {"type", "message"}},
// or says what the status means when the body is something else (OAuth2
// Proxy's own pages, a proxy in between).
export async function errorFrom(resp) {
  let message = "", type = "";
  try {
    const body = await resp.json();
    if (body && body.error) {
      message = body.error.message || "";
      type = body.error.type || "";
    }
  } catch (_) { /* not JSON */ }
  const retryAt = retryAfter(resp.headers.get("Retry-After"));
  if (resp.status === 401) {
    message = "You are signed out. Reload the page to sign in again.";
  } else if (!message) {
    message = `The gateway answered ${resp.status} ${resp.statusText}`.trim();
  }
  return new ApiError(resp.status, message, { type, retryAt });
}

// retryAfter turns a Retry-After header (seconds or an HTTP date) into a Date.
export function retryAfter(value, now = Date.now()) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return new Date(now + Number(value) * 1000);
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : new Date(t);
}

// streamEvents reads a text/event-stream body, calling onEvent(name, data)
// for each event with its parsed JSON data.
export async function streamEvents(resp, onEvent) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const raw = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
