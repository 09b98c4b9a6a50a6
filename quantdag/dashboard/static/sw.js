/* Service worker: makes the dashboard installable and serves its static files offline.
   Pages are never cached (they hold account data and change with every candle). */
var CACHE = "quantdag-static-v1";
var ASSETS = ["/static/app.css", "/static/app.js", "/static/lightweight-charts.standalone.production.js",
              "/static/icon-192.png", "/static/icon-512.png", "/static/manifest.json"];
self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(ASSETS); }));
  self.skipWaiting();
});
self.addEventListener("activate", function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }));
});
self.addEventListener("fetch", function (e) {
  var url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/static/")) return;
  e.respondWith(caches.match(e.request).then(function (hit) { return hit || fetch(e.request); }));
});
