/* The SLA board section of the live board: tickets by time to their next breach, what is
 * breached now, and compliance today, from GET /api/v1/board/sla. Refreshed on load, every
 * 30 s, and by board.js when an `sla.escalation` arrives (window.SlaBoard.refresh()): no
 * second socket. Times left count down every second on the server's clock (server_time).
 * Server data is only ever written with textContent (CC.h). */
(function () {
  "use strict";
  var REFRESH_MS = 30000;
  var data = null;       // the last answer
  var skewMs = 0;        // server clock - browser clock
  var followUp = null;   // a second look once the server's cached answer has expired

  function now() { return Date.now() + skewMs; }

  function ticketLabel(t) {
    return (t.type === "complaint" ? "Complaint " : "Ticket ") + (t.number || "#" + t.id);
  }

  // One clock as text: "first response 12:04 left", "resolution paused, 1:30:00 left",
  // "first response breached 3:10 ago".
  function clockText(c) {
    var name = CC.humanise(c.metric).toLowerCase();
    if (c.breached) {
      var since = CC.parseTime(c.breached_since);
      return name + " breached " + (since ? CC.duration((now() - since) / 1000) : "–") + " ago";
    }
    if (c.paused) return name + " paused, " + CC.duration(c.remaining_s) + " left";
    var due = CC.parseTime(c.due_at);
    if (!due) return name;
    var left = (due - now()) / 1000;
    if (left <= 0) return name + " due now";
    return name + " " + CC.duration(left) + " left";
  }

  function clockItems(t) {
    return CC.h("ul", { className: "sla-clocks" }, t.clocks.map(function (c) {
      return CC.h("li", {
        className: "sla-clock" + (c.breached ? " sla-clock-breached" : "") +
                   (c.paused ? " sla-clock-paused" : ""),
        dataset: { metric: c.metric },
        title: c.due_at ? "Due " + CC.dateTime(c.due_at) : "",
      }, clockText(c));
    }));
  }

  function renderBreached() {
    var list = CC.$("sla-breached");
    var breached = data.breached_now;
    CC.clear(list);
    CC.$("sla-breached-count").textContent = String(breached.count);
    breached.tickets.forEach(function (t) {
      list.appendChild(CC.h("li", { className: "sla-breached-item", dataset: { ticketId: t.id } },
        CC.h("strong", null, ticketLabel(t)), " " + t.subject + " — " + (t.queue || "no queue"),
        clockItems(t)));
    });
    CC.show(CC.$("sla-breached-empty"), breached.count === 0);
  }

  function renderNext() {
    var body = document.querySelector("#sla-next tbody");
    CC.clear(body);
    data.tickets.forEach(function (t) {
      var breached = t.clocks.some(function (c) { return c.breached; });
      body.appendChild(CC.h("tr", {
        className: breached ? "sla-row-breached" : "",
        dataset: { ticketId: t.id, breached: breached ? "1" : "0" },
      },
        CC.h("th", { scope: "row" }, ticketLabel(t) + " " + t.subject),
        CC.h("td", null, CC.humanise(t.type)),
        CC.h("td", null, CC.humanise(t.priority)),
        CC.h("td", null, t.queue || "–"),
        CC.h("td", null, t.assignee || "–"),
        CC.h("td", { className: "sla-targets" }, clockItems(t))));
    });
    CC.show(CC.$("sla-next-empty"), data.tickets.length === 0);
  }

  function pct(value) { return value === null || value === undefined ? "–" : value.toFixed(1) + " %"; }

  function renderCompliance() {
    var body = document.querySelector("#sla-compliance tbody");
    CC.clear(body);
    data.compliance_today.forEach(function (q) {
      body.appendChild(CC.h("tr", { dataset: { queueId: q.queue_id === null ? "" : q.queue_id } },
        CC.h("th", { scope: "row" }, q.queue || "No queue"),
        CC.h("td", { className: "c-met num" }, String(q.met)),
        CC.h("td", { className: "c-breached num" }, String(q.breached)),
        CC.h("td", { className: "c-pct num" }, pct(q.met_pct)),
        CC.h("td", { className: "c-metrics" }, q.metrics.map(function (m) {
          return CC.humanise(m.metric) + " " + m.met + "/" + m.total;
        }).join(", "))));
    });
    if (!data.compliance_today.length) {
      body.appendChild(CC.h("tr", null, CC.h("td", { colspan: 5, className: "muted" },
        "No clock met or breached today yet.")));
    }
  }

  function render() {
    if (!data) return;
    renderBreached();
    renderNext();
    renderCompliance();
  }

  // Only the times move between refreshes: rewrite the clocks' text in place.
  function tickIn(selector, tickets) {
    var byId = {};
    tickets.forEach(function (t) { byId[t.id] = t; });
    document.querySelectorAll(selector + " [data-ticket-id]").forEach(function (row) {
      var t = byId[row.dataset.ticketId];
      if (!t) return;
      row.querySelectorAll(".sla-clock").forEach(function (item, index) {
        if (t.clocks[index]) item.textContent = clockText(t.clocks[index]);
      });
    });
  }

  function tick() {
    if (!data) return;
    tickIn("#sla-breached", data.breached_now.tickets);
    tickIn("#sla-next", data.tickets);
  }

  function refresh() {
    return CC.api("GET", "/api/v1/board/sla").then(function (answer) {
      var server = CC.parseTime(answer.server_time);
      if (server) skewMs = server.getTime() - Date.now();
      data = answer;
      render();
      CC.$("sla-status").textContent = "Updated " + CC.timeOfDay(answer.computed_at);
      document.getElementById("sla-board").dataset.slaReady = "1";
    }, function (error) {
      CC.$("sla-status").textContent = "Cannot load the SLA board: " + error.message;
    });
  }

  // An escalation: look now, and again once the server's cached answer (cache_s) has
  // surely been recomputed after the escalation's commit.
  function refreshAfterEscalation() {
    refresh();
    if (followUp) clearTimeout(followUp);
    var wait = ((data && data.cache_s) || 5) * 1000 + 500;
    followUp = setTimeout(function () { followUp = null; refresh(); }, wait);
  }

  window.SlaBoard = { refresh: refreshAfterEscalation };
  refresh();
  setInterval(refresh, REFRESH_MS);
  setInterval(tick, 1000);
})();
