/* Helpers shared by the console's scripts: DOM building, formatting, and the JSON API.
 *
 * Server data is only ever written with textContent (never innerHTML); API writes on the
 * login session carry the page's CSRF token (meta csrf-token) in X-CSRFToken.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------- small DOM helpers

  function $(id) {
    return document.getElementById(id);
  }

  /* h("div", {className: "x", dataset: {a: 1}}, "text", child, [more]) -> element.
   * Strings become text nodes: nothing given here is ever parsed as HTML. */
  function h(tag, props) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (key) {
        var value = props[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "dataset") {
          Object.keys(value).forEach(function (k) { node.dataset[k] = String(value[k]); });
        } else if (key === "className" || key === "textContent" || key === "title" || key === "hidden") {
          node[key] = value;
        } else {
          node.setAttribute(key, String(value));
        }
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(node, c); });
    } else if (child instanceof Node) {
      node.appendChild(child);
    } else {
      node.appendChild(document.createTextNode(String(child)));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  // ---------------------------------------------------------------- formatting

  function parseTime(iso) {
    if (!iso) return null;
    var t = Date.parse(iso);
    return isNaN(t) ? null : new Date(t);
  }

  function timeOfDay(iso) {
    var d = parseTime(iso);
    return d ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "–";
  }

  function dateTime(iso) {
    var d = parseTime(iso);
    if (!d) return "–";
    return d.toLocaleString([], { year: "numeric", month: "short", day: "numeric",
                                  hour: "2-digit", minute: "2-digit" });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "–";
    seconds = Math.max(0, Math.floor(seconds));
    var hrs = Math.floor(seconds / 3600);
    var min = Math.floor((seconds % 3600) / 60);
    var sec = seconds % 60;
    var mm = (hrs ? String(min).padStart(2, "0") : String(min));
    var out = mm + ":" + String(sec).padStart(2, "0");
    return hrs ? hrs + ":" + out : out;
  }

  function shortDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + (seconds % 60) + "s";
    return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
  }

  function money(value) {
    if (value === null || value === undefined || value === "") return "–";
    var n = Number(value);
    if (!isFinite(n)) return String(value);
    return n.toLocaleString([], { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function humanise(value) {
    if (value === null || value === undefined || value === "") return "–";
    var text = String(value).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function initials(name) {
    var parts = String(name || "").trim().split(/\s+/).filter(Boolean);
    if (!parts.length) return "?";
    var first = parts[0].charAt(0);
    var last = parts.length > 1 ? parts[parts.length - 1].charAt(0) : "";
    return (first + last).toUpperCase();
  }

  // ---------------------------------------------------------------- the JSON API

  var CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  /* fetch a JSON API path; resolves with the body, rejects with an Error whose `message` is
   * the server's error message (and `status`, `fields`) or a network failure's. */
  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") options.headers["X-CSRFToken"] = CSRF;
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 204) return null;
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return data;
        var error = (data && data.error) || {};
        var failure = new Error(error.message || "The server answered " + response.status + ".");
        failure.status = response.status;
        failure.fields = error.fields || {};
        throw failure;
      });
    }, function () {
      throw new Error("No answer from the server. Check your connection and try again.");
    });
  }

  /* Drafts live in this browser (localStorage) under the signed-in user's id, so a reload or a
   * crash keeps what the agent typed; signing out clears them. */
  var DRAFT_PREFIX = "cc:draft:" + (document.body.dataset.userId || "anon") + ":";

  var drafts = {
    get: function (key) {
      try { return window.localStorage.getItem(DRAFT_PREFIX + key) || ""; } catch (e) { return ""; }
    },
    set: function (key, value) {
      try {
        if (value) window.localStorage.setItem(DRAFT_PREFIX + key, value);
        else window.localStorage.removeItem(DRAFT_PREFIX + key);
      } catch (e) { /* storage full or disabled: the draft stays in the page only */ }
    },
    clearAll: function () {
      try {
        Object.keys(window.localStorage).forEach(function (key) {
          if (key.indexOf("cc:draft:") === 0) window.localStorage.removeItem(key);
        });
      } catch (e) { /* nothing stored */ }
    },
  };

  window.CC = {
    $: $, h: h, append: append, clear: clear, show: show,
    parseTime: parseTime, timeOfDay: timeOfDay, dateTime: dateTime, duration: duration,
    shortDuration: shortDuration, money: money, humanise: humanise, initials: initials,
    api: api, drafts: drafts,
  };
})();
