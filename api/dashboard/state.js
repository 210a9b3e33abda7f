// The fleet as the watch stream reports it: agents and teams by name, exactly as the REST API
// renders them. Views read from here and re-render on change; nothing here is guessed or polled.
import { Watch } from "./api.js";

export const fleet = { agents: new Map(), teams: new Map(), synced: false, state: "offline" };
const listeners = new Set();
let watch = null;
let pending = false;

export function onFleetChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }

function changed() {
  // Coalesce a burst (the initial snapshot, a bulk stop) into one render per frame.
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    for (const fn of [...listeners]) fn();
  });
}

function setState(state) {
  fleet.state = state;
  const el = document.getElementById("live");
  if (el) {
    el.textContent = state === "live" ? "● live" : state === "offline" ? "" : `○ ${state}`;
    el.dataset.state = state;
  }
}

export function startWatch() {
  if (watch) return;
  watch = new Watch((type, event) => {
    if (type === "RESET") { fleet.agents.clear(); fleet.teams.clear(); fleet.synced = false; changed(); return; }
    if (type === "SYNCED") { fleet.synced = true; changed(); return; }
    const map = event.kind === "teams" ? fleet.teams : fleet.agents;
    if (type === "DELETED") map.delete(event.name);
    else if (type === "ADDED" || type === "MODIFIED") map.set(event.name, event.object);
    changed();
  }, setState).start();
}

export function stopWatch() {
  if (watch) watch.stop();
  watch = null;
  fleet.agents.clear();
  fleet.teams.clear();
  fleet.synced = false;
  setState("offline");
}
