// Talking to the gateway: tokens, JSON requests, the watch stream and WebSocket URLs.
// Tokens live in sessionStorage (gone with the tab) and travel only in the Authorization header;
// the one exception is a WebSocket's ?token=, because browsers cannot set headers on a WebSocket.

const KEY = "clawpen.session";
let session = load();
let refreshing = null;
let refreshTimer = null;
const listeners = new Set();

function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch { return null; }
}

function save(next) {
  session = next;
  if (next) sessionStorage.setItem(KEY, JSON.stringify(next));
  else sessionStorage.removeItem(KEY);
  scheduleRefresh();
  for (const fn of listeners) fn(Boolean(next));
}

export function onAuthChange(fn) { listeners.add(fn); }
export function loggedIn() { return Boolean(session && session.access); }
export function accessToken() { return session ? session.access : null; }

function fromTokens(body) {
  return {
    access: body.access_token,
    refresh: body.refresh_token,
    expires: Date.now() + (Number(body.expires_in) || 3600) * 1000,
  };
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session) return;
  // Refresh a minute before expiry (and at most once a day: setTimeout's limit is ~24.8 days).
  const wait = Math.max(5_000, Math.min(session.expires - Date.now() - 60_000, 86_400_000));
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
}
scheduleRefresh();

export class ApiError extends Error {
  constructor(status, body) {
    const text = body && typeof body === "object" ? body.error || JSON.stringify(body) : String(body || "");
    super(text || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    // 422: [{field, message}] — the form shows each message on the field it names.
    this.fields = body && Array.isArray(body.detail) ? body.detail.filter((d) => d && d.field) : [];
  }
}

async function parse(response) {
  const type = response.headers.get("content-type") || "";
  if (response.status === 204) return null;
  if (type.includes("application/json")) return response.json();
  return response.text();
}

async function postForTokens(path, payload) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  const body = await parse(response);
  if (!response.ok) throw new ApiError(response.status, body);
  save(fromTokens(body));
}

// No user name: the built-in admin (as the gateway defines it).
export function login(password, username) {
  return postForTokens("/auth/login", username ? { username, password } : { password });
}

// Single sign-on: the callback sent us back with a one-time code in the fragment (never tokens in a
// URL); this trades it, once, with the session cookie the gateway set for this browser.
export function exchangeSsoCode(code) {
  return postForTokens("/auth/oidc/exchange", { code });
}

export const SSO_LOGIN_URL = "/auth/oidc/login?client=dashboard";

export async function authStatus() {
  const response = await fetch("/auth/status");
  return response.ok ? response.json() : {};
}

export function logout() { save(null); }

export async function refresh() {
  if (!session || !session.refresh) throw new ApiError(401, { error: "not logged in" });
  if (!refreshing) {
    refreshing = (async () => {
      const response = await fetch("/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: session.refresh }),
      });
      const body = await parse(response);
      if (!response.ok) { save(null); throw new ApiError(response.status, body); }
      save(fromTokens(body));
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

// One authenticated request; a 401 gets one refresh and one retry, then logs out.
export async function request(method, path, body, { raw = false } = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = { Authorization: `Bearer ${accessToken()}` };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401 && attempt === 0 && session && session.refresh) {
      try { await refresh(); continue; } catch { break; }
    }
    if (response.status === 401) { save(null); throw new ApiError(401, await parse(response)); }
    if (raw && response.ok) return response;
    const parsed = await parse(response);
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }
  throw new ApiError(401, { error: "session expired; log in again" });
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const put = (path, body) => request("PUT", path, body);
export const del = (path) => request("DELETE", path);

export function wsUrl(path, params = {}) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", accessToken() || "");
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

// The watch stream (GET /api/watch, Server-Sent Events read with fetch so the token stays in a
// header). Reconnects with Last-Event-ID, so a dropped stream resumes where it stopped.
export class Watch {
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = null;
    this.stopped = false;
    this.controller = null;
  }

  start() { this.loop(); return this; }

  stop() { this.stopped = true; if (this.controller) this.controller.abort(); }

  async loop() {
    let delay = 500;
    while (!this.stopped) {
      this.onState("connecting");
      try {
        await this.once();
        delay = 500;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof ApiError && err.status === 401) {
          try { await refresh(); continue; } catch { return; }
        }
      }
      if (this.stopped) return;
      this.onState("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }

  async once() {
    this.controller = new AbortController();
    const headers = { Authorization: `Bearer ${accessToken()}`, Accept: "text/event-stream" };
    if (this.lastId) headers["Last-Event-ID"] = this.lastId;
    const response = await fetch("/api/watch?kinds=agents,teams", { headers, signal: this.controller.signal });
    if (!response.ok) throw new ApiError(response.status, await parse(response));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        this.dispatch(block);
      }
    }
  }

  dispatch(block) {
    let type = "message", id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (id !== null) this.lastId = id;
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    if (type === "SYNCED") this.onState("live");
    this.onEvent(type, payload);
  }
}
