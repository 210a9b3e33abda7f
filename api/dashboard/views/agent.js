// One agent: overview (spec, status, conditions, events, health), chat, live logs, metrics chart,
// snapshots and secrets. The header and overview follow the watch stream, so what the page shows is
// the status the controller last wrote.
import { del, get, post, request, wsUrl } from "../api.js";
import { act, age, banner, clear, field, h, phaseBadge, readyCondition } from "../dom.js";
import { fleet, onFleetChange } from "../state.js";
import { chatPanel } from "./chat.js";
import { heading } from "./fleet.js";

const TABS = [
  ["overview", "Overview"],
  ["chat", "Chat"],
  ["logs", "Logs"],
  ["metrics", "Metrics"],
  ["snapshots", "Snapshots"],
  ["secrets", "Secrets"],
];
const enc = encodeURIComponent;

function dl(pairs) {
  return h("dl", { class: "pairs" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function overview(name) {
  const node = h("div", { class: "overview" });
  const events = h("tbody");
  const health = h("p", { class: "muted" }, "Checking health…");
  function render() {
    const a = fleet.agents.get(name);
    if (!a) return;
    const c = a.config;
    clear(node,
      h("div", { class: "grid" },
        h("section", { class: "card" }, h("h2", {}, "Spec"), dl([
          ["Template", a.template], ["Provider", c.llm_provider], ["Model", c.llm_model], ["Base URL", c.base_url],
          ["Memory", c.memory_mb ? `${c.memory_mb} MB` : c.preset], ["CPU", c.cpu_cores], ["Desired state", a.desired_state],
          ["Project", a.project], ["Tags", (a.tags || []).join(", ")], ["Secrets", (c.secrets || []).join(", ")],
          ["Environment", Object.entries(c.env_vars || {}).map(([k, v]) => `${k}=${v}`).join("\n")],
          ["Restart policy", c.restart_policy], ["Generation", a.generation],
        ])),
        h("section", { class: "card" }, h("h2", {}, "Status"), dl([
          ["Phase", phaseBadge(a.status)], ["Message", a.message], ["Endpoint", a.endpoint],
          ["Restarts", a.restart_count], ["Observed generation", a.observed_generation],
          ["Created", `${a.created_at} (${age(a.created_at)} ago)`], ["Resource version", a.resource_version],
        ]), health),
      ),
      h("section", { class: "card" }, h("h2", {}, "Conditions"), h("table", {},
        h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Message", "Since"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, (a.conditions || []).map((x) => h("tr", {}, h("td", {}, x.type), h("td", {}, x.status),
          h("td", {}, x.reason || ""), h("td", {}, x.message || ""), h("td", {}, x.last_transition_time ? age(x.last_transition_time) : "")))),
      )),
      h("section", { class: "card" }, h("h2", {}, "Recent events"), h("table", {},
        h("thead", {}, h("tr", {}, ["When", "Type", "Reason", "Message"].map((t) => h("th", { scope: "col" }, t)))), events)),
    );
  }
  async function loadEvents() {
    try {
      const list = await get(`/api/agents/${enc(name)}/events`);
      clear(events, list.length ? list.slice().reverse().map((e) => h("tr", {}, h("td", { title: e.time }, age(e.time)), h("td", {}, e.type),
        h("td", {}, e.reason), h("td", {}, e.message))) : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "none")));
    } catch (err) { clear(events, h("tr", {}, h("td", { colspan: 4 }, err.message))); }
    try {
      const hl = await get(`/api/agents/${enc(name)}/health`);
      health.textContent = hl.healthy ? "Healthy: /healthz answers." : `Not healthy: ${hl.detail || (hl.running ? "no answer" : "not running")}`;
    } catch (err) { health.textContent = `Health unknown: ${err.message}`; }
  }
  render();
  loadEvents();
  let lastRv = null;
  const off = onFleetChange(() => {
    render();
    const a = fleet.agents.get(name);
    if (a && a.resource_version !== lastRv) { lastRv = a.resource_version; loadEvents(); }
  });
  return { node, dispose: off };
}

function logs(name) {
  const list = h("ol", { class: "logs mono", role: "log", "aria-label": "Log lines" });
  const state = h("p", { class: "muted", role: "status" }, "Connecting…");
  const follow = h("input", { type: "checkbox", checked: true });
  let ws = null, stopped = false;
  function connect() {
    ws = new WebSocket(wsUrl(`/api/agents/${enc(name)}/logs/stream`, { tail: 200 }));
    ws.addEventListener("open", () => { state.textContent = "Streaming."; });
    ws.addEventListener("message", (e) => {
      let line; try { line = JSON.parse(e.data); } catch { return; }
      if (line.error) { state.textContent = line.content; return; }
      list.append(h("li", { class: `stream-${line.stream}` }, h("time", {}, line.timestamp ? line.timestamp.slice(11, 23) : ""), " ", line.message));
      while (list.childElementCount > 2000) list.firstElementChild.remove();
      if (follow.checked) list.lastElementChild.scrollIntoView({ block: "nearest" });
    });
    ws.addEventListener("close", (e) => {
      if (stopped) return;
      state.textContent = `Log stream closed (${e.reason || e.code}).`;
      state.append(" ", h("button", { type: "button", class: "small", onclick: connect }, "Reconnect"));
    });
  }
  connect();
  const node = h("section", { class: "card" }, h("div", { class: "toolbar" }, h("h2", {}, "Logs"), h("label", { class: "check" }, follow, " Follow")), state, list);
  return { node, dispose: () => { stopped = true; if (ws) ws.close(); } };
}

function metrics(name) {
  const samples = [];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 300 100");
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const now = h("p", { role: "status" }, "Sampling every 2 s…");
  function line(values, max, cls) {
    const p = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    p.setAttribute("points", values.map((v, i) => `${(i / 59) * 300},${100 - (v / (max || 1)) * 95}`).join(" "));
    p.setAttribute("class", cls);
    return p;
  }
  async function sample() {
    try {
      const m = await get(`/api/agents/${enc(name)}/metrics`);
      samples.push(m);
      if (samples.length > 60) samples.shift();
      const memMax = m.memory_limit_mb || Math.max(...samples.map((s) => s.memory_mb), 1);
      const cpuMax = Math.max(100, ...samples.map((s) => s.cpu_percent));
      svg.replaceChildren(line(samples.map((s) => s.memory_mb), memMax, "mem"), line(samples.map((s) => s.cpu_percent), cpuMax, "cpu"));
      svg.setAttribute("aria-label", `Memory ${m.memory_mb} MB of ${m.memory_limit_mb || "?"} MB, CPU ${m.cpu_percent}%`);
      now.textContent = `Memory ${m.memory_mb} MB / ${m.memory_limit_mb ?? "?"} MB · CPU ${m.cpu_percent}% · pids ${m.pids ?? "?"} · net ↓${m.network_rx_bytes} B ↑${m.network_tx_bytes} B`;
    } catch (err) { now.textContent = `No metrics: ${err.message}`; }
  }
  sample();
  // Metrics are samples of the runtime, not state: the one thing on this page read on a period.
  const timer = setInterval(sample, 2000);
  const node = h("section", { class: "card" }, h("h2", {}, "Metrics"), h("p", { class: "legend" }, h("span", { class: "mem" }, "■ memory"), " ", h("span", { class: "cpu" }, "■ CPU")), svg, now);
  return { node, dispose: () => clearInterval(timer) };
}

function snapshots(name) {
  const body = h("tbody");
  const create = h("button", { type: "button", class: "needs-write" }, "Create snapshot");
  const exportButton = h("button", { type: "button", class: "needs-write" }, "Download export");
  async function load() {
    try {
      const list = await get(`/api/agents/${enc(name)}/snapshots`);
      clear(body, list.length ? list.map((s) => {
        const restore = h("button", { type: "button", class: "small needs-write" }, "Restore");
        restore.addEventListener("click", () => confirm(`Restore ${name} to snapshot ${s.id}? Its current /data and /workspace are replaced.`)
          && act(restore, async () => { await post(`/api/agents/${enc(name)}/snapshots/${enc(s.id)}/restore`); banner(`Restored ${s.id}.`); }));
        const clone = h("button", { type: "button", class: "small needs-write" }, "Clone");
        clone.addEventListener("click", () => {
          const target = prompt("Name of the new agent");
          if (target) act(clone, async () => { await post(`/api/agents/${enc(name)}/snapshots/${enc(s.id)}/clone`, { name: target }); location.hash = `#/agents/${target}`; });
        });
        return h("tr", {}, h("td", { class: "mono" }, s.id), h("td", {}, age(s.created_at)), h("td", {}, `${(s.size_bytes / 1024).toFixed(1)} KiB`), h("td", {}, restore, " ", clone));
      }) : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No snapshots.")));
    } catch (err) { clear(body, h("tr", {}, h("td", { colspan: 4 }, err.message))); }
  }
  create.addEventListener("click", () => act(create, async () => { await post(`/api/agents/${enc(name)}/snapshots`); await load(); }));
  exportButton.addEventListener("click", () => act(exportButton, async () => {
    const response = await request("GET", `/api/agents/${enc(name)}/export`, undefined, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    const a = h("a", { href: url, download: `${name}.clawpen.tar` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }));
  load();
  return { node: h("section", { class: "card" }, h("div", { class: "toolbar" }, h("h2", {}, "Snapshots"), create, exportButton),
    h("table", {}, h("thead", {}, h("tr", {}, ["Id", "Age", "Size", ""].map((t) => h("th", { scope: "col" }, t)))), body)) };
}

function secrets(name) {
  const body = h("tbody");
  const secretName = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const value = h("input", { type: "password", autocomplete: "new-password" });
  const save = h("button", { type: "submit" }, "Set secret");
  const form = h("form", { class: "row needs-write" }, field("Secret name", secretName, { name: "name" }), field("Value", value, { name: "value" }), save);
  async function load() {
    try {
      const list = await get(`/api/agents/${enc(name)}/secrets`);
      clear(body, list.length ? list.map((s) => {
        const remove = h("button", { type: "button", class: "small needs-write" }, "Delete");
        remove.addEventListener("click", () => confirm(`Delete secret ${s.name}?`) && act(remove, async () => { await del(`/api/agents/${enc(name)}/secrets/${enc(s.name)}`); await load(); }));
        return h("tr", {}, h("td", { class: "mono" }, s.name), h("td", {}, s.scope), h("td", {}, age(s.updated_at)), h("td", {}, s.scope === "agent" ? remove : ""));
      }) : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No secrets.")));
    } catch (err) { clear(body, h("tr", {}, h("td", { colspan: 4 }, err.message))); }
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(save, async () => { await post(`/api/agents/${enc(name)}/secrets`, { name: secretName.value.trim(), value: value.value }); value.value = ""; secretName.value = ""; await load(); });
  });
  load();
  return { node: h("section", { class: "card" }, h("h2", {}, "Secrets"), h("p", { class: "muted" }, "Names only: values are write-only and never shown."),
    h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Scope", "Updated", ""].map((t) => h("th", { scope: "col" }, t)))), body), form) };
}

const PANELS = { overview, chat: (n) => chatPanel(`/api/agents/${enc(n)}/chat`), logs, metrics, snapshots, secrets };

export function agentView(name, tab) {
  const head = h("div", { class: "toolbar" });
  const start = h("button", { type: "button", class: "needs-write" }, "Start");
  const stop = h("button", { type: "button", class: "needs-write" }, "Stop");
  const remove = h("button", { type: "button", class: "danger needs-write" }, "Delete");
  const dialog = h("dialog", { "aria-label": "Delete agent" });
  start.addEventListener("click", () => act(start, () => post(`/api/agents/${enc(name)}/start`)));
  stop.addEventListener("click", () => act(stop, () => post(`/api/agents/${enc(name)}/stop`)));
  remove.addEventListener("click", () => {
    const confirmButton = h("button", { type: "button", class: "danger" }, "Delete agent");
    const cancel = h("button", { type: "button" }, "Cancel");
    clear(dialog, h("p", {}, `Delete agent ${name}? Its container is removed; its volumes (/data, /workspace) are kept.`), h("div", { class: "actions" }, confirmButton, cancel));
    cancel.addEventListener("click", () => dialog.close());
    confirmButton.addEventListener("click", () => act(confirmButton, async () => { await del(`/api/agents/${enc(name)}`); dialog.close(); location.hash = "#/"; }));
    dialog.showModal();
  });
  function renderHead() {
    const a = fleet.agents.get(name);
    const ready = a ? readyCondition(a) : null;
    clear(head,
      h("h1", {}, name, " ", a ? phaseBadge(a.status) : (fleet.synced ? h("span", { class: "phase phase-failed" }, "not found") : null), a ? heading(a) : null),
      ready && ready.status !== "True" ? h("span", { class: "muted" }, `${ready.reason || ""}: ${ready.message || ""}`) : null,
      h("span", { class: "spacer" }),
      start, stop, h("a", { class: "button needs-write", href: `#/agents/${name}/edit` }, "Edit"), remove,
    );
    start.disabled = !a || a.desired_state === "running";
    stop.disabled = !a || a.desired_state === "stopped";
  }
  const tabs = h("nav", { class: "tabs", "aria-label": "Agent" }, TABS.map(([key, label]) =>
    h("a", { href: `#/agents/${name}/${key}`, "aria-current": key === tab ? "page" : false }, label)));
  const panel = (PANELS[tab] || overview)(name);
  renderHead();
  const off = onFleetChange(renderHead);
  const node = h("section", { class: "agent" }, h("p", {}, h("a", { href: "#/" }, "← Fleet")), head, tabs, panel.node, dialog);
  return { node, dispose: () => { off(); if (panel.dispose) panel.dispose(); } };
}
