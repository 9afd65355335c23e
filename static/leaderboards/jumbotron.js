/* The jumbotron: a live top 10 over the leaderboard WebSocket, rank changes animated (rows slide). */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("jumbotron-config").textContent);
  var list = document.getElementById("jt-list");
  var empty = document.getElementById("jt-empty");
  var statusDot = document.getElementById("jt-status");
  var updated = document.getElementById("jt-updated");
  var rounds = document.getElementById("jt-rounds");
  var rows = {}; // artist_id -> <li>
  var lastRank = {}; // artist_id -> rank shown before this update
  var version = 0;
  var retries = 0;
  var numberFormat = new Intl.NumberFormat();

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(entries) {
    var seen = {};
    entries.slice(0, 10).forEach(function (entry, index) {
      var id = String(entry.artist_id);
      seen[id] = true;
      var row = rows[id];
      var isNew = !row;
      if (isNew) {
        row = el("li", "jt-row jt-new");
        row.dataset.artistId = id;
        row.appendChild(el("span", "jt-rank"));
        row.appendChild(el("span", "jt-move"));
        row.appendChild(el("span", "jt-name"));
        row.appendChild(el("span", "jt-score"));
        row.style.transform = "translateY(calc(var(--row) * 10))";
        list.appendChild(row);
        rows[id] = row;
      }
      var before = lastRank[id];
      row.querySelector(".jt-rank").textContent = entry.rank;
      row.querySelector(".jt-name").textContent = entry.artist_name;
      row.querySelector(".jt-score").textContent = numberFormat.format(entry.score);
      var move = row.querySelector(".jt-move");
      var previous = before !== undefined ? before : entry.previous_rank;
      move.className = "jt-move";
      move.textContent = "";
      if (previous && previous > entry.rank) { move.textContent = "\u25B2"; move.classList.add("up"); }
      if (previous && previous < entry.rank) { move.textContent = "\u25BC"; move.classList.add("down"); }
      row.classList.remove("jt-up", "jt-down");
      if (before !== undefined && before > entry.rank) row.classList.add("jt-up");
      if (before !== undefined && before < entry.rank) row.classList.add("jt-down");
      row.dataset.rank = entry.rank;
      // Next frame: slide to the new place (the CSS transition animates the move).
      window.requestAnimationFrame(function () {
        row.classList.remove("jt-new");
        row.style.transform = "translateY(calc(var(--row) * " + index + "))";
      });
      lastRank[id] = entry.rank;
    });
    Object.keys(rows).forEach(function (id) {
      if (!seen[id]) {
        rows[id].remove();
        delete rows[id];
        delete lastRank[id];
      }
    });
    empty.hidden = entries.length > 0;
    updated.textContent = "Updated " + new Date().toLocaleTimeString();
    window.setTimeout(function () {
      Object.keys(rows).forEach(function (id) { rows[id].classList.remove("jt-up", "jt-down"); });
    }, 2500);
  }

  var standingsTimer = null;
  function refreshStandings() {
    if (!config.standings_url || !rounds) return;
    if (standingsTimer) return;
    standingsTimer = window.setTimeout(function () {
      standingsTimer = null;
      fetch(config.standings_url, { credentials: "omit" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) renderStandings(data); })
        .catch(function () {});
    }, 150);
  }

  function renderStandings(data) {
    rounds.textContent = "";
    if (!data.rounds.length) { rounds.appendChild(el("p", "jt-empty", "No votes yet.")); return; }
    data.rounds.forEach(function (round) {
      var box = el("div", "jt-round");
      box.dataset.round = round.round;
      box.appendChild(el("h3", null, "Round " + round.round + " \u00B7 " + numberFormat.format(round.total_votes) + " votes"));
      var top = round.entries.length ? round.entries[0].votes : 1;
      round.entries.slice(0, 6).forEach(function (entry) {
        var bar = el("div", "jt-bar");
        bar.appendChild(el("span", "jt-bar-label", entry.rank + ". " + entry.artist_name));
        var track = el("span", "jt-bar-track");
        var fill = el("span", "jt-bar-fill");
        fill.style.display = "block";
        fill.style.width = Math.max(2, Math.round((100 * entry.votes) / Math.max(top, 1))) + "%";
        track.appendChild(fill);
        bar.appendChild(track);
        bar.appendChild(el("span", "jt-bar-votes", numberFormat.format(entry.votes)));
        box.appendChild(bar);
      });
      rounds.appendChild(box);
    });
  }

  function connect() {
    var socket = new WebSocket(config.ws_url + "?ticket=" + encodeURIComponent(config.ticket));
    statusDot.dataset.state = "connecting";
    socket.onopen = function () {
      retries = 0;
      statusDot.dataset.state = "live";
      socket.send(JSON.stringify({ action: "subscribe", board: config.board, top: 10 }));
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "snapshot" || message.type === "update") {
        if (message.type === "update" && message.version <= version) return;
        version = message.version;
        render(message.entries);
        refreshStandings();
      }
    };
    socket.onclose = function (event) {
      statusDot.dataset.state = "down";
      if (event.code === 4401) { window.location.reload(); return; } // ticket expired: fetch a new page
      if (event.code === 4403) return; // plan no longer allows the live feed
      retries += 1;
      window.setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, retries)));
    };
    window.setInterval(function () {
      if (socket.readyState === 1) socket.send(JSON.stringify({ action: "ping" }));
    }, 25000);
  }

  render(config.entries);
  refreshStandings();
  connect();
})();
