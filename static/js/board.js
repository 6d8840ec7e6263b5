/* The supervisors' live board: one `board` snapshot on connect, then `board_delta` events
 * (queues' figures, agents' rows) and `sla.escalation` notices. Nothing is polled.
 * Server data is only ever written with textContent (CC.h). */
(function () {
  "use strict";
  var queues = {};   // id -> figures (with name, threshold_s, target)
  var agents = {};   // id -> row
  var skewMs = 0;    // server clock - browser clock

  function pct(value) {
    return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + " %";
  }

  function seconds(value) {
    return value === null || value === undefined ? "–" : CC.duration(value);
  }

  // Which agents can take a queue's work: those with every skill the queue asks for.
  function serves(agent, queue) {
    var needed = queue.skills || {};
    return Object.keys(needed).every(function (skill) {
      return (agent.skills || {})[skill] >= needed[skill];
    });
  }

  function agentCounts(queue) {
    var counts = { available: 0, busy: 0, wrapup: 0, away: 0 };
    Object.keys(agents).forEach(function (id) {
      var agent = agents[id];
      if (agent.status === "offline" || !serves(agent, queue)) return;
      if (agent.status === "available") counts.available += 1;
      else if (agent.status === "busy" || agent.status === "reserved") counts.busy += 1;
      else if (agent.status === "wrapup") counts.wrapup += 1;
      else counts.away += 1;
    });
    return counts;
  }

  /* Erlang C (Erlang A once callers have abandoned: their observed patience) for the queue's
   * last full 15 minutes (arrivals) and today's handle time, with the agents staffed now:
   * asked of the what-if API only when one of those changes. */
  var advice = {};
  function staffingAdvice(q, a) {
    var arrivals = (q.previous_interval || {}).offered || 0;
    var aht = (q.today || {}).aht_s;
    var staffed = a.available + a.busy + a.wrapup;
    if (!arrivals || !aht) return "Needs a full interval of calls";
    var patience = (q.today || {}).patience_s || 0;
    var key = [arrivals, Math.round(aht), staffed, q.threshold_s, q.target, Math.round(patience)].join("|");
    var known = advice[q.id];
    if (!known || known.key !== key) {
      advice[q.id] = { key: key, text: known ? known.text : "…" };
      var query = "arrivals=" + arrivals + "&interval_s=900&aht_s=" + Math.max(1, Math.round(aht)) +
        "&target_sl=" + (q.target || 0.8) + "&threshold_s=" + (q.threshold_s || 20) +
        "&agents_now=" + staffed +
        // Callers who give up: Erlang A with their observed mean patience (under an hour).
        ((q.today || {}).patience_s ? "&patience_s=" + Math.min(3600, Math.max(1, q.today.patience_s)) : "");
      CC.api("GET", "/api/v1/board/staffing/what-if?" + query).then(function (answer) {
        if (advice[q.id].key !== key) return;
        var now = answer.now || {};
        advice[q.id].text = answer.advice + " (now: SL " + pct(now.service_level) +
          ", ASA " + seconds(now.asa_s) + "; " +
          (answer.model === "erlang_a" ? "Erlang A" : "Erlang C") + ")";
        renderQueues();
      }, function () { advice[q.id].text = "–"; });
    }
    return advice[q.id].text;
  }

  // A new caller's wait: (position - 0.5) x AHT / agents staffed (routing's own estimate).
  function estimatedWait(q, a) {
    var staffed = a.available + a.busy + a.wrapup;
    var aht = (q.today || {}).aht_s;
    if (!staffed) return "no agents";
    if (!aht) return "–";
    return CC.duration((q.waiting + 0.5) * aht / staffed);
  }

  function renderQueues() {
    var body = document.querySelector("#queue-board tbody");
    CC.clear(body);
    Object.keys(queues).map(function (id) { return queues[id]; })
      .sort(function (a, b) { return a.name < b.name ? -1 : 1; })
      .forEach(function (q) {
        var today = q.today || {}, iv = q.interval || {}, a = agentCounts(q);
        var missed = today.service_level !== null && today.service_level !== undefined &&
          today.service_level < (q.target || 0.8);
        body.appendChild(CC.h("tr", { dataset: { queueId: q.id }, className: missed ? "missed" : "" },
          CC.h("th", { scope: "row" }, q.name),
          CC.h("td", { className: "q-waiting" }, String(q.waiting)),
          CC.h("td", { className: "q-longest" }, q.waiting ? seconds(q.longest_wait_s) : "–"),
          CC.h("td", { className: "q-offered" }, String(today.offered || 0)),
          CC.h("td", { className: "q-answered" }, String(today.answered || 0)),
          CC.h("td", { className: "q-abandoned" }, String(today.abandoned || 0)),
          CC.h("td", { className: "q-sl", title: q.formula || "" },
               pct(today.service_level) + (missed ? " (below " + pct(q.target) + ")" : "")),
          CC.h("td", { className: "q-asa" }, seconds(today.asa_s)),
          CC.h("td", { className: "q-aht" }, seconds(today.aht_s)),
          CC.h("td", { className: "q-abandon-rate" }, pct(today.abandon_rate)),
          CC.h("td", { className: "q-interval" },
               (iv.offered || 0) + " / " + (iv.answered || 0) + " / " + (iv.abandoned || 0) +
               ", " + pct(iv.service_level)),
          CC.h("td", { className: "q-agents" },
               a.available + " / " + a.busy + " / " + a.wrapup + " / " + a.away),
          CC.h("td", { className: "q-estimate" }, estimatedWait(q, a)),
          CC.h("td", { className: "q-advice" }, staffingAdvice(q, a))));
      });
    var first = Object.keys(queues)[0];
    CC.$("sl-formula").textContent = first ? "Service level = " + queues[first].formula : "";
  }

  function workCell(agent) {
    var cell = CC.h("td", { className: "a-work" });
    (agent.work || []).forEach(function (item) {
      var line = CC.h("div", { className: "work-item" }, item.channel + " #" + item.interaction_id);
      if (item.channel === "voice" || item.channel === "callback") {
        ["listen", "whisper", "barge"].forEach(function (mode) {
          line.appendChild(CC.h("button", {
            type: "button", className: "btn btn-ghost btn-small monitor",
            dataset: { interaction: item.interaction_id, mode: mode },
            "aria-label": mode + " on " + agent.name + "'s call",
          }, mode));
        });
      }
      cell.appendChild(line);
    });
    if (!cell.firstChild) cell.textContent = "–";
    return cell;
  }

  function actionsCell(agent) {
    var select = CC.h("select", { className: "input input-small force-status",
                                  "aria-label": "Status for " + agent.name },
      CC.h("option", { value: "" }, "Set status…"),
      CC.h("option", { value: "available" }, "Available"),
      CC.h("option", { value: "away" }, "Away"),
      CC.h("option", { value: "offline" }, "Offline"));
    select.dataset.agentId = agent.id;
    return CC.h("td", { className: "a-actions" }, select,
      CC.h("button", { type: "button", className: "btn btn-ghost btn-small sign-out",
                       dataset: { agentId: agent.id }, "aria-label": "Sign out " + agent.name },
           "Sign out"));
  }

  function renderAgents() {
    var body = document.querySelector("#agent-board tbody");
    var focused = document.activeElement && body.contains(document.activeElement);
    if (focused) return;  // never redraw under a supervisor's hand; the next event catches up
    CC.clear(body);
    var now = Date.now() + skewMs;
    Object.keys(agents).map(function (id) { return agents[id]; })
      .sort(function (a, b) { return a.name < b.name ? -1 : 1; })
      .forEach(function (agent) {
        var since = CC.parseTime(agent.since);
        var status = agent.status + (agent.reason ? " (" + agent.reason + ")" : "");
        body.appendChild(CC.h("tr", { dataset: { agentId: agent.id, status: agent.status } },
          CC.h("th", { scope: "row" }, agent.name),
          CC.h("td", null, agent.team || "–"),
          CC.h("td", { className: "a-status" }, status),
          CC.h("td", { className: "a-since" }, since ? CC.duration((now - since) / 1000) : "–"),
          workCell(agent),
          CC.h("td", { className: "a-handled" }, String(agent.handled_today || 0)),
          CC.h("td", { className: "a-missed" }, String(agent.missed_today || 0)),
          CC.h("td", { className: "a-occupancy" }, pct(agent.occupancy)),
          actionsCell(agent)));
      });
  }

  function say(text) { CC.$("board-notice").textContent = text; }

  document.addEventListener("change", function (event) {
    var select = event.target.closest && event.target.closest("select.force-status");
    if (!select || !select.value) return;
    var status = select.value, id = select.dataset.agentId;
    var body = { status: status };
    if (status === "away") body.reason = "set by supervisor";
    CC.api("POST", "/api/v1/agents/" + id + "/status", body).then(function () {
      say("Status set to " + status + ".");
      select.blur();
    }, function (error) { say(error.message); select.value = ""; });
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button");
    if (!button) return;
    if (button.classList.contains("sign-out")) {
      CC.api("POST", "/api/v1/agents/" + button.dataset.agentId + "/sign-out").then(function () {
        say("Signed out.");
      }, function (error) { say(error.message); });
    } else if (button.classList.contains("monitor")) {
      CC.api("POST", "/api/v1/interactions/" + button.dataset.interaction + "/monitor",
             { mode: button.dataset.mode }).then(function () {
        say("Joining the call (" + button.dataset.mode + ") on your phone.");
      }, function (error) { say(error.message); });
    }
  });

  function render() { renderQueues(); renderAgents(); }

  // A queue made since the snapshot (the first call's default queue): read its settings once.
  function addQueue(figures) {
    CC.api("GET", "/api/v1/queues").then(function (list) {
      var queue = (list || []).filter(function (q) { return q.id === figures.id; })[0];
      if (!queue) return;
      var t = queue.service_level_threshold_s;
      queues[figures.id] = Object.assign({
        name: queue.name, threshold_s: t, target: queue.service_level_target || 0.8,
        skills: queue.required_skills || {},
        formula: "answered within " + t + " s / (offered - abandoned within " + t + " s)",
      }, queues[figures.id] || {}, figures);
      renderQueues();
    }, function () { /* not allowed or gone: the next snapshot shows it */ });
  }

  var socket = io("/supervisor", { reconnectionDelayMax: 10000 });
  socket.on("connect", function () { CC.$("board-connection").textContent = "Live"; });
  socket.on("disconnect", function () { CC.$("board-connection").textContent = "Reconnecting…"; });
  socket.on("connect_error", function () { CC.$("board-connection").textContent = "Cannot connect"; });

  socket.on("board", function (snapshot) {
    var server = CC.parseTime(snapshot.server_time);
    if (server) skewMs = server.getTime() - Date.now();
    queues = {}; agents = {};
    (snapshot.queues || []).forEach(function (q) { queues[q.id] = q; });
    (snapshot.agents || []).forEach(function (a) { agents[a.id] = a; });
    document.body.dataset.boardReady = "1";
    render();
  });

  socket.on("board_delta", function (delta) {
    // Each row carries a version: one older than what the board shows is dropped (deltas
    // from several server processes can arrive out of order).
    function newer(held, row) { return !held || !held.version || row.version >= held.version; }
    (delta.queues || []).forEach(function (q) {
      if (!queues[q.id]) addQueue(q);
      else if (newer(queues[q.id], q)) Object.assign(queues[q.id], q);
    });
    (delta.agents || []).forEach(function (a) {
      if (newer(agents[a.id], a)) agents[a.id] = Object.assign(agents[a.id] || { skills: {} }, a);
    });
    (delta.agent_counts || []).forEach(function (a) {
      if (agents[a.id] && newer(agents[a.id], a)) Object.assign(agents[a.id], a);
    });
    render();
  });

  socket.on("sla.escalation", function (notice) {
    if (window.SlaBoard) window.SlaBoard.refresh();
    var feed = CC.$("escalations");
    CC.show(CC.$("escalations-empty"), false);
    var what = notice.kind === "escalated" ? "Breached" : "At risk";
    feed.insertBefore(CC.h("li", { className: "escalation escalation-" + notice.kind },
      CC.h("strong", null, what + ": "),
      "ticket " + notice.number + " " + (notice.subject || "") + " — " + notice.metric +
      ", due " + CC.timeOfDay(notice.due_at)), feed.firstChild);
  });

  setInterval(renderAgents, 1000);  // time in state keeps counting between events
})();
