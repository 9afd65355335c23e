/* The jumbotron: a live top 10 over the leaderboard WebSocket, rank changes animated (rows slide).
   It stays up all night by itself: one keepalive timer per connection, reconnects with backoff, and a
   ticket renewed over HTTP with the page's own credentials (never a page reload). Close codes: README,
   "WebSocket protocol". */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("jumbotron-config").textContent);
  var list = document.getElementById("jt-list");
  var empty = document.getElementById("jt-empty");
  var statusDot = document.getElementById("jt-status");
  var updated = document.getElementById("jt-updated");
  var notice = document.getElementById("jt-notice");
  var rounds = document.getElementById("jt-rounds");
  var rows = {}; // artist_id -> <li>
  var lastRank = {}; // artist_id -> rank shown before this update
  var shown = null; // what the rows show now: "artist:rank:score|..."
  var version = 0;

  var PING_EVERY = 25000; // a frame both ways keeps proxies from dropping an idle connection
  var PONG_WITHIN = 10000; // no answer by then: the link is dead, reconnect
  var PLAN_RETRY = 300000; // the plan may be upgraded: look again every 5 minutes
  var CLOSE_UNAUTHENTICATED = 4401;
  var CLOSE_PLAN_REQUIRED = 4403;
  var CLOSE_SHARE_EXPIRED = 4410;
  var CLOSE_TOO_MANY_CONNECTIONS = 4429;
  var BUSY_RETRY = 60000; // over a connection limit: wait a minute (jittered), not the usual backoff

  var ticket = config.ticket;
  var ticketAt = Date.now();
  var socket = null;
  var pingTimer = null;
  var pongTimer = null;
  var reconnectTimer = null;
  var retries = 0;
  var stopped = false;

  // --- numbers as people read them -------------------------------------------------------------------
  var integer = new Intl.NumberFormat();
  var money = null;
  var minorUnits = 1;
  if (config.currency && /^money_/.test(config.metric)) {
    money = new Intl.NumberFormat(undefined, { style: "currency", currency: config.currency });
    minorUnits = Math.pow(10, money.resolvedOptions().maximumFractionDigits);
  }

  function formatScore(score) {
    if (money) return money.format(score / minorUnits); // boards count money in minor units (cents)
    if (config.metric === "listen_seconds") {
      var minutes = Math.floor(score / 60);
      if (minutes < 1) return integer.format(score) + " s";
      var hours = Math.floor(minutes / 60);
      if (hours < 1) return minutes + " min";
      return integer.format(hours) + " h " + String(minutes % 60).padStart(2, "0") + " min";
    }
    return integer.format(score);
  }

  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setState(state, label) {
    statusDot.dataset.state = state;
    statusDot.title = "Live feed: " + label;
    statusDot.setAttribute("aria-label", "Live feed: " + label);
  }

  function say(text, link) {
    notice.textContent = text || "";
    if (link) {
      var a = el("a", null, link.text);
      a.href = link.href;
      notice.appendChild(document.createTextNode(" "));
      notice.appendChild(a);
    }
    notice.hidden = !text;
  }

  // --- the board ---------------------------------------------------------------------------------------
  function render(entries, changedAt) {
    var top = entries.slice(0, 10);
    var signature = top.map(function (e) { return e.artist_id + ":" + e.rank + ":" + e.score; }).join("|");
    if (signature === shown) return; // a snapshot after a reconnect that changes nothing
    shown = signature;
    var seen = {};
    top.forEach(function (entry, index) {
      var id = String(entry.artist_id);
      seen[id] = true;
      var row = rows[id];
      if (!row) {
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
      row.querySelector(".jt-score").textContent = formatScore(entry.score);
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
    empty.hidden = top.length > 0;
    updated.textContent = "Updated " + clock(changedAt);
    updated.dataset.at = changedAt.toISOString();
    window.setTimeout(function () {
      Object.keys(rows).forEach(function (id) { rows[id].classList.remove("jt-up", "jt-down"); });
    }, 2500);
  }

  var standingsTimer = null;
  function refreshStandings() {
    if (!config.standings_url || !rounds || standingsTimer) return;
    standingsTimer = window.setTimeout(function () {
      standingsTimer = null;
      fetch(config.standings_url + "&ticket=" + encodeURIComponent(ticket), { credentials: "omit" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) renderStandings(data); })
        .catch(function () {});
    }, 150);
  }

  function renderStandings(data) {
    rounds.textContent = "";
    if (!data.rounds.length) { rounds.appendChild(el("p", "jt-empty-standings", "No votes yet.")); return; }
    data.rounds.forEach(function (round) {
      var box = el("div", "jt-round");
      box.dataset.round = round.round;
      box.appendChild(el("h3", null, "Round " + round.round + " \u00B7 " + integer.format(round.total_votes) + " votes"));
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
        bar.appendChild(el("span", "jt-bar-votes", integer.format(entry.votes)));
        box.appendChild(bar);
      });
      rounds.appendChild(box);
    });
  }

  // --- the connection ----------------------------------------------------------------------------------
  function clearTimers() {
    window.clearInterval(pingTimer);
    window.clearTimeout(pongTimer);
    pingTimer = pongTimer = null;
  }

  // A ticket is checked when a connection opens. Renew it (same credentials as the page) when it is old or
  // was refused; resolves to false when the page may no longer show the board (said on the page).
  function renewTicket() {
    return fetch(config.ticket_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.ok && body.ticket) {
            ticket = body.ticket;
            ticketAt = Date.now();
            return true;
          }
          var code = body.error && body.error.code;
          if (r.status === 401) {
            stop("Signed out.", { text: "Sign in again", href: config.sign_in_url });
          } else if (code === "share_expired") {
            stop("This share link has expired: ask for a new one.");
          } else if (code === "plan_required") {
            waitForPlan();
          } else if (r.status === 403 || r.status === 404) {
            stop((body.error && body.error.message) || "This board is no longer available.");
          } else {
            throw new Error("ticket renewal answered " + r.status);
          }
          return false;
        });
      });
  }

  function stop(message, link) {
    stopped = true;
    clearTimers();
    setState("down", "stopped");
    say(message, link);
  }

  function waitForPlan() {
    setState("down", "needs the Enterprise plan");
    say("The live feed needs the Enterprise plan. Trying again in 5 minutes.");
    window.clearTimeout(reconnectTimer);
    reconnectTimer = window.setTimeout(function () { renewThenConnect(); }, PLAN_RETRY);
  }

  // Over a connection limit (too many screens on this link, account or address): the slots free up only when
  // other screens close, so knocking sooner would only add load. Try again in about a minute, quietly.
  function waitForSlot() {
    setState("down", "too many connections");
    say("Too many screens are showing this feed right now. Trying again in a minute.");
    window.clearTimeout(reconnectTimer);
    reconnectTimer = window.setTimeout(function () {
      var stale = Date.now() - ticketAt > Math.max(0, config.ticket_seconds - 60) * 1000;
      if (stale) renewThenConnect(); else connect();
    }, BUSY_RETRY * (0.75 + Math.random() * 0.5));
  }

  function scheduleReconnect(renew) {
    if (stopped) return;
    retries += 1;
    var delay = Math.min(30000, 1000 * Math.pow(2, retries - 1)) * (0.75 + Math.random() * 0.5);
    window.clearTimeout(reconnectTimer);
    reconnectTimer = window.setTimeout(function () {
      var stale = Date.now() - ticketAt > Math.max(0, config.ticket_seconds - 60) * 1000;
      if (renew || stale) renewThenConnect(); else connect();
    }, delay);
  }

  function renewThenConnect() {
    renewTicket().then(
      function (ok) { if (ok) connect(); },
      function () { scheduleReconnect(true); } // the web server is unreachable: try again later
    );
  }

  function connect() {
    if (stopped) return;
    var current = new WebSocket(config.ws_url + "?ticket=" + encodeURIComponent(ticket));
    socket = current;
    setState("connecting", "connecting");
    current.onopen = function () {
      setState("live", "live");
      say("");
      current.send(JSON.stringify({ action: "subscribe", board: config.board, top: 10 }));
      clearTimers();
      pingTimer = window.setInterval(function () {
        if (current.readyState !== WebSocket.OPEN) return;
        current.send(JSON.stringify({ action: "ping" }));
        if (!pongTimer) pongTimer = window.setTimeout(function () { drop(current); }, PONG_WITHIN);
      }, PING_EVERY);
    };
    current.onmessage = function (event) {
      if (current !== socket) return;
      var message = JSON.parse(event.data);
      window.clearTimeout(pongTimer); // any frame shows the link is alive
      pongTimer = null;
      if (message.type === "snapshot" || message.type === "update") {
        if (message.type === "update" && message.version <= version) return;
        retries = 0;
        version = message.version;
        render(message.entries, new Date());
        refreshStandings();
      }
    };
    current.onclose = function (event) {
      if (current !== socket) return; // an abandoned connection
      socket = null;
      clearTimers();
      if (event.code === CLOSE_SHARE_EXPIRED) { stop("This share link has expired: ask for a new one."); return; }
      setState("down", "reconnecting");
      if (event.code === CLOSE_PLAN_REQUIRED) { waitForPlan(); return; }
      if (event.code === CLOSE_TOO_MANY_CONNECTIONS) { waitForSlot(); return; }
      // 4401: the ticket expired or the member lost access: renew (the answer says which), then reconnect.
      // Anything else (1000 after Daphne's 24 h, 1006 network, 1011/1012 server restart): reconnect.
      scheduleReconnect(event.code === CLOSE_UNAUTHENTICATED);
    };
  }

  // A link that died without a close frame: abandon the socket and reconnect now.
  function drop(dead) {
    if (dead !== socket) return;
    socket = null;
    clearTimers();
    setState("down", "reconnecting");
    try { dead.close(); } catch (e) { /* already closing */ }
    scheduleReconnect(false);
  }

  if (config.entries.length) render(config.entries, new Date(config.generated_at));
  else { empty.hidden = false; shown = ""; updated.textContent = ""; }
  refreshStandings();
  connect();
})();
