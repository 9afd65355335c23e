// The operator console: polls the staff JSON endpoint and draws tiles and inline-SVG charts.
// No library and no CDN; every value goes in through textContent / attributes, never innerHTML.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var W = 600, H = 160, PAD_L = 44, PAD_R = 8, PAD_T = 8, PAD_B = 20;

  function el(name, attrs) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function fmt(value, unit) {
    if (value === null || value === undefined) return "–";
    if (unit === "%") return (value * 100).toFixed(value < 0.01 ? 2 : 1) + "%";
    if (unit === "s") return value < 10 ? value.toFixed(2) + " s" : Math.round(value) + " s";
    if (unit === "/s") return value < 10 ? value.toFixed(2) : String(Math.round(value));
    return String(value);
  }

  function drawChart(svg, points, key) {
    var unit = svg.getAttribute("data-unit");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var now = Date.now() / 1000, start = now - 24 * 3600;
    var values = points.filter(function (p) { return p[key] !== null && p[key] !== undefined; });
    var max = values.reduce(function (m, p) { return Math.max(m, p[key]); }, 0) || 1;
    var x = function (t) { return PAD_L + ((t - start) / (now - start)) * (W - PAD_L - PAD_R); };
    var y = function (v) { return H - PAD_B - (v / max) * (H - PAD_T - PAD_B); };
    svg.appendChild(el("line", { "class": "ops-axis", x1: PAD_L, y1: H - PAD_B, x2: W - PAD_R, y2: H - PAD_B }));
    svg.appendChild(el("line", { "class": "ops-axis", x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: H - PAD_B }));
    var top = el("text", { x: 2, y: PAD_T + 8 }); top.textContent = fmt(max, unit); svg.appendChild(top);
    var zero = el("text", { x: 2, y: H - PAD_B }); zero.textContent = fmt(0, unit); svg.appendChild(zero);
    var left = el("text", { x: PAD_L, y: H - 4 }); left.textContent = "-24 h"; svg.appendChild(left);
    var right = el("text", { x: W - PAD_R - 24, y: H - 4 }); right.textContent = "now"; svg.appendChild(right);
    if (!values.length) {
      var empty = el("text", { x: W / 2 - 40, y: H / 2 }); empty.textContent = "no data yet"; svg.appendChild(empty);
    } else {
      var d = values.map(function (p, i) {
        return (i ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p[key]).toFixed(1);
      }).join(" ");
      var first = values[0], last = values[values.length - 1];
      svg.appendChild(el("path", {
        "class": "ops-area",
        d: d + " L" + x(last.t).toFixed(1) + " " + y(0) + " L" + x(first.t).toFixed(1) + " " + y(0) + " Z"
      }));
      svg.appendChild(el("path", { "class": "ops-line", d: d }));
    }
    svg.setAttribute("data-rendered", String(values.length));
  }

  function setField(root, name, text) {
    var node = root.querySelector('[data-field="' + name + '"]');
    if (node) node.textContent = text;
    return node;
  }

  function render(root, body) {
    var h = body.health || {}, api = h.api || {}, ingest = h.ingest || {}, hist = body.history || [];
    var last = hist.length ? hist[hist.length - 1] : {};
    var status = setField(root, "status", h.status || "unknown");
    status.className = "ops-status " + (h.status || "");
    setField(root, "updated", "updated " + new Date().toLocaleTimeString());
    var eps = ingest.events_per_second_1m !== undefined ? ingest.events_per_second_1m : last.events_per_s;
    setField(root, "events_per_s", fmt(eps, "/s"));
    setField(root, "lag", fmt(ingest.lag_seconds !== undefined ? ingest.lag_seconds : last.lag_s, "s"));
    setField(root, "error_rate", api.requests ? fmt(api.error_rate, "%") + " of " + api.requests : "no requests");
    var p95 = null;
    Object.keys(api.groups || {}).forEach(function (g) {
      var v = api.groups[g].p95_seconds;
      if (v !== null && v !== undefined && (p95 === null || v > p95)) p95 = v;
    });
    setField(root, "p95", fmt(p95, "s"));
    var queues = (h.celery || {}).queues || {};
    setField(root, "queues", Object.keys(queues).map(function (q) { return q + " " + (queues[q] === null ? "?" : queues[q]); }).join(" · "));
    setField(root, "database", (h.database || {}).ok ? "up" : "DOWN");
    setField(root, "redis", (h.redis || {}).ok ? "up" : "DOWN");
    var rejected = ingest.rejected_5m, limited = ingest.rate_limited_5m;
    setField(root, "rejected", (rejected === undefined ? "–" : rejected) + " / " + (limited === undefined ? "–" : limited));
    var list = root.querySelector('[data-field="alerts"]');
    while (list.firstChild) list.removeChild(list.firstChild);
    (h.alerts || []).forEach(function (a) {
      var li = document.createElement("li");
      li.textContent = "Firing since " + a.since + ": " + a.message;
      list.appendChild(li);
    });
    root.querySelectorAll("svg[data-chart]").forEach(function (svg) {
      drawChart(svg, hist, svg.getAttribute("data-chart"));
    });
  }

  function poll(root) {
    fetch(root.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (body) { render(root, body); })
      .catch(function (err) { setField(root, "updated", "refresh failed (" + err.message + ")"); })
      .then(function () {
        var seconds = parseInt(root.getAttribute("data-refresh-seconds"), 10) || 15;
        window.setTimeout(function () { poll(root); }, seconds * 1000);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("ops-dashboard");
    if (root) poll(root);
  });
})();
