// A chat panel over a chat WebSocket (agent: /api/agents/{id}/chat, team: /api/teams/{id}/chat).
// Replies stream in as delta frames; tool frames (tool_call / tool_result / approval_request) and a
// team's routing frames are shown as what they are; `from_agent` says which agent answered.
import { wsUrl } from "../api.js";
import { field, h } from "../dom.js";

const TOOL_TYPES = new Set(["tool_call", "tool_result", "approval_request"]);

function pretty(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  try { return JSON.stringify(value, null, 2); } catch { return String(value); }
}

export function chatPanel(path, { team = false } = {}) {
  const log = h("ol", { class: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const message = h("textarea", { rows: 2, required: true, placeholder: team ? "Ask the team…" : "Say something…" });
  const session = h("input", { type: "text", value: "main", pattern: "[A-Za-z0-9_.\\-]{1,128}", size: 10 });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const state = h("p", { class: "muted", role: "status" }, "Connecting…");
  const form = h(
    "form",
    { class: "chat-input" },
    field("Message", message, { name: "content" }),
    field("Session", session, { name: "session" }),
    send,
  );
  let ws = null;
  let current = null; // the assistant bubble being streamed into
  let closed = false;

  function add(role, text, extra = {}) {
    const body = h("div", { class: "text" }, text);
    const who = extra.from ? h("span", { class: "from" }, extra.from) : null;
    const item = h("li", { class: `msg ${role}`, dataset: { role, from: extra.from || "" } }, who, body);
    log.append(item);
    item.scrollIntoView({ block: "nearest" });
    return body;
  }

  function onFrame(frame) {
    if (frame.type && TOOL_TYPES.has(frame.type)) {
      const name = frame.name || frame.tool || (frame.call && frame.call.name) || "";
      const detail = frame.type === "tool_call" ? frame.arguments ?? frame.args ?? frame.input
        : frame.type === "tool_result" ? frame.result ?? frame.output ?? frame.content
        : frame.reason ?? frame.content ?? frame.arguments;
      add("tool", h("details", { open: frame.type === "approval_request" },
        h("summary", {}, `${frame.type.replace("_", " ")}${name ? `: ${name}` : ""}`),
        h("pre", {}, pretty(detail))), { from: frame.from_agent });
      current = null;
      return;
    }
    if (frame.type === "welcome") { add("system", frame.content); return; }
    if (frame.type === "routing") {
      const c = frame.classification || {};
      add("routing", `→ ${frame.routing_to} (${c.intent || "?"}, ${Math.round((c.confidence || 0) * 100)}%)`, { from: "router" });
      current = null;
      return;
    }
    if (frame.type === "clarification") {
      add("system", [frame.content, ...(frame.options || []).map((o, i) => `\n${i + 1}. ${o.intent} (${o.agent})`)].join(""));
      return;
    }
    if (frame.error) {
      add("error", frame.content || frame.error, { from: frame.from_agent });
      current = null;
      finish();
      return;
    }
    if (frame.role === "assistant" && frame.delta) {
      if (!current) current = add("assistant", "", { from: frame.from_agent });
      current.textContent += frame.content;
      current.closest("li").classList.add("streaming");
      return;
    }
    if (frame.role === "assistant" && frame.done) {
      if (!current) current = add("assistant", "", { from: frame.from_agent });
      current.textContent = frame.content;
      current.closest("li").classList.remove("streaming");
      current.closest("li").dataset.done = "true";
      current = null;
      finish();
    }
  }

  function finish() { send.disabled = false; }

  function connect() {
    ws = new WebSocket(wsUrl(path));
    ws.addEventListener("open", () => { state.textContent = "Connected."; send.disabled = false; });
    ws.addEventListener("message", (e) => { try { onFrame(JSON.parse(e.data)); } catch { /* not JSON */ } });
    ws.addEventListener("close", (e) => {
      send.disabled = true;
      if (closed) return;
      state.textContent = e.code === 4409 ? "The agent is not running: start it, then reconnect."
        : `Disconnected (${e.code}${e.reason ? `: ${e.reason}` : ""}).`;
      state.append(" ", h("button", { type: "button", class: "small", onclick: connect }, "Reconnect"));
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = message.value.trim();
    if (!content || !ws || ws.readyState !== WebSocket.OPEN) return;
    add("user", content);
    current = null;
    send.disabled = true;
    ws.send(JSON.stringify({ content, session: session.value || "main" }));
    message.value = "";
    message.focus();
  });
  message.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });

  send.disabled = true;
  connect();
  const node = h("section", { class: "chat", "aria-label": "Chat" }, state, log, form);
  return { node, dispose: () => { closed = true; if (ws) ws.close(); } };
}
