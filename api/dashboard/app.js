// The dashboard's entry: hash routes → views, login gate, watch stream, service worker.
import { loggedIn, logout, onAuthChange } from "./api.js";
import { banner, clear } from "./dom.js";
import { startWatch, stopWatch } from "./state.js";
import { loginView } from "./views/login.js";
import { fleetView } from "./views/fleet.js";
import { agentFormView } from "./views/form.js";
import { agentView } from "./views/agent.js";
import { teamsView, teamView } from "./views/teams.js";

const app = document.getElementById("app");
const nav = document.getElementById("nav");
let teardown = null;

const routes = [
  [/^#?\/?$/, () => fleetView()],
  [/^#\/new$/, () => agentFormView(null)],
  [/^#\/agents\/([a-z0-9-]+)\/edit$/, (m) => agentFormView(m[1])],
  [/^#\/agents\/([a-z0-9-]+)(?:\/(\w+))?$/, (m) => agentView(m[1], m[2] || "overview")],
  [/^#\/teams$/, () => teamsView()],
  [/^#\/teams\/([a-z0-9-]+)$/, (m) => teamView(m[1])],
];

function render() {
  if (teardown) { teardown(); teardown = null; }
  banner("");
  if (!loggedIn()) {
    nav.hidden = true;
    stopWatch();
    clear(app, loginView());
    return;
  }
  nav.hidden = false;
  startWatch();
  for (const [pattern, view] of routes) {
    const match = location.hash.match(pattern);
    if (match) {
      const { node, dispose } = view(match);
      teardown = dispose || null;
      clear(app, node);
      for (const link of nav.querySelectorAll("a")) {
        const here = link.getAttribute("href") === (location.hash.startsWith("#/teams") ? "#/teams" : "#/");
        if (here) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
      }
      return;
    }
  }
  clear(app, "Not found. ", Object.assign(document.createElement("a"), { href: "#/", textContent: "Back to the fleet" }));
}

window.addEventListener("hashchange", render);
onAuthChange(() => render());
document.getElementById("logout").addEventListener("click", () => { logout(); location.hash = "#/"; });
render();

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}
