// The fleet: every agent with phase, Ready reason, provider/model, endpoint and age, live from the
// watch stream; filters (text, project, tag, phase); start/stop one or the selected ones.
import { post } from "../api.js";
import { act, age, clear, h, phaseBadge, readyCondition } from "../dom.js";
import { fleet, onFleetChange } from "../state.js";

const PHASES = ["pending", "starting", "running", "stopped", "failed"];
const filters = { text: "", project: "", tag: "", phase: "" }; // kept across navigation

// The desired state when the controller has not made it true yet ("running → stopped").
export function heading(agent) {
  const settled = agent.desired_state === "stopped"
    ? ["stopped", "failed"].includes(agent.status)
    : agent.status !== "stopped";
  return settled ? null : h("span", { class: "muted" }, ` → ${agent.desired_state}`);
}

export function fleetView() {
  const selected = new Set();
  const body = h("tbody");
  const count = h("p", { class: "muted", role: "status" });
  const projectSelect = h("select", { "aria-label": "Project" });
  const tagSelect = h("select", { "aria-label": "Tag" });
  const phaseSelect = h(
    "select",
    { "aria-label": "Phase" },
    h("option", { value: "" }, "any phase"),
    PHASES.map((p) => h("option", { value: p }, p)),
  );
  phaseSelect.value = filters.phase;
  const search = h("input", { type: "search", placeholder: "Filter by name", "aria-label": "Filter by name", value: filters.text });
  const startSelected = h("button", { type: "button", class: "needs-write", disabled: true }, "Start selected");
  const stopSelected = h("button", { type: "button", class: "needs-write", disabled: true }, "Stop selected");
  const selectAll = h("input", { type: "checkbox", "aria-label": "Select all shown" });

  function visible() {
    return [...fleet.agents.values()]
      .filter((a) => !filters.text || a.name.includes(filters.text.toLowerCase()))
      .filter((a) => !filters.project || a.project === filters.project)
      .filter((a) => !filters.tag || (a.tags || []).includes(filters.tag))
      .filter((a) => !filters.phase || a.status === filters.phase)
      .sort((x, y) => x.name.localeCompare(y.name));
  }

  function options(select, values, label, current) {
    const keep = current;
    clear(select, h("option", { value: "" }, label), [...values].sort().map((v) => h("option", { value: v }, v)));
    select.value = values.has(keep) ? keep : "";
  }

  function setState(names, state) {
    return Promise.all(names.map((n) => post(`/api/agents/${encodeURIComponent(n)}/${state}`)));
  }

  function row(agent) {
    const ready = readyCondition(agent);
    const box = h("input", {
      type: "checkbox",
      "aria-label": `Select ${agent.name}`,
      checked: selected.has(agent.name),
      onchange: (e) => { e.target.checked ? selected.add(agent.name) : selected.delete(agent.name); sync(); },
    });
    const wantsRunning = agent.desired_state === "running";
    const toggle = h(
      "button",
      { type: "button", class: "small needs-write", "aria-label": `${wantsRunning ? "Stop" : "Start"} ${agent.name}` },
      wantsRunning ? "Stop" : "Start",
    );
    toggle.addEventListener("click", () => act(toggle, () => setState([agent.name], wantsRunning ? "stop" : "start")));
    const model = [agent.config.llm_provider, agent.config.llm_model].filter(Boolean).join(" / ");
    return h(
      "tr",
      { dataset: { name: agent.name, status: agent.status } },
      h("td", {}, box),
      h("th", { scope: "row" }, h("a", { href: `#/agents/${agent.name}` }, agent.name)),
      h("td", {}, phaseBadge(agent.status), heading(agent)),
      h("td", { title: ready ? ready.message || "" : "" }, ready ? `${ready.status === "True" ? "Ready" : "NotReady"}: ${ready.reason || ""}` : "—"),
      h("td", {}, model || h("span", { class: "muted" }, "template default")),
      h("td", { class: "mono" }, agent.endpoint || "—"),
      h("td", { title: agent.created_at || "" }, age(agent.created_at)),
      h("td", {}, toggle),
    );
  }

  function sync() {
    startSelected.disabled = stopSelected.disabled = selected.size === 0;
    startSelected.textContent = `Start selected${selected.size ? ` (${selected.size})` : ""}`;
    stopSelected.textContent = `Stop selected${selected.size ? ` (${selected.size})` : ""}`;
  }

  function render() {
    const all = [...fleet.agents.values()];
    options(projectSelect, new Set(all.map((a) => a.project).filter(Boolean)), "any project", filters.project);
    options(tagSelect, new Set(all.flatMap((a) => a.tags || [])), "any tag", filters.tag);
    for (const name of [...selected]) if (!fleet.agents.has(name)) selected.delete(name);
    const shown = visible();
    clear(body, shown.length ? shown.map(row) : h("tr", {}, h("td", { colspan: 8, class: "muted" },
      fleet.synced ? (all.length ? "No agent matches the filters." : "No agents yet. Create one with “New agent”.") : "Loading…")));
    count.textContent = fleet.synced ? `${shown.length} of ${all.length} agents` : "";
    selectAll.checked = shown.length > 0 && shown.every((a) => selected.has(a.name));
    sync();
  }

  search.addEventListener("input", () => { filters.text = search.value.trim(); render(); });
  projectSelect.addEventListener("change", () => { filters.project = projectSelect.value; render(); });
  tagSelect.addEventListener("change", () => { filters.tag = tagSelect.value; render(); });
  phaseSelect.addEventListener("change", () => { filters.phase = phaseSelect.value; render(); });
  selectAll.addEventListener("change", () => {
    for (const a of visible()) selectAll.checked ? selected.add(a.name) : selected.delete(a.name);
    render();
  });
  startSelected.addEventListener("click", () => act(startSelected, () => setState([...selected], "start")));
  stopSelected.addEventListener("click", () => act(stopSelected, () => setState([...selected], "stop")));

  const node = h(
    "section",
    { class: "fleet" },
    h("div", { class: "toolbar" },
      h("h1", {}, "Fleet"),
      h("a", { class: "button primary needs-write", href: "#/new", role: "button" }, "New agent"),
    ),
    h("div", { class: "toolbar filters" }, search, projectSelect, tagSelect, phaseSelect, startSelected, stopSelected),
    h("table", { "aria-label": "Agents" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, selectAll),
        ["Name", "Phase", "Ready", "Provider / model", "Endpoint", "Age", "Actions"].map((t) => h("th", { scope: "col" }, t)),
      )),
      body,
    ),
    count,
  );
  render();
  const off = onFleetChange(render);
  return { node, dispose: off };
}
