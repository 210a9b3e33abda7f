// Service worker: the dashboard shell (HTML, scripts, styles, icons) is cached so the installed app
// opens at once and offline shows the shell; API data is never cached — /api, /auth, /health and
// WebSockets always go to the network, so nothing stale or private is ever kept.
const VERSION = "clawpen-shell-v2";
const SHELL = [
  "/", "/manifest.webmanifest", "/ui/style.css", "/ui/app.js", "/ui/api.js", "/ui/dom.js", "/ui/state.js",
  "/ui/views/login.js", "/ui/views/fleet.js", "/ui/views/form.js", "/ui/views/agent.js", "/ui/views/chat.js",
  "/ui/views/teams.js", "/ui/icons/icon.svg", "/ui/icons/icon-192.png", "/ui/icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  return url.origin === self.location.origin && (url.pathname === "/" || url.pathname === "/manifest.webmanifest" || url.pathname.startsWith("/ui/"));
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !isShell(url)) return; // API and everything else: network only
  // Network first (a new version is used at once), the cached shell when the gateway is unreachable.
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(VERSION).then((cache) => cache.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request).then((hit) => hit || Response.error())),
  );
});
