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
               a.available + " / " + a.busy + " / " + a.wrapup + " / " + a.away)));
      });
    var first = Object.keys(queues)[0];
    CC.$("sl-formula").textContent = first ? "Service level = " + queues[first].formula : "";
  }

  function renderAgents() {
    var body = document.querySelector("#agent-board tbody");
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
          CC.h("td", { className: "a-handled" }, String(agent.handled_today || 0))));
      });
  }

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
    (delta.queues || []).forEach(function (q) {
      if (queues[q.id]) Object.assign(queues[q.id], q);
      else addQueue(q);
    });
    (delta.agents || []).forEach(function (a) {
      agents[a.id] = Object.assign(agents[a.id] || { skills: {} }, a);
    });
    (delta.agent_counts || []).forEach(function (a) {
      if (agents[a.id]) Object.assign(agents[a.id], a);
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
