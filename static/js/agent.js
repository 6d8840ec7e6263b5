/* The agent console: presence, ringing offers with the screen pop, the current interaction.
 *
 * Plain browser JavaScript, no build step. Talks to the `/agent` Socket.IO namespace; the
 * login session cookie authenticates the socket. Server data is only ever written with
 * textContent (never innerHTML), and times arrive as ISO 8601 UTC and are shown in local time.
 */
(function () {
  "use strict";

  var ACK_TIMEOUT_MS = 10000;
  var TOAST_MS = 6000;
  var RING_EVERY_MS = 3000;
  var ACTIVITY_MAX = 30;

  var STATUS_LABELS = {
    offline: "Offline",
    available: "Available",
    reserved: "Reserved",
    busy: "Busy",
    wrapup: "Wrap-up",
    away: "Away",
  };
  var IDLE_TEXT = {
    offline: ["You are offline", "Go Available to start receiving calls."],
    available: ["Waiting for the next call", "Calls ring here as soon as a caller is routed to you."],
    away: ["You are away", "No calls are offered while you are away. Go Available when you are back."],
    reserved: ["An offer is on its way", "The next caller is being routed to you."],
    busy: ["You are busy", "You are on an interaction."],
    wrapup: ["Wrap-up", "Finish wrap-up to receive the next call."],
  };

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

  // ---------------------------------------------------------------- toast and activity

  var toastTimer = null;

  function toast(message, kind) {
    var box = $("toast");
    $("toast-text").textContent = message;
    box.dataset.kind = kind || "info";
    show(box, true);
    if (toastTimer) clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { show(box, false); }, TOAST_MS);
  }

  function activity(text, kind) {
    var list = $("activity");
    var now = new Date().toISOString();
    var item = h("li", { className: "activity-item", dataset: { kind: kind || "info" } },
      h("time", { className: "activity-time", datetime: now }, timeOfDay(now)),
      h("span", { className: "activity-text" }, text));
    list.insertBefore(item, list.firstChild);
    while (list.children.length > ACTIVITY_MAX) list.removeChild(list.lastChild);
    show($("activity-empty"), false);
  }

  function errorMessage(err, ack, fallback) {
    if (err) return "No answer from the server. Check your connection and try again.";
    if (ack && ack.error && ack.error.message) return ack.error.message;
    return fallback;
  }

  // ---------------------------------------------------------------- sound (best effort)

  var audio = null;

  function unlockAudio() {
    if (audio) return;
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = new Ctx();
      if (audio.state === "suspended" && audio.resume) audio.resume().catch(function () {});
    } catch (e) {
      audio = null;
    }
  }

  function beep() {
    if (!audio || audio.state !== "running") return;
    try {
      var start = audio.currentTime + 0.01;
      [0, 0.22].forEach(function (offset, i) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.value = i ? 660 : 880;
        gain.gain.setValueAtTime(0.0001, start + offset);
        gain.gain.exponentialRampToValueAtTime(0.15, start + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.18);
        osc.connect(gain);
        gain.connect(audio.destination);
        osc.start(start + offset);
        osc.stop(start + offset + 0.2);
      });
    } catch (e) {
      /* sound is a nicety: never let it break the console */
    }
  }

  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  // ---------------------------------------------------------------- state

  var state = {
    connected: false,
    status: $("agent-status").dataset.status || "offline",
    // What the agent chose (available / away / offline); the status can differ while they
    // work (reserved, busy, wrapup). Older servers send no presence: the status stands in.
    presence: $("agent-status").dataset.presence || null,
    since: $("agent-status-since").getAttribute("datetime"),
    offers: [],        // pending offer payloads, oldest first; the first one rings
    offersById: {},    // reservation_id -> offer payload (kept after accept for `assigned`)
    current: null,     // {interactionId, reservationId, offer, interaction, ended, completed, answeredAt}
  };

  // ---------------------------------------------------------------- presence

  function renderStatus() {
    var badge = $("agent-status");
    badge.textContent = state.status;
    badge.dataset.status = state.status;
    badge.title = STATUS_LABELS[state.status] || state.status;
    var since = $("agent-status-since");
    since.setAttribute("datetime", state.since || "");
    since.textContent = timeOfDay(state.since);
    var reason = $("agent-status-reason");
    reason.textContent = state.reason ? "Reason: " + state.reason : "";
    show(reason, Boolean(state.reason));
    var chosen = currentPresence();
    var note = $("agent-presence-note");
    note.textContent = chosen && chosen !== state.status
      ? "Then " + (STATUS_LABELS[chosen] || chosen).toLowerCase() + " when this work is done" : "";
    show(note, Boolean(note.textContent));
    document.querySelectorAll("[data-set-status]").forEach(function (button) {
      var active = button.dataset.setStatus === chosen;
      button.classList.toggle("is-active", active);
      button.setAttribute("aria-pressed", active ? "true" : "false");
      button.disabled = !state.connected || active || button.dataset.pending === "1";
    });
    renderIdle();
    tickStatus();
  }

  function currentPresence() {
    if (state.presence) return state.presence;
    return ["available", "away", "offline"].indexOf(state.status) >= 0 ? state.status : null;
  }

  function tickStatus() {
    var since = parseTime(state.since);
    $("agent-status-elapsed").textContent = since
      ? "(" + shortDuration((Date.now() - since.getTime()) / 1000) + ")" : "";
  }

  function renderIdle() {
    var busy = state.offers.length > 0 || state.current !== null;
    show($("idle"), !busy);
    var text = IDLE_TEXT[state.status] || IDLE_TEXT.offline;
    $("idle-title").textContent = text[0];
    $("idle-text").textContent = text[1];
    $("idle").dataset.status = state.status;
  }

  function setStatus(status) {
    unlockAudio();
    var buttons = document.querySelectorAll("[data-set-status]");
    buttons.forEach(function (b) { b.dataset.pending = "1"; b.disabled = true; });
    socket.timeout(ACK_TIMEOUT_MS).emit("set_status", { status: status }, function (err, ack) {
      buttons.forEach(function (b) { delete b.dataset.pending; });
      if (err || !ack || !ack.ok) {
        toast(errorMessage(err, ack, "Could not change your status."), "error");
      } else {
        applyStatus(ack);
      }
      renderStatus();
    });
  }

  function applyStatus(payload) {
    if (!payload || !payload.status) return;
    var changed = payload.status !== state.status;
    state.status = payload.status;
    state.since = payload.since || state.since;
    state.reason = payload.reason || null;
    state.presence = payload.presence || null;
    if (changed) activity("Status: " + (STATUS_LABELS[state.status] || state.status), "status");
    if (state.current) {
      if (state.status === "available" && state.current.completed) closeCurrent();
      else renderCurrent();  // wrap-up shows "Finish wrap-up"; leaving it hides the button
    }
    renderStatus();
  }

  // ---------------------------------------------------------------- the screen pop

  function section(title, body, extraClass) {
    return h("section", { className: "pop-section " + (extraClass || "") },
      h("h3", { className: "pop-title" }, title), body);
  }

  function empty(text) {
    return h("p", { className: "muted small empty" }, text);
  }

  function fact(label, value, valueClass) {
    return [h("dt", null, label), h("dd", { className: valueClass || null }, value)];
  }

  function badge(text, kind) {
    return h("span", { className: "badge", dataset: { kind: kind || "neutral" } }, text);
  }

  function customerBadges(customer) {
    var badges = [];
    if (customer.tier) badges.push(badge("Tier " + customer.tier, "tier-" + String(customer.tier).toLowerCase()));
    if (customer.type) badges.push(badge(humanise(customer.type), "neutral"));
    if (customer.status) badges.push(badge(humanise(customer.status), customer.status === "active" ? "ok" : "warn"));
    if (customer.marketing_opt_out) badges.push(badge("No marketing", "warn"));
    return h("div", { className: "badges" }, badges);
  }

  function profile(customer, satisfaction) {
    var identities = (customer.identities || []).map(function (identity) {
      return h("li", { className: "identity" },
        h("span", { className: "identity-kind" }, identity.kind === "email" ? "Email" : humanise(identity.kind)),
        h("span", { className: "identity-value" }, identity.value));
    });
    var tags = (customer.tags || []).map(function (tag) { return h("li", { className: "tag" }, tag); });
    var sat = satisfaction || {};
    var satText = sat.last === null || sat.last === undefined
      ? "No ratings yet"
      : "Last " + sat.last + (sat.average !== null && sat.average !== undefined ? " · average " + sat.average : "");
    var owner = customer.owner ? (customer.owner.name || ("#" + customer.owner.id)) : "Unassigned";
    return h("div", { className: "pop-profile" },
      customerBadges(customer),
      h("dl", { className: "facts" },
        fact("Lifetime value", money(customer.lifetime_value), "fact-strong"),
        fact("Tier", customer.tier || "–"),
        fact("Type", humanise(customer.type)),
        fact("Region", customer.region || "–"),
        fact("Account owner", owner),
        fact("Satisfaction", satText),
        fact("Marketing", customer.marketing_opt_out ? "Opted out" : "Allowed")),
      section("Contact details", identities.length ? h("ul", { className: "identities" }, identities) : empty("None on file")),
      section("Tags", tags.length ? h("ul", { className: "tags" }, tags) : empty("No tags")));
  }

  function unknownCaller(pop, interaction) {
    var suggestions = (pop.suggestions || []).map(function (s) {
      return h("li", { className: "suggestion" },
        h("span", { className: "suggestion-name" }, s.name),
        h("span", { className: "muted small" }, " #" + s.id + (s.reason ? " · " + s.reason : "")));
    });
    return h("div", { className: "pop-profile pop-unknown" },
      h("div", { className: "badges" }, badge("Not recognised", "warn")),
      h("dl", { className: "facts" },
        fact("Calling from", (interaction && interaction.from) || "Withheld number", "fact-strong")),
      section("Possible matches", suggestions.length
        ? h("ul", { className: "suggestions" }, suggestions)
        : empty("No customer matches this number.")));
  }

  function interactionsTable(rows) {
    if (!rows || !rows.length) return empty("No previous interactions.");
    return h("div", { className: "table-wrap" },
      h("table", { className: "table" },
        h("thead", null, h("tr", null, ["When", "Channel", "Queue", "Agent", "Outcome", "Duration", "Disposition"]
          .map(function (title) { return h("th", { scope: "col" }, title); }))),
        h("tbody", null, rows.map(function (row) {
          return h("tr", null,
            h("td", null, h("time", { datetime: row.started_at }, dateTime(row.started_at))),
            h("td", null, humanise(row.channel)),
            h("td", null, row.queue || "–"),
            h("td", null, row.agent || "–"),
            h("td", null, humanise(row.outcome)),
            h("td", { className: "num" }, row.duration_s === null || row.duration_s === undefined ? "–" : duration(row.duration_s)),
            h("td", null, humanise(row.disposition)));
        }))));
  }

  function ticketsList(tickets) {
    if (!tickets || !tickets.length) return empty("No open tickets.");
    return h("ul", { className: "records" }, tickets.map(function (t) {
      return h("li", { className: "record" },
        h("span", { className: "record-ref" }, "#" + (t.number || t.id)),
        h("span", { className: "record-main" }, t.subject || "(no subject)"),
        h("span", { className: "record-meta" },
          humanise(t.status) + (t.priority ? " · " + humanise(t.priority) : "") +
          (t.next_breach_at ? " · due " + dateTime(t.next_breach_at) : "")));
    }));
  }

  function complaintsList(complaints) {
    if (!complaints || !complaints.length) return empty("No complaints.");
    return h("ul", { className: "records" }, complaints.map(function (c) {
      var deadlines = (c.deadlines || []).map(function (d) {
        return humanise(d.name) + " " + dateTime(d.due_at);
      }).join(" · ");
      return h("li", { className: "record record-complaint" },
        h("span", { className: "record-ref" }, "#" + (c.number || c.id)),
        h("span", { className: "record-main" }, humanise(c.status)),
        h("span", { className: "record-meta" }, deadlines || "No deadlines"));
    }));
  }

  function notesList(notes) {
    if (!notes || !notes.length) return empty("No notes.");
    return h("ul", { className: "notes" }, notes.map(function (n) {
      return h("li", { className: "note" },
        h("p", { className: "note-meta" },
          h("span", { className: "note-author" }, n.author || "System"), " · ",
          h("time", { datetime: n.at }, dateTime(n.at))),
        h("p", { className: "note-text" }, n.text));
    }));
  }

  function renderPop(container, pop, interaction) {
    clear(container);
    pop = pop || {};
    var customer = pop.customer || null;
    var side = customer ? profile(customer, pop.satisfaction) : unknownCaller(pop, interaction);
    // The history may already list the interaction being offered: show only earlier ones.
    var currentId = interaction && interaction.id;
    var earlier = (pop.recent_interactions || []).filter(function (row) { return row.id !== currentId; });
    var history = h("div", { className: "pop-history" },
      section("Recent interactions", interactionsTable(earlier)),
      h("div", { className: "pop-columns" },
        section("Open tickets", ticketsList(pop.open_tickets)),
        section("Complaints", complaintsList(pop.complaints))),
      section("Notes", notesList(pop.notes)));
    append(container, h("div", { className: "pop-grid" }, side, history));
  }

  function callerName(pop) {
    return pop && pop.customer && pop.customer.name ? pop.customer.name : "Unknown caller";
  }

  function offerMeta(interaction) {
    interaction = interaction || {};
    var parts = [];
    if (interaction.from) parts.push(interaction.from);
    if (interaction.queue) parts.push(interaction.queue + " queue");
    if (interaction.waited_s !== undefined && interaction.waited_s !== null) {
      parts.push("waited " + shortDuration(interaction.waited_s));
    }
    return parts.join(" · ");
  }

  // ---------------------------------------------------------------- offers

  var countdownTimer = null;
  var ringTimer = null;
  var titleBase = document.title;

  function onOffer(offer) {
    if (!offer || !offer.reservation_id || state.offersById[offer.reservation_id]) return;
    state.offersById[offer.reservation_id] = offer;
    state.offers.push(offer);
    activity("Offer: " + callerName(offer.screen_pop), "offer");
    if (state.offers.length === 1) renderOffer();
  }

  function renderOffer() {
    var offer = state.offers[0];
    stopRinging();
    if (!offer) {
      show($("offer"), false);
      document.title = titleBase;
      renderIdle();
      return;
    }
    var interaction = offer.interaction || {};
    var channel = interaction.channel || "voice";
    $("offer").dataset.channel = channel;
    $("offer-eyebrow").textContent = "Incoming " + (channel === "voice" ? "call" : channel);
    $("caller-name").textContent = callerName(offer.screen_pop);
    $("offer-meta").textContent = offerMeta(interaction);
    $("accept-offer").disabled = false;
    $("reject-offer").disabled = false;
    renderPop($("offer-pop"), offer.screen_pop, interaction);
    offer._receivedAt = offer._receivedAt || Date.now();
    show($("offer"), true);
    renderIdle();
    document.title = "Incoming: " + callerName(offer.screen_pop);
    tickCountdown();
    countdownTimer = setInterval(tickCountdown, 250);
    beep();
    ringTimer = setInterval(beep, RING_EVERY_MS);
  }

  function stopRinging() {
    if (countdownTimer) clearInterval(countdownTimer);
    if (ringTimer) clearInterval(ringTimer);
    countdownTimer = ringTimer = null;
  }

  function tickCountdown() {
    var offer = state.offers[0];
    if (!offer) return;
    var expires = parseTime(offer.expires_at);
    if (!expires) return;
    var remainingMs = expires.getTime() - Date.now();
    if (offer._totalMs === undefined) offer._totalMs = Math.max(remainingMs, 1000);
    if (remainingMs <= 0) {
      dropOffer(offer.reservation_id);
      toast("The offer from " + callerName(offer.screen_pop) + " expired.", "warn");
      activity("Offer expired", "warn");
      return;
    }
    $("offer-countdown").textContent = String(Math.ceil(remainingMs / 1000));
    var fraction = Math.max(0, Math.min(1, remainingMs / offer._totalMs));
    $("offer-progress").style.transform = "scaleX(" + fraction.toFixed(3) + ")";
    $("offer").classList.toggle("is-urgent", remainingMs < 5000);
  }

  function dropOffer(reservationId) {
    var wasFirst = state.offers.length && state.offers[0].reservation_id === reservationId;
    state.offers = state.offers.filter(function (o) { return o.reservation_id !== reservationId; });
    if (wasFirst) renderOffer();
    else renderIdle();
  }

  function acceptOffer() {
    var offer = state.offers[0];
    if (!offer) return;
    unlockAudio();
    $("accept-offer").disabled = true;
    $("reject-offer").disabled = true;
    stopRinging();
    socket.timeout(ACK_TIMEOUT_MS).emit("accept", { reservation_id: offer.reservation_id }, function (err, ack) {
      if (err || !ack || !ack.ok) {
        toast(errorMessage(err, ack, "Could not accept the offer."), "error");
        if (!err) dropOffer(offer.reservation_id);  // the server refused: the offer is gone
        else renderOffer();
        return;
      }
      startCurrent(offer, ack.interaction || { id: offer.interaction && offer.interaction.id });
    });
  }

  function rejectOffer() {
    var offer = state.offers[0];
    if (!offer) return;
    $("accept-offer").disabled = true;
    $("reject-offer").disabled = true;
    socket.timeout(ACK_TIMEOUT_MS).emit("reject", { reservation_id: offer.reservation_id }, function (err, ack) {
      if (err || !ack || !ack.ok) {
        toast(errorMessage(err, ack, "Could not decline the offer."), "error");
        if (!err) dropOffer(offer.reservation_id);
        else renderOffer();
        return;
      }
      activity("Declined " + callerName(offer.screen_pop), "info");
      dropOffer(offer.reservation_id);
    });
  }

  function onOfferRevoked(payload) {
    if (!payload || !state.offersById[payload.reservation_id]) return;
    var pending = state.offers.some(function (o) { return o.reservation_id === payload.reservation_id; });
    if (!pending) return;  // already accepted, declined or expired here
    var reason = payload.reason || "withdrawn";
    toast("Offer withdrawn: " + reason, "warn");
    activity("Offer withdrawn: " + reason, "warn");
    dropOffer(payload.reservation_id);
  }

  // ---------------------------------------------------------------- the current interaction

  var callTimer = null;

  function startCurrent(offer, interaction) {
    var id = interaction && interaction.id;
    if (state.current && state.current.interactionId === id) {
      // `assigned` and the accept ack both land here: merge, do not restart.
      state.current.interaction = Object.assign({}, state.current.interaction, interaction);
      if (interaction.answered_at) state.current.answeredAt = parseTime(interaction.answered_at);
      renderCurrent();
      return;
    }
    if (offer) dropOffer(offer.reservation_id);
    state.current = {
      interactionId: id,
      reservationId: offer ? offer.reservation_id : null,
      offer: offer || null,
      interaction: Object.assign({}, offer && offer.interaction, interaction),
      ended: false,
      completed: false,
      answeredAt: parseTime(interaction && interaction.answered_at) || new Date(),
    };
    $("disposition").value = "";
    $("notes").value = "";
    activity("Connected to " + callerName(offer && offer.screen_pop), "call");
    var pop = offer ? offer.screen_pop : null;
    if (pop) renderPop($("current-pop"), pop, state.current.interaction);
    else clear($("current-pop"));
    show($("current-pop"), Boolean(pop));
    renderCurrent();
    if (callTimer) clearInterval(callTimer);
    callTimer = setInterval(tickCall, 1000);
    tickCall();
  }

  function renderCurrent() {
    var current = state.current;
    var panel = $("current-interaction");
    if (!current) {
      show(panel, false);
      renderIdle();
      return;
    }
    var pop = current.offer ? current.offer.screen_pop : null;
    $("current-caller-name").textContent = pop ? callerName(pop) : "Interaction " + current.interactionId;
    $("current-ref").textContent = current.interactionId ? "#" + current.interactionId : "";
    $("current-meta").textContent = offerMeta(current.interaction);
    var callState = $("call-state");
    var stateKey = current.completed ? "completed" : current.ended ? "ended" : "connected";
    callState.dataset.state = stateKey;
    panel.dataset.state = stateKey;
    callState.textContent = { connected: "Connected", ended: "Call ended", completed: "Completed" }[stateKey];
    var wrapup = state.status === "wrapup";
    $("complete-interaction").disabled = current.completed || current.pending;
    $("disposition").disabled = current.completed;
    $("notes").disabled = current.completed;
    show($("finish-wrapup"), wrapup && (current.ended || current.completed));
    $("finish-wrapup").disabled = Boolean(current.pending);
    var hint = "";
    var wrapupUntil = parseTime(current.interaction && current.interaction.wrapup_until);
    if (current.completed && wrapup && wrapupUntil) {
      hint = "Wrap-up ends by itself at " + timeOfDay(wrapupUntil.toISOString()) + ". Finish early when you are ready.";
    } else if (current.completed && wrapup) hint = "Wrap-up: finish when you are ready for the next call.";
    else if (current.ended && !current.completed) hint = "The call has ended. Record the outcome, then complete.";
    else if (!current.ended) hint = "Complete ends the call and starts wrap-up.";
    $("wrapup-hint").textContent = hint;
    show(panel, true);
    renderIdle();
  }

  function tickCall() {
    var current = state.current;
    if (!current || !current.answeredAt) return;
    var known = current.ended && current.interaction ? current.interaction.duration_s : null;
    if (known !== null && known !== undefined) {
      $("call-timer").textContent = duration(known);  // the telephony's figure, once it is over
      return;
    }
    var end = current.endedAt ? current.endedAt.getTime() : Date.now();
    $("call-timer").textContent = duration((end - current.answeredAt.getTime()) / 1000);
  }

  function onAssigned(payload) {
    if (!payload) return;
    var offer = state.offersById[payload.reservation_id] || null;
    startCurrent(offer, { id: payload.interaction_id });
  }

  function onInteractionEnded(interaction) {
    var current = state.current;
    if (!interaction || !current || current.interactionId !== interaction.id) return;
    if (!current.ended) activity("Call ended by the caller", "call");
    markEnded(interaction);
  }

  function markEnded(interaction) {
    var current = state.current;
    current.ended = true;
    current.interaction = Object.assign({}, current.interaction, interaction);
    current.endedAt = parseTime(interaction && interaction.ended_at) || new Date();
    tickCall();
    renderCurrent();
  }

  function complete(then) {
    var current = state.current;
    if (!current || current.pending) return;
    var disposition = $("disposition").value || null;
    var notes = $("notes").value.trim() || null;
    var payload = { interaction_id: current.interactionId };
    if (disposition) payload.disposition = disposition;
    if (notes) payload.notes = notes;
    current.pending = true;
    renderCurrent();
    socket.timeout(ACK_TIMEOUT_MS).emit("complete", payload, function (err, ack) {
      current.pending = false;
      if (err || !ack || !ack.ok) {
        toast(errorMessage(err, ack, "Could not complete the interaction."), "error");
        renderCurrent();
        return;
      }
      current.completed = true;
      if (!current.ended) markEnded(ack.interaction);
      else current.interaction = Object.assign({}, current.interaction, ack.interaction);
      activity("Completed" + (disposition ? ": " + humanise(disposition) : ""), "call");
      if (then) then();
      else if (state.status !== "wrapup" && state.status !== "busy") closeCurrent();
      else renderCurrent();
    });
  }

  function finishWrapup() {
    var current = state.current;
    if (!current) return;
    if (!current.completed) {
      complete(finishWrapup);  // keep what the agent typed: save it first
      return;
    }
    current.pending = true;
    renderCurrent();
    socket.timeout(ACK_TIMEOUT_MS).emit("wrapup_done", { interaction_id: current.interactionId }, function (err, ack) {
      current.pending = false;
      if (err || !ack || !ack.ok) {
        toast(errorMessage(err, ack, "Could not finish wrap-up."), "error");
        renderCurrent();
        return;
      }
      closeCurrent();
      applyStatus(ack);
    });
  }

  function closeCurrent() {
    if (callTimer) clearInterval(callTimer);
    callTimer = null;
    if (state.current && state.current.reservationId) delete state.offersById[state.current.reservationId];
    state.current = null;
    renderCurrent();
  }

  // ---------------------------------------------------------------- connection

  function setConnection(kind, text) {
    var pill = $("connection-state");
    pill.dataset.state = kind;
    pill.textContent = text;
    state.connected = kind === "connected";
    renderStatus();
  }

  var socket = io("/agent", { reconnectionDelayMax: 10000 });

  socket.on("connect", function () { setConnection("connected", "Connected"); });
  socket.on("disconnect", function (reason) {
    if (reason === "io server disconnect" || reason === "io client disconnect") {
      setConnection("disconnected", "Disconnected");
      toast("The server closed the connection. Reload the page or sign in again.", "error");
    } else {
      setConnection("reconnecting", "Reconnecting…");
    }
  });
  socket.on("connect_error", function () {
    if (socket.active) {
      setConnection("reconnecting", "Reconnecting…");
    } else {
      // The server refused us (session expired, signed out elsewhere): no point retrying.
      setConnection("disconnected", "Signed out");
      toast("Your session has ended. Sign in again to keep taking calls.", "error");
    }
  });
  socket.io.on("reconnect_attempt", function () { setConnection("reconnecting", "Reconnecting…"); });

  socket.on("status", applyStatus);
  socket.on("offer", onOffer);
  socket.on("offer_revoked", onOfferRevoked);
  socket.on("assigned", onAssigned);
  socket.on("interaction_ended", onInteractionEnded);

  // ---------------------------------------------------------------- wiring

  document.querySelectorAll("[data-set-status]").forEach(function (button) {
    button.addEventListener("click", function () { setStatus(button.dataset.setStatus); });
  });
  $("accept-offer").addEventListener("click", acceptOffer);
  $("reject-offer").addEventListener("click", rejectOffer);
  $("wrapup-form").addEventListener("submit", function (event) {
    event.preventDefault();
    complete(null);
  });
  $("finish-wrapup").addEventListener("click", finishWrapup);
  $("toast-close").addEventListener("click", function () { show($("toast"), false); });
  $("user-initials").textContent = initials($("user-name").textContent);

  setInterval(tickStatus, 1000);
  renderStatus();
})();
