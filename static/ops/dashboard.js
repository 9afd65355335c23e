// The operator console: polls the staff JSON endpoint and draws tiles and inline-SVG charts.
// No library and no CDN; every value goes in through textContent / attributes, never innerHTML.
// Charts are drawn at the size they are shown (redrawn on resize), so labels stay readable on a phone.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var H = 190, PAD_R = 14, PAD_TOP = 16, OFF_SCALE_BAND = 36, PAD_B = 26;
  var RANGES = { "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600 };
  var GAP_SECONDS = 180; // a longer silence between points breaks the line (no beat, no data)
  var STORE_KEY = "coliseum.ops.range";
  var lastBody = null;

  function el(name, attrs) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function text(svg, x, y, content, cls, anchor) {
    var node = el("text", { x: x, y: y, "class": cls || "ops-tick", "text-anchor": anchor || "start" });
    node.textContent = content;
    svg.appendChild(node);
    return node;
  }

  function trim(n) {
    return String(Number(n.toPrecision(3)));
  }

  // Tile values.
  function fmt(value, unit) {
    if (value === null || value === undefined) return "–";
    if (unit === "%") return (value * 100).toFixed(value < 0.01 ? 2 : 1) + "%";
    if (unit === "s") return value < 10 ? value.toFixed(2) + " s" : Math.round(value) + " s";
    if (unit === "/s") return value < 10 ? value.toFixed(2) : String(Math.round(value));
    return String(value);
  }

  // Axis labels: short, with their unit.
  function fmtAxis(value, unit) {
    if (unit === "%") return trim(value * 100) + "%";
    if (unit === "s") return trim(value) + " s";
    if (unit === "/s") return trim(value) + "/s";
    return trim(value);
  }

  function niceStep(span, count, integer) {
    var raw = span / count;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var n = raw / mag;
    var step = (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
    return integer ? Math.max(1, Math.ceil(step)) : step;
  }

  function clock(t) {
    var d = new Date(t * 1000);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function timeStep(span, width) {
    var narrow = width < 520;
    if (span <= 3600) return narrow ? 1200 : 600;
    if (span <= 6 * 3600) return narrow ? 7200 : 3600;
    return narrow ? 6 * 3600 : 3 * 3600;
  }

  function drawChart(svg, points, key, span, threshold) {
    var unit = svg.getAttribute("data-unit");
    var integer = unit === "tasks" || unit === "workers";
    var W = Math.max(240, Math.round(svg.getBoundingClientRect().width || svg.parentNode.clientWidth || 600));
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("height", String(H));
    svg.setAttribute("data-span-seconds", String(span));
    while (svg.firstChild) svg.removeChild(svg.firstChild);

    var now = Date.now() / 1000, start = now - span;
    var values = points.filter(function (p) {
      return p[key] !== null && p[key] !== undefined && p.t >= start;
    });
    var dataMax = values.reduce(function (m, p) { return Math.max(m, p[key]); }, 0);
    // The alert line is on the scale unless it is far above what the chart shows; then it is drawn at the
    // top edge, marked as off the scale, so the data keeps its shape.
    var thresholdOnScale = threshold !== null && (dataMax === 0 || threshold <= 4 * dataMax);
    var offScale = threshold !== null && !thresholdOnScale;
    // An alert line above the scale gets a band of its own over the plot, clear of the top value label.
    var PAD_T = offScale ? OFF_SCALE_BAND : PAD_TOP;
    var top = Math.max(dataMax, thresholdOnScale ? threshold : 0);
    if (top === 0) top = integer ? 4 : 1;
    var step = niceStep(top * 1.1, 4, integer);
    var yMax = Math.ceil((top * 1.1) / step) * step;
    var ticks = [];
    for (var v = 0; v <= yMax + step / 1000; v += step) ticks.push(v);

    var longest = ticks.reduce(function (m, t) { return Math.max(m, fmtAxis(t, unit).length); }, 0);
    var PAD_L = 14 + longest * 7;
    var x = function (t) { return PAD_L + ((t - start) / span) * (W - PAD_L - PAD_R); };
    var y = function (val) { return H - PAD_B - (val / yMax) * (H - PAD_T - PAD_B); };

    ticks.forEach(function (t) {
      svg.appendChild(el("line", { "class": "ops-grid", x1: PAD_L, y1: y(t), x2: W - PAD_R, y2: y(t) }));
      text(svg, PAD_L - 6, y(t) + 4, fmtAxis(t, unit), "ops-tick ops-ytick", "end");
    });
    var tstep = timeStep(span, W);
    var offset = -new Date().getTimezoneOffset() * 60; // ticks on round local times
    for (var t = Math.ceil((start + offset) / tstep) * tstep - offset; t <= now; t += tstep) {
      svg.appendChild(el("line", { "class": "ops-axis", x1: x(t), y1: H - PAD_B, x2: x(t), y2: H - PAD_B + 4 }));
      if (x(t) > PAD_L + 16 && x(t) < W - PAD_R - 48) { // clear of "now" at the right end
        text(svg, x(t), H - 8, clock(t), "ops-tick ops-xtick", "middle");
      }
    }
    svg.appendChild(el("line", { "class": "ops-axis", x1: PAD_L, y1: H - PAD_B, x2: W - PAD_R, y2: H - PAD_B }));
    svg.appendChild(el("line", { "class": "ops-axis", x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: H - PAD_B }));
    text(svg, W - PAD_R, H - 8, "now", "ops-tick ops-xtick", "end");

    if (!values.length) {
      text(svg, (PAD_L + W - PAD_R) / 2, (PAD_T + H - PAD_B) / 2, "no data in this range yet", "ops-empty", "middle");
    } else {
      var d = "", runStart = null, runs = [];
      values.forEach(function (p, i) {
        var gap = i === 0 || p.t - values[i - 1].t > GAP_SECONDS;
        if (gap) { if (runStart !== null) runs.push([runStart, values[i - 1]]); runStart = p; }
        d += (gap ? "M" : "L") + x(p.t).toFixed(1) + " " + y(p[key]).toFixed(1) + " ";
      });
      runs.push([runStart, values[values.length - 1]]);
      var area = runs.map(function (r) {
        var first = r[0], last = r[1];
        var part = values.filter(function (p) { return p.t >= first.t && p.t <= last.t; });
        return part.map(function (p, i) {
          return (i ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p[key]).toFixed(1);
        }).join(" ") + " L" + x(last.t).toFixed(1) + " " + y(0) + " L" + x(first.t).toFixed(1) + " " + y(0) + " Z";
      }).join(" ");
      svg.appendChild(el("path", { "class": "ops-area", d: area }));
      svg.appendChild(el("path", { "class": "ops-line", d: d.trim() }));
      var lastPoint = values[values.length - 1];
      svg.appendChild(el("circle", { "class": "ops-dot", cx: x(lastPoint.t), cy: y(lastPoint[key]), r: 3 }));
    }

    if (thresholdOnScale) {
      var ty = y(threshold);
      svg.appendChild(el("line", { "class": "ops-threshold", x1: PAD_L, y1: ty, x2: W - PAD_R, y2: ty }));
      text(svg, W - PAD_R - 4, ty - 4, "alert at " + fmtAxis(threshold, unit), "ops-threshold-label", "end");
    } else if (offScale) {
      svg.appendChild(el("line", { "class": "ops-threshold", x1: PAD_L, y1: 6, x2: W - PAD_R, y2: 6 }));
      text(svg, W - PAD_R - 4, 22, "alert at " + fmtAxis(threshold, unit) + " \u2191 above this scale",
        "ops-threshold-label", "end");
    }
    svg.setAttribute("data-rendered", String(values.length));
  }

  function setField(root, name, content) {
    var node = root.querySelector('[data-field="' + name + '"]');
    if (node) node.textContent = content;
    return node;
  }

  function currentRange(root) {
    var range = root.getAttribute("data-range");
    return RANGES[range] ? range : "1h";
  }

  function drawCharts(root) {
    if (!lastBody) return;
    var h = lastBody.health || {}, thresholds = h.thresholds || {}, hist = lastBody.history || [];
    var span = RANGES[currentRange(root)];
    root.querySelectorAll("svg[data-chart]").forEach(function (svg) {
      var name = svg.getAttribute("data-threshold");
      var threshold = name && thresholds[name] !== undefined ? thresholds[name] : null;
      drawChart(svg, hist, svg.getAttribute("data-chart"), span, threshold);
    });
  }

  function render(root, body) {
    lastBody = body;
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
    var celery = h.celery || {};
    var workers = setField(root, "workers", celery.live_workers === null || celery.live_workers === undefined
      ? "unknown" : String(celery.live_workers));
    workers.title = (celery.workers || []).join("\n");
    workers.classList.toggle("ops-bad", celery.live_workers === 0);
    var queues = celery.queues || {};
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
    drawCharts(root);
  }

  function chooseRange(root, range) {
    if (!RANGES[range]) return;
    root.setAttribute("data-range", range);
    root.querySelectorAll(".ops-range button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-range") === range));
    });
    try { window.localStorage.setItem(STORE_KEY, range); } catch (e) { /* private mode: not remembered */ }
    drawCharts(root);
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
    if (!root) return;
    var saved = null;
    try { saved = window.localStorage.getItem(STORE_KEY); } catch (e) { saved = null; }
    chooseRange(root, saved || currentRange(root));
    root.querySelectorAll(".ops-range button").forEach(function (b) {
      b.addEventListener("click", function () { chooseRange(root, b.getAttribute("data-range")); });
    });
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(function () { drawCharts(root); }, 150);
    });
    poll(root);
  });
})();
