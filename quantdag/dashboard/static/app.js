/* quantdag dashboard: draws the charts of a page and re-reads the page when the server says a
   candle, fill or alert was stored (server-sent events from /events). No framework, no CDN. */
(function () {
  "use strict";
  var LC = window.LightweightCharts;
  var charts = [];

  function draw(root) {
    charts.forEach(function (c) { c.remove(); });
    charts = [];
    if (!LC) return;
    root.querySelectorAll(".chart").forEach(function (el) {
      var src = document.getElementById(el.dataset.src);
      if (!src) return;
      var spec = JSON.parse(src.textContent);
      var chart = LC.createChart(el, { autoSize: true, timeScale: { timeVisible: true }, layout: { fontSize: 11 } });
      var kind = el.dataset.kind, series;
      if (kind === "candles") {
        series = chart.addSeries(LC.CandlestickSeries, { upColor: "#2e7d32", downColor: "#c62828", borderVisible: false,
                                                          wickUpColor: "#2e7d32", wickDownColor: "#c62828" });
        series.setData(spec.data);
        if (spec.extra && spec.extra.length) LC.createSeriesMarkers(series, spec.extra);
      } else if (kind === "area") {
        series = chart.addSeries(LC.AreaSeries, { lineColor: "#c62828", topColor: "rgba(198,40,40,0.05)",
                                                  bottomColor: "rgba(198,40,40,0.4)", lineWidth: 1 });
        series.setData(spec.data);
      } else {
        series = chart.addSeries(LC.LineSeries, { color: "#1f3a5f", lineWidth: 2 });
        series.setData(spec.data);
      }
      chart.timeScale().fitContent();
      charts.push(chart);
    });
  }

  var main = document.getElementById("main");
  if (main) draw(main);

  var updates = 0;
  async function reread(event) {
    document.body.dataset.lastEvent = event.data;
    if (main.querySelector("input:checked")) return;  // the user is picking runs: keep the page still
    var r = await fetch(location.href, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (!r.ok) return;
    var doc = new DOMParser().parseFromString(await r.text(), "text/html");
    var fresh = doc.getElementById("main");
    if (!fresh) return;
    var flash = main.querySelector(".flash");  // a control's outcome stays until the next navigation
    main.innerHTML = fresh.innerHTML;
    if (flash && !main.querySelector(".flash")) main.insertBefore(flash, main.firstChild);
    draw(main);
    updates += 1;
    main.dataset.updates = String(updates);
  }

  if (main && main.dataset.live === "1" && window.EventSource) {
    var es = new EventSource("/events");
    es.addEventListener("update", reread);
    es.addEventListener("open", function () { document.body.dataset.live = "connected"; });
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/static/sw.js", { scope: "/" }).catch(function () {});
  }
})();
