// Teams: members and their live state, routing mode, a classify box (decision and scores), and
// team chat showing which agent answered.
import { post } from "../api.js";
import { act, clear, field, h, phaseBadge } from "../dom.js";
import { fleet, onFleetChange } from "../state.js";
import { chatPanel } from "./chat.js";

const enc = encodeURIComponent;

function members(team) {
  return h("ul", { class: "members" }, team.intents.map((i) => {
    const agent = fleet.agents.get(i.agent);
    return h("li", {}, h("strong", {}, i.intent), " → ", h("a", { href: `#/agents/${i.agent}` }, i.agent), " ",
      agent ? phaseBadge(agent.status) : h("span", { class: "phase phase-failed" }, "missing"));
  }));
}

export function teamsView() {
  const node = h("section", {}, h("h1", {}, "Teams"));
  const list = h("div", { class: "cards" });
  node.append(list);
  function render() {
    const teams = [...fleet.teams.values()].sort((a, b) => a.id.localeCompare(b.id));
    clear(list, teams.length ? teams.map((t) => h("article", { class: "card" },
      h("h2", {}, h("a", { href: `#/teams/${t.id}` }, t.name || t.id)),
      h("p", {}, t.description || ""),
      h("p", { class: "muted" }, `Routing: ${t.mode} · ${t.status.phase}${t.status.message ? ` — ${t.status.message}` : ""}`),
      members(t),
    )) : h("p", { class: "muted" }, fleet.synced ? "No teams. Put team files in teams/ or apply a Team manifest." : "Loading…"));
  }
  render();
  return { node, dispose: onFleetChange(render) };
}

export function teamView(name) {
  const info = h("div");
  const message = h("input", { type: "text", required: true });
  const button = h("button", { type: "submit" }, "Classify");
  const result = h("div", { class: "classification", role: "status", "aria-live": "polite" });
  const classify = h("form", { class: "row", "aria-label": "Classify" }, field("Classify a message", message, { name: "message" }), button);
  classify.addEventListener("submit", (e) => {
    e.preventDefault();
    act(button, async () => {
      const c = await post(`/api/teams/${enc(name)}/classify`, { message: message.value });
      clear(result, h("dl", { class: "pairs" },
        h("dt", {}, "Intent"), h("dd", {}, c.intent),
        h("dt", {}, "Agent"), h("dd", {}, c.agent || "—"),
        h("dt", {}, "Confidence"), h("dd", {}, h("meter", { min: 0, max: 1, value: c.confidence }), ` ${Math.round(c.confidence * 100)}%`),
        h("dt", {}, "Keywords"), h("dd", {}, (c.matched_keywords || []).join(", ") || "—"),
        h("dt", {}, "Method"), h("dd", {}, c.method),
        h("dt", {}, "Needs clarification"), h("dd", {}, c.needs_clarification ? "yes" : "no"),
        h("dt", {}, "Reasoning"), h("dd", {}, c.reasoning),
      ));
    });
  });
  function render() {
    const t = fleet.teams.get(name);
    if (!t) { clear(info, h("h1", {}, name), h("p", { class: "muted" }, fleet.synced ? "No such team." : "Loading…")); return; }
    clear(info, h("h1", {}, t.name || t.id), h("p", {}, t.description || ""),
      h("p", { class: "muted" }, `Routing: ${t.mode} (threshold ${t.confidence_threshold}) · ${t.status.phase}${t.status.message ? ` — ${t.status.message}` : ""}`),
      members(t));
  }
  render();
  const off = onFleetChange(render);
  const chat = chatPanel(`/api/teams/${enc(name)}/chat`, { team: true });
  const node = h("section", { class: "team" }, h("p", {}, h("a", { href: "#/teams" }, "← Teams")), info,
    h("section", { class: "card" }, h("h2", {}, "Classify"), classify, result),
    h("section", { class: "card" }, h("h2", {}, "Team chat"), chat.node));
  return { node, dispose: () => { off(); chat.dispose(); } };
}
