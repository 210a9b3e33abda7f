// The dashboard's entry: hash routes → views, login gate, watch stream, service worker.
import { exchangeSsoCode, get, loggedIn, logout, onAuthChange } from "./api.js";
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
let ssoError = "";
let whoFor = null;

// Who is signed in and what their role allows: mutation controls (class needs-write) are not
// offered to a role without agents:write. The gateway decides regardless (403).
async function showWho() {
  const token = sessionStorage.getItem("clawpen.session");
  if (whoFor === token) return;
  whoFor = token;
  try {
    const me = await get("/api/me");
    document.body.dataset.canWrite = String(me.permissions.includes("agents:write"));
    document.getElementById("who").textContent = `${me.name} (${me.role})`;
  } catch {
    whoFor = null;
  }
}

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
    whoFor = null;
    delete document.body.dataset.canWrite;
    stopWatch();
    clear(app, loginView(ssoError));
    return;
  }
  nav.hidden = false;
  showWho();
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

// Back from single sign-on: `#sso=<one-time code>` or `#sso-error=<why>`. The fragment never
// reached a server; it is wiped from the address bar and history before the code is traded.
async function finishSso() {
  const params = new URLSearchParams(location.hash.slice(1));
  const code = params.get("sso");
  const error = params.get("sso-error");
  if (code === null && error === null) return;
  history.replaceState(null, "", `${location.pathname}#/`);
  if (error !== null) { ssoError = `Single sign-on failed: ${error}`; return; }
  try {
    await exchangeSsoCode(code);
  } catch (err) {
    ssoError = `Single sign-on failed: ${err.message}`;
  }
}

window.addEventListener("hashchange", render);
onAuthChange(() => render());
document.getElementById("logout").addEventListener("click", () => { logout(); location.hash = "#/"; });
finishSso().finally(render);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}
