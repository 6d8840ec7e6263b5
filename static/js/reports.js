/* The reports page: asks /api/v1/reports/<kind>, shows the figures as a table and a small
 * inline-SVG chart (offered and answered bars, the service level as a line), and links the
 * same report as a CSV download. Server data is only written as text (CC.h, textContent).
 */
(function () {
  "use strict";

  var $ = CC.$, h = CC.h, clear = CC.clear, show = CC.show;
  var SVG = "http://www.w3.org/2000/svg";
  var form = $("report-form");
  var PERCENT = { service_level: true, abandon_rate: true };
  var SECONDS = { asa_s: true, aht_s: true };

  function s(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function today() {
    var d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" +
      String(d.getDate()).padStart(2, "0");
  }

  function query(format) {
    var params = new URLSearchParams();
    params.set("from", $("report-from").value);
    params.set("to", $("report-to").value);
    params.set("tz", $("report-tz").value.trim() || "UTC");
    if ($("report-queue").value) params.set("queue_id", $("report-queue").value);
    if (format) params.set("format", format);
    return "/api/v1/reports/" + encodeURIComponent($("report-kind").value) + "?" + params.toString();
  }

  function cell(column, value) {
    if (value === null || value === undefined || value === "") return "–";
    if (PERCENT[column]) return (value * 100).toFixed(1) + " %";
    if (SECONDS[column]) return Number(value).toFixed(1) + " s";
    return String(value);
  }

  function renderTable(report) {
    var table = $("report-table");
    clear(table);
    var columns = report.columns.filter(function (c) { return c !== "period_start"; });
    table.appendChild(h("thead", null, h("tr", null, columns.map(function (c) {
      return h("th", { scope: "col" }, CC.humanise(c));
    }))));
    var body = h("tbody");
    report.rows.concat(report.kind === "complaints" ? [] : report.totals).forEach(function (row) {
      var total = row.period === "total" || (report.kind === "agents" && row.agent_id === null) ||
        row.policy === "All policies";
      body.appendChild(h("tr", { className: total ? "report-total" : null },
        columns.map(function (c) { return h("td", { dataset: { column: c } }, cell(c, row[c])); })));
    });
    table.appendChild(body);
    if (!report.rows.length) {
      body.appendChild(h("tr", null, h("td", { colspan: columns.length, className: "muted" },
        "Nothing in this range.")));
    }
  }

  /* Bars of offered (light) and answered (dark) per period, and the service level as a line
   * on a 0-100 % scale; agents: answered per agent. */
  function renderChart(report) {
    var box = $("report-chart");
    clear(box);
    var series;
    if (report.kind === "interval" || report.kind === "daily") {
      series = report.rows.filter(function (r) { return r.queue_id === null; });
      if (report.kind === "interval") {
        var active = series.filter(function (r) { return r.offered > 0 || r.transfers > 0; });
        if (active.length) {
          var first = series.indexOf(active[0]), last = series.indexOf(active[active.length - 1]);
          series = series.slice(first, last + 1);
        }
      }
    } else if (report.kind === "agents") {
      series = report.rows.map(function (r) {
        return { period: r.agent, offered: r.offers, answered: r.answered, service_level: null };
      });
    } else {
      show($("report-chart-card"), false);
      return;
    }
    show($("report-chart-card"), true);
    var W = 900, H = 240, left = 40, right = 40, top = 10, bottom = 40;
    var plotW = W - left - right, plotH = H - top - bottom;
    var max = Math.max(1, Math.max.apply(null, series.map(function (r) { return Math.max(r.offered || 0, r.answered || 0); })));
    var svg = s("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img",
                         "aria-label": "Offered and answered per period, with the service level", id: "report-svg" });
    svg.appendChild(s("line", { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, stroke: "#888" }));
    svg.appendChild(s("text", { x: left - 6, y: top + 10, "text-anchor": "end", "font-size": 11 }, max));
    svg.appendChild(s("text", { x: left - 6, y: top + plotH, "text-anchor": "end", "font-size": 11 }, 0));
    svg.appendChild(s("text", { x: left + plotW + 6, y: top + 10, "font-size": 11 }, "100 %"));
    var step = plotW / Math.max(1, series.length);
    var barW = Math.max(1, step * 0.4);
    var points = [];
    var labelEvery = Math.max(1, Math.ceil(series.length / 12));
    series.forEach(function (row, i) {
      var x = left + i * step;
      var offeredH = plotH * (row.offered || 0) / max;
      var answeredH = plotH * (row.answered || 0) / max;
      var offered = s("rect", { x: x + step * 0.1, y: top + plotH - offeredH, width: barW, height: offeredH,
                                fill: "#b9c7dd", "class": "bar-offered" });
      offered.appendChild(s("title", {}, row.period + ": offered " + (row.offered || 0)));
      var answered = s("rect", { x: x + step * 0.1 + barW, y: top + plotH - answeredH, width: barW,
                                 height: answeredH, fill: "#2f5fa7", "class": "bar-answered" });
      answered.appendChild(s("title", {}, row.period + ": answered " + (row.answered || 0)));
      svg.appendChild(offered);
      svg.appendChild(answered);
      if (row.service_level !== null && row.service_level !== undefined) {
        var px = x + step / 2, py = top + plotH * (1 - row.service_level);
        points.push(px.toFixed(1) + "," + py.toFixed(1));
        var dot = s("circle", { cx: px, cy: py, r: 3, fill: "#d9822b", "class": "sl-point" });
        dot.appendChild(s("title", {}, row.period + ": service level " + cell("service_level", row.service_level)));
        svg.appendChild(dot);
      }
      if (i % labelEvery === 0) {
        var label = report.kind === "interval" ? String(row.period).slice(11) : String(row.period);
        svg.appendChild(s("text", { x: x + step / 2, y: H - bottom + 16, "text-anchor": "middle", "font-size": 11 }, label));
      }
    });
    if (points.length) {
      svg.appendChild(s("polyline", { points: points.join(" "), fill: "none", stroke: "#d9822b",
                                      "stroke-width": 2, "class": "sl-line" }));
    }
    box.appendChild(svg);
    $("report-chart-legend").textContent = report.kind === "agents"
      ? "Light: offers made to the agent; dark: answered."
      : "Light: offered; dark: answered; orange line: service level (right axis, 0-100 %).";
  }

  function load(event) {
    if (event) event.preventDefault();
    show($("report-error"), false);
    $("report-status").textContent = "Loading…";
    $("report-show").disabled = true;
    CC.api("GET", query()).then(function (report) {
      renderTable(report);
      renderChart(report);
      var link = $("report-csv");
      link.href = query("csv");
      show(link, true);
      $("report-status").textContent = report.rows.length + " rows, " + report.from + " to " +
        report.to + " (" + report.tz + ").";
      document.body.dataset.reportReady = report.kind;
    }, function (error) {
      var fields = Object.keys(error.fields || {}).map(function (k) {
        return k + ": " + [].concat(error.fields[k]).join(" ");
      });
      $("report-error").textContent = error.message + (fields.length ? " " + fields.join("; ") : "");
      show($("report-error"), true);
      show($("report-csv"), false);
      $("report-status").textContent = "";
    }).then(function () { $("report-show").disabled = false; });
  }

  if (!$("report-from").value) $("report-from").value = today();
  if (!$("report-to").value) $("report-to").value = today();
  if (!$("report-tz").value) {
    try { $("report-tz").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; }
    catch (e) { $("report-tz").value = "UTC"; }
  }
  form.addEventListener("submit", load);
  document.body.dataset.reportsReady = "true";
})();
