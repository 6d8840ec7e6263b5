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
  var PRESENCES = ["available", "away", "offline"];
  var LIVE = ["connecting", "active"];      // the conversation is going on
  var HELD = ["connecting", "active", "wrapup"];
  var STATUS_RANK = { connecting: 0, active: 1, wrapup: 2, ended: 3 };
  var CHANNEL_NAMES = { voice: "Call", email: "Email", callback: "Callback", chat: "Chat" };
  var STATE_LABELS = {
    voice: { connecting: "Connecting…", connected: "Connected", wrapup: "Wrap-up", completed: "Completed" },
    other: { connecting: "In progress", connected: "In progress", wrapup: "Wrap-up", completed: "Completed" },
  };
  var IDLE_TEXT = {
    offline: ["You are offline", "Go Available to start receiving calls."],
    available: ["Waiting for the next call", "Calls ring here as soon as a caller is routed to you."],
    away: ["You are away", "No calls are offered while you are away. Go Available when you are back."],
    reserved: ["An offer is on its way", "The next caller is being routed to you."],
    busy: ["You are busy", "You are on an interaction."],
    wrapup: ["Wrap-up", "Finish wrap-up to receive the next call."],
  };

  var $ = CC.$, h = CC.h, append = CC.append, clear = CC.clear, show = CC.show;
  var parseTime = CC.parseTime, timeOfDay = CC.timeOfDay, dateTime = CC.dateTime;
  var duration = CC.duration, shortDuration = CC.shortDuration, money = CC.money;
  var humanise = CC.humanise, initials = CC.initials;

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
    items: [],         // work in hand (see newItem), in the order it was taken
    selectedId: null,  // the interaction id shown in the work panel
    // The server's clock minus this browser's, learnt from each offer's server_time: server
    // timestamps (deadlines, answer times) are compared with serverNow(), never Date.now().
    clockOffsetMs: 0,
  };

  function serverNow() {
    return Date.now() + state.clockOffsetMs;
  }

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
      ? "(" + shortDuration((serverNow() - since.getTime()) / 1000) + ")" : "";
  }

  function renderIdle() {
    var busy = state.offers.length > 0 || state.items.length > 0;
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
    var payload = { status: status };
    if (status === "away") payload.reason = $("away-reason").value;
    if (status === "available") askNotificationPermission();
    socket.timeout(ACK_TIMEOUT_MS).emit("set_status", payload, function (err, ack) {
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
    if (PRESENCES.indexOf(state.status) >= 0) settleWrapups();
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
    var written = isWritten(interaction);
    var suggestions = (pop.suggestions || []).map(function (s) {
      return h("li", { className: "suggestion", dataset: { customerId: s.id } },
        h("span", { className: "suggestion-name" }, s.name),
        h("span", { className: "muted small" }, " #" + s.id + (s.reason ? " · " + s.reason : "")));
    });
    return h("div", { className: "pop-profile pop-unknown" },
      h("div", { className: "badges" }, badge("Not recognised", "warn")),
      h("dl", { className: "facts" },
        written
          ? fact("From", (interaction && interaction.from) || "No address", "fact-strong")
          : fact("Calling from", (interaction && interaction.from) || "Withheld number", "fact-strong")),
      section("Possible matches", suggestions.length
        ? h("ul", { className: "suggestions" }, suggestions)
        : empty(written ? "No customer matches this address." : "No customer matches this number.")));
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
      var clocks = h("ul", { className: "sla-clocks", hidden: true });
      var toggle = h("button", { type: "button", className: "link sla-toggle" }, "SLA");
      toggle.addEventListener("click", function () { toggleClocks(t.id, clocks, toggle); });
      return h("li", { className: "record" },
        h("span", { className: "record-ref" }, "#" + (t.number || t.id)),
        h("span", { className: "record-main" }, t.subject || "(no subject)"),
        h("span", { className: "record-meta" },
          humanise(t.status) + (t.priority ? " · " + humanise(t.priority) : "") +
          (t.next_breach_at ? " · due " + dateTime(t.next_breach_at) : "") + " · ", toggle),
        clocks);
    }));
  }

  /* Minutes as "2 h 5 min" (or "35 min"). */
  function minutesText(minutes) {
    var m = Math.round(Math.abs(minutes));
    return m >= 60 ? Math.floor(m / 60) + " h " + (m % 60) + " min" : m + " min";
  }

  function clockText(c) {
    var parts = [humanise(c.metric), humanise(c.state)];
    if (c.state === "fulfilled") {
      parts.push("met " + dateTime(c.fulfilled_at) + (c.breached_at ? " (late)" : ""));
    } else if (c.state === "paused") {
      parts.push(minutesText(c.remaining_minutes) + " left when resumed");
    } else if (c.due_at) {
      parts.push("due " + dateTime(c.due_at));
      if (c.remaining_minutes !== null) {
        parts.push(c.remaining_minutes < 0 ? minutesText(c.remaining_minutes) + " overdue"
                                            : minutesText(c.remaining_minutes) + " left");
      }
    }
    return parts.join(" · ");
  }

  /* Every SLA clock of a ticket (not only the nearest deadline), fetched when asked for. */
  function toggleClocks(ticketId, list, toggle) {
    if (!list.hidden) { list.hidden = true; return; }
    toggle.disabled = true;
    fetch("/api/v1/sla/tickets/" + encodeURIComponent(ticketId), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (sla) {
        clear(list);
        var rows = (sla.clocks || []).map(function (c) {
          return h("li", { className: "sla-clock", dataset: { state: c.state } }, clockText(c));
        });
        append(list, rows.length ? rows : [h("li", { className: "sla-clock muted" }, "No SLA applies.")]);
        list.hidden = false;
      })
      .catch(function () { toast("Could not load the SLA clocks.", "error"); })
      .then(function () { toggle.disabled = false; });
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
    // Servers leave the interaction itself out of its history; older ones did not.
    var currentId = interaction && interaction.id;
    var earlier = (pop.recent_interactions || []).filter(function (row) { return row.id !== currentId; });
    var history = h("div", { className: "pop-history" },
      section("Recent interactions", interactionsTable(earlier)),
      h("div", { className: "pop-columns" },
        section("Open tickets", ticketsList(pop.open_tickets)),
        section("Complaints", complaintsList(pop.complaints))),
      section("Notes", notesList(pop.notes), "pop-notes"));
    append(container, h("div", { className: "pop-grid" }, side, history));
  }

  function isWritten(interaction) {
    var channel = interaction && interaction.channel;
    return Boolean(channel) && channel !== "voice" && channel !== "callback";
  }

  /* The customer's name, or what to call someone we do not know (caller, sender). */
  function callerName(pop, interaction) {
    if (pop && pop.customer && pop.customer.name) return pop.customer.name;
    return isWritten(interaction) ? "Unknown sender" : "Unknown caller";
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
    timeOffer(offer);
    state.offersById[offer.reservation_id] = offer;
    state.offers.push(offer);
    activity("Offer: " + callerName(offer.screen_pop, offer.interaction), "offer");
    notify(offer);
    // Screen readers hear it without focus moving away from what the agent is typing.
    $("announce").textContent = "Incoming " + channelName((offer.interaction || {}).channel || "voice").toLowerCase() +
      " from " + callerName(offer.screen_pop, offer.interaction) + ". Alt+A to accept, Alt+D to decline.";
    if (state.offers.length === 1) renderOffer();
  }

  /* When the offer runs out, on this browser's clock. The server says when it sent the offer
   * (server_time) and when it expires: the difference is what is left, whatever the two
   * clocks say. Older servers send no server_time: the last known offset stands in. */
  function timeOffer(offer) {
    var receivedAt = Date.now();
    var sent = parseTime(offer.server_time);
    var expires = parseTime(offer.expires_at);
    if (sent) state.clockOffsetMs = sent.getTime() - receivedAt;
    var leftMs = expires ? expires.getTime() - (sent ? sent.getTime() : receivedAt + state.clockOffsetMs) : null;
    offer._deadline = leftMs === null ? null : receivedAt + leftMs;
    var total = Number(offer.timeout_s);
    offer._totalMs = total > 0 ? total * 1000 : Math.max(leftMs || 0, 1000);
  }

  function renderOffer() {
    var offer = state.offers[0];
    stopRinging();
    show($("reject-form"), false);
    if (!offer) {
      show($("offer"), false);
      document.title = titleBase;
      renderIdle();
      return;
    }
    var interaction = offer.interaction || {};
    var channel = interaction.channel || "voice";
    $("offer").dataset.channel = channel;
    $("offer-eyebrow").textContent = "Incoming " + (channel === "voice" ? "call" : channelName(channel).toLowerCase());
    $("caller-name").textContent = callerName(offer.screen_pop, offer.interaction);
    $("offer-meta").textContent = offerMeta(interaction);
    $("accept-offer").disabled = false;
    $("reject-offer").disabled = false;
    renderPop($("offer-pop"), offer.screen_pop, interaction);
    show($("offer"), true);
    renderIdle();
    document.title = "Incoming: " + callerName(offer.screen_pop, offer.interaction);
    tickCountdown();
    countdownTimer = setInterval(tickCountdown, 250);
    beep();
    ringTimer = setInterval(beep, RING_EVERY_MS);
  }

  function askNotificationPermission() {
    if (!("Notification" in window) || Notification.permission !== "default") return;
    try { Notification.requestPermission().catch(function () {}); } catch (e) { /* old API */ }
  }

  /* A desktop notification when the console is not in view (if the agent allowed them). */
  function notify(offer) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    try {
      var note = new Notification("Incoming " + channelName((offer.interaction || {}).channel || "voice").toLowerCase(), {
        body: callerName(offer.screen_pop, offer.interaction) + " · " + offerMeta(offer.interaction),
        tag: "offer-" + offer.reservation_id,
        requireInteraction: true,
      });
      note.onclick = function () { window.focus(); note.close(); };
    } catch (e) { /* notifications are a nicety */ }
  }

  function stopRinging() {
    if (countdownTimer) clearInterval(countdownTimer);
    if (ringTimer) clearInterval(ringTimer);
    countdownTimer = ringTimer = null;
  }

  function tickCountdown() {
    var offer = state.offers[0];
    if (!offer || offer._deadline === null || offer._deadline === undefined) return;
    var remainingMs = offer._deadline - Date.now();
    if (remainingMs <= 0) {
      dropOffer(offer.reservation_id);
      toast("The offer from " + callerName(offer.screen_pop, offer.interaction) + " expired.", "warn");
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
      var interaction = ack.interaction || { id: offer.interaction && offer.interaction.id };
      took(offer, interaction);
    });
  }

  /* Decline asks why first (the reason goes into the routing record). */
  function askRejectReason() {
    if (!state.offers.length) return;
    show($("reject-form"), true);
    $("reject-reason").focus();
  }

  function rejectOffer() {
    var offer = state.offers[0];
    if (!offer) return;
    show($("reject-form"), false);
    $("accept-offer").disabled = true;
    $("reject-offer").disabled = true;
    var payload = { reservation_id: offer.reservation_id, reason: $("reject-reason").value || null };
    socket.timeout(ACK_TIMEOUT_MS).emit("reject", payload, function (err, ack) {
      if (err || !ack || !ack.ok) {
        toast(errorMessage(err, ack, "Could not decline the offer."), "error");
        if (!err) dropOffer(offer.reservation_id);
        else renderOffer();
        return;
      }
      activity("Declined " + callerName(offer.screen_pop, offer.interaction), "info");
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

  // ---------------------------------------------------------------- work in hand

  /* One work item per interaction the agent holds. `status` is the server's interaction
   * status: connecting -> active -> wrapup -> ended (or straight to ended without wrap-up).
   * The outcome form is the selected item's; each item keeps its own draft of it. */
  function newItem(id) {
    return {
      id: id,
      reservationId: null,
      interaction: { id: id },
      screenPop: null,
      status: "connecting",
      // Kept in this browser as it is typed, so a reload or a crash loses nothing.
      draft: { disposition: CC.drafts.get(draftKey(id, "disposition")),
               notes: CC.drafts.get(draftKey(id, "notes")) },
      dirty: false,          // the draft has changes the server has not got
      outcomeSaved: false,   // `complete` went through (or the server has a disposition)
      pending: false,        // a complete / wrapup_done is on its way
      finishing: false,      // wrapup_done is on its way: "ended" closes the item
      takenAt: Date.now(),
    };
  }

  function draftKey(id, field) {
    return "interaction:" + id + ":" + field;
  }

  function itemById(id) {
    for (var i = 0; i < state.items.length; i++) {
      if (state.items[i].id === id) return state.items[i];
    }
    return null;
  }

  function selectedItem() {
    return itemById(state.selectedId) || state.items[0] || null;
  }

  /* Create or update the item of an interaction payload; returns [item, previous status]. */
  function upsertItem(interaction, extra) {
    if (!interaction || interaction.id === undefined || interaction.id === null) return [null, null];
    var item = itemById(interaction.id);
    var before = item ? item.status : null;
    if (!item) {
      item = newItem(interaction.id);
      item.dirty = Boolean(item.draft.notes || item.draft.disposition);
      if (interaction.disposition && !item.draft.disposition) {
        item.draft.disposition = interaction.disposition;
        item.outcomeSaved = true;
      }
      state.items.push(item);
    }
    // Statuses only move forward: a payload serialised before a change we already know of
    // (an ack overtaken by `interaction_updated`, say) must not take the item back.
    var stale = before !== null && !(STATUS_RANK[interaction.status] >= STATUS_RANK[before]);
    Object.keys(interaction).forEach(function (key) {
      if (interaction[key] === undefined) return;
      if (stale && (key === "status" || item.interaction[key] !== null && item.interaction[key] !== undefined)) return;
      item.interaction[key] = interaction[key];
    });
    if (!stale && STATUS_RANK[interaction.status] !== undefined) item.status = interaction.status;
    extra = extra || {};
    if (extra.reservationId) item.reservationId = extra.reservationId;
    if (extra.screenPop) {
      item.screenPop = extra.screenPop;
      item.popVersion = (item.popVersion || 0) + 1;
    }
    return [item, before];
  }

  function channelOf(item) {
    return (item && item.interaction && item.interaction.channel) || "voice";
  }

  function channelName(channel) {
    return CHANNEL_NAMES[channel] || humanise(channel);
  }

  function itemName(item) {
    if (item.screenPop) return callerName(item.screenPop, item.interaction);
    return item.interaction.from || channelName(channelOf(item)) + " #" + item.id;
  }

  function stateKey(item) {
    return { connecting: "connecting", active: "connected", wrapup: "wrapup", ended: "completed" }[item.status] || "connecting";
  }

  function stateLabel(item) {
    var labels = channelOf(item) === "voice" ? STATE_LABELS.voice : STATE_LABELS.other;
    return labels[stateKey(item)];
  }

  /* The agent took an offer (the accept ack, or `assigned`, whichever comes first). */
  function took(offer, interaction) {
    var known = itemById(interaction.id);
    var payload = Object.assign({}, offer ? offer.interaction : null, interaction);
    if (!interaction.status && !known) payload.status = "connecting";  // not "offered" any more
    else if (!interaction.status) delete payload.status;
    var item = upsertItem(payload, {
      reservationId: offer ? offer.reservation_id : null,
      screenPop: offer && !(known && known.screenPop) ? offer.screen_pop : null,
    })[0];
    if (!item) return;
    if (offer) dropOffer(offer.reservation_id);
    if (!known) {
      state.selectedId = item.id;
      activity("Accepted " + itemName(item), "call");
    }
    renderWork();
  }

  function onAssigned(payload) {
    if (!payload) return;
    var offer = state.offersById[payload.reservation_id] || null;
    took(offer, { id: payload.interaction_id });
  }

  /* `current` on every (re)connect: the work the agent holds, as the server sees it. */
  function onCurrent(payload) {
    var list = payload && Array.isArray(payload.interactions) ? payload.interactions : [];
    // A ringing offer, if still pending, comes again right after this (with fresh timing).
    state.offers.forEach(function (o) { delete state.offersById[o.reservation_id]; });
    state.offers = [];
    renderOffer();
    var held = {};
    list.forEach(function (entry) {
      if (!entry || !entry.interaction) return;
      var known = itemById(entry.interaction.id);
      var result = upsertItem(entry.interaction, {
        reservationId: entry.reservation_id,
        screenPop: entry.screen_pop,
      });
      var item = result[0];
      if (!item) return;
      held[item.id] = true;
      // What happened while the connection was down (the caller joined, hung up).
      if (known && result[1] !== item.status) noteTransition(item, result[1]);
      if (!known) activity("Resumed " + channelName(channelOf(item)).toLowerCase() + " with " + itemName(item), "call");
    });
    // Whatever is not listed ended while this console was away.
    state.items.slice().forEach(function (item) {
      if (held[item.id]) return;
      item.status = "ended";
      if (!item.dirty) removeItem(item.id);
    });
    renderWork();
  }

  function onInteractionUpdated(interaction) {
    if (!interaction || interaction.id === undefined) return;
    var known = itemById(interaction.id);
    // Work taken elsewhere (another console of this agent) still shows up here.
    if (!known && HELD.indexOf(interaction.status) < 0) return;
    var result = upsertItem(interaction);
    var item = result[0];
    var before = result[1];
    if (!item) return;
    if (before !== item.status) noteTransition(item, before);
    if (item.status === "ended" && (item.finishing || (item.outcomeSaved && !item.dirty && !item.pending))) {
      removeItem(item.id);
      return;
    }
    renderWork();
  }

  function noteTransition(item, before) {
    var voice = channelOf(item) === "voice";
    if (item.status === "active" && voice) {
      activity("Connected to " + itemName(item), "call");
    } else if (LIVE.indexOf(before) >= 0 && LIVE.indexOf(item.status) < 0 && !item.pending) {
      activity((voice ? "Call ended by the caller: " : "Ended: ") + itemName(item), "call");
    } else if (before === "wrapup" && item.status === "ended" && !item.finishing) {
      activity("Wrap-up time over: " + itemName(item), "info");
    }
  }

  /* Without `interaction_updated` (older servers) a wrap-up running out shows only as the
   * agent's status going back to their presence: close what was already written up. */
  function settleWrapups() {
    state.items.slice().forEach(function (item) {
      if (item.status !== "wrapup" || item.pending) return;
      item.status = "ended";
      if (item.outcomeSaved && !item.dirty) removeItem(item.id);
    });
    renderWork();
  }

  function removeItem(id) {
    var item = itemById(id);
    if (!item) return;
    state.items = state.items.filter(function (i) { return i.id !== id; });
    if (item.reservationId) delete state.offersById[item.reservationId];
    CC.drafts.set(draftKey(id, "disposition"), "");
    CC.drafts.set(draftKey(id, "notes"), "");
    if (state.selectedId === id) state.selectedId = state.items.length ? state.items[0].id : null;
    renderWork();
  }

  function select(id) {
    if (!itemById(id) || state.selectedId === id) return;
    state.selectedId = id;
    renderWork();
  }

  // ---------------------------------------------------------------- rendering the work

  var SVG = "http://www.w3.org/2000/svg";
  var ICON_PATHS = {
    voice: ["M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2"],
    email: ["M5 5h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2", "m3 7 9 6 9-6"],
  };

  function channelIcon(channel) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon-phone");
    (ICON_PATHS[channel] || ICON_PATHS.email).forEach(function (d) {
      var path = document.createElementNS(SVG, "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    });
    return svg;
  }

  var shown = { popFor: null, popVersion: null, formFor: null };

  function renderWork() {
    if (state.selectedId === null || !itemById(state.selectedId)) {
      state.selectedId = state.items.length ? state.items[0].id : null;
    }
    renderTabs();
    renderSelected();
    tickWork();
    renderIdle();
  }

  function renderTabs() {
    var list = $("work-items");
    var focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".work-tab") : null;
    var focusId = focused ? Number(focused.dataset.interactionId) : null;
    clear(list);
    show(list, state.items.length > 1);
    if (state.items.length < 2) return;  // one piece of work needs no tabs
    state.items.forEach(function (item) {
      var selected = item.id === state.selectedId;
      var channel = channelOf(item);
      var tab = h("button", {
        type: "button",
        role: "tab",
        id: "work-tab-" + item.id,
        className: "work-tab",
        "aria-selected": selected ? "true" : "false",
        "aria-controls": "current-interaction",
        tabindex: selected ? "0" : "-1",
        dataset: { interactionId: item.id, state: stateKey(item), channel: channel },
      },
        h("span", { className: "work-tab-icon" }, channelIcon(channel)),
        h("span", { className: "work-tab-text" },
          h("span", { className: "work-tab-name" }, itemName(item)),
          h("span", { className: "work-tab-meta" },
            h("span", { className: "work-tab-state" }, stateLabel(item)),
            h("span", { className: "work-tab-time" }, ""))));
      tab.addEventListener("click", function () { select(item.id); });
      list.appendChild(tab);
      if (focusId === item.id) tab.focus();
    });
  }

  function renderSelected() {
    var item = selectedItem();
    var panel = $("current-interaction");
    if (!item) {
      show(panel, false);
      shown.popFor = shown.formFor = null;
      document.dispatchEvent(new CustomEvent("cc:work", { detail: { item: null } }));
      return;
    }
    var channel = channelOf(item);
    var key = stateKey(item);
    var voice = channel === "voice";
    panel.dataset.state = key;
    panel.dataset.channel = channel;
    $("current-kind").textContent = channelName(channel);
    $("current-ref").textContent = "#" + item.id;
    $("current-caller-name").textContent = itemName(item);
    $("current-meta").textContent = offerMeta(item.interaction);
    var callState = $("call-state");
    callState.dataset.state = key;
    callState.textContent = stateLabel(item);
    $("call-timer").setAttribute("aria-label", voice ? "Call duration" : "Time open");

    if (shown.popFor !== item.id || shown.popVersion !== item.popVersion) {
      if (item.screenPop) {
        renderPop($("current-pop"), item.screenPop, item.interaction);
        // workspace.js adds what the agent can do on it (notes, identify an unknown caller)
        document.dispatchEvent(new CustomEvent("cc:pop", { detail: { item: item, container: $("current-pop") } }));
      } else {
        clear($("current-pop"));
      }
      show($("current-pop"), Boolean(item.screenPop));
      shown.popFor = item.id;
      shown.popVersion = item.popVersion;
    }
    if (shown.formFor !== item.id) {
      $("disposition").value = item.draft.disposition;
      $("notes").value = item.draft.notes;
      $("notes").placeholder = voice
        ? "What was the call about, what did you agree?"
        : "What was it about, what did you reply or agree?";
      shown.formFor = item.id;
    }

    var live = LIVE.indexOf(item.status) >= 0;
    var wrapup = item.status === "wrapup";
    var ended = item.status === "ended";
    var complete = $("complete-interaction");
    show(complete, live || ended);
    complete.textContent = ended ? "Save outcome" : "Complete";
    complete.disabled = item.pending;
    show($("finish-wrapup"), wrapup);
    $("finish-wrapup").disabled = item.pending;
    show($("dismiss-interaction"), ended);
    $("dismiss-interaction").disabled = item.pending;
    $("disposition").disabled = item.pending;
    $("notes").disabled = item.pending;
    $("wrapup-hint").textContent = hintFor(item);
    show(panel, true);
    document.dispatchEvent(new CustomEvent("cc:work", { detail: { item: item } }));
  }

  function hintFor(item) {
    var voice = channelOf(item) === "voice";
    if (item.status === "connecting" && voice) return "Connecting you to the caller. Complete ends the call and starts wrap-up.";
    if (LIVE.indexOf(item.status) >= 0) {
      return voice ? "Complete ends the call and starts wrap-up." : "Complete closes this " + channelName(channelOf(item)).toLowerCase() + " and starts wrap-up.";
    }
    if (item.status === "wrapup") {
      var until = parseTime(item.interaction.wrapup_until);
      var ends = until ? "Wrap-up ends by itself at " + timeOfDay(new Date(until.getTime() - state.clockOffsetMs).toISOString()) + ". " : "";
      if (!item.outcomeSaved || item.dirty) {
        return (voice ? "The call has ended. " : "") + "Record the outcome, then finish wrap-up. " + ends;
      }
      return "Outcome saved. " + ends + "Finish early when you are ready.";
    }
    var over = item.interaction.wrapup_until ? "Wrap-up is over. "
      : voice ? "The call has ended. " : "";
    return over + "Save the outcome, or close this without one.";
  }

  function elapsedSeconds(item) {
    var i = item.interaction;
    if (LIVE.indexOf(item.status) < 0 && i.duration_s !== null && i.duration_s !== undefined) return i.duration_s;
    var start = parseTime(i.answered_at);
    var end = parseTime(i.ended_at);
    if (start && end) return (end.getTime() - start.getTime()) / 1000;
    if (start) return (serverNow() - start.getTime()) / 1000;
    return (Date.now() - item.takenAt) / 1000;
  }

  function wrapupLeftSeconds(item) {
    var until = parseTime(item.interaction.wrapup_until);
    return item.status === "wrapup" && until ? (until.getTime() - serverNow()) / 1000 : null;
  }

  /* Every second: the selected item's timers, and each tab's. */
  function tickWork() {
    var item = selectedItem();
    if (item) {
      $("call-timer").textContent = duration(elapsedSeconds(item));
      var left = wrapupLeftSeconds(item);
      var remaining = $("wrapup-remaining");
      remaining.textContent = left === null ? "" : "Wrap-up " + duration(Math.max(0, left)) + " left";
      show(remaining, left !== null);
    }
    state.items.forEach(function (i) {
      var tab = $("work-tab-" + i.id);
      if (!tab) return;
      var left = wrapupLeftSeconds(i);
      tab.querySelector(".work-tab-time").textContent =
        left === null ? duration(elapsedSeconds(i)) : duration(Math.max(0, left)) + " left";
    });
  }

  // ---------------------------------------------------------------- completing work

  function complete(item, then) {
    if (!item || item.pending) return;
    var disposition = item.draft.disposition || null;
    var notes = item.draft.notes.trim() || null;
    var payload = { interaction_id: item.id };
    if (disposition) payload.disposition = disposition;
    if (notes) payload.notes = notes;
    var wasLive = LIVE.indexOf(item.status) >= 0;
    item.pending = true;
    renderWork();
    socket.timeout(ACK_TIMEOUT_MS).emit("complete", payload, function (err, ack) {
      item.pending = false;
      if (!itemById(item.id)) return;  // closed meanwhile
      if (err || !ack || !ack.ok) {
        toast(errorMessage(err, ack, "Could not complete the interaction."), "error");
        renderWork();
        return;
      }
      item.outcomeSaved = true;
      item.dirty = false;
      CC.drafts.set(draftKey(item.id, "disposition"), "");
      CC.drafts.set(draftKey(item.id, "notes"), "");
      if (ack.interaction) upsertItem(ack.interaction);
      var what = disposition ? ": " + humanise(disposition) : "";
      activity((wasLive ? "Completed " : "Outcome saved for ") + itemName(item) + what, "call");
      if (then) then(item);
      else if (item.status === "ended") removeItem(item.id);
      else renderWork();
    });
  }

  function finishWrapup(item) {
    if (!item || item.pending) return;
    if (!item.outcomeSaved || item.dirty) {
      complete(item, finishWrapup);  // keep what the agent typed: save it first
      return;
    }
    if (item.status === "ended") {
      removeItem(item.id);
      return;
    }
    item.pending = true;
    item.finishing = true;
    renderWork();
    socket.timeout(ACK_TIMEOUT_MS).emit("wrapup_done", { interaction_id: item.id }, function (err, ack) {
      item.pending = false;
      if (err || !ack || !ack.ok) {
        item.finishing = false;
        toast(errorMessage(err, ack, "Could not finish wrap-up."), "error");
        renderWork();
        return;
      }
      removeItem(item.id);
      applyStatus(ack);
    });
  }

  function keepDraft() {
    var item = selectedItem();
    if (!item) return;
    var disposition = $("disposition").value;
    var notes = $("notes").value;
    if (disposition === item.draft.disposition && notes === item.draft.notes) return;
    item.draft.disposition = disposition;
    item.draft.notes = notes;
    CC.drafts.set(draftKey(item.id, "disposition"), disposition);
    CC.drafts.set(draftKey(item.id, "notes"), notes);
    if (!item.dirty) {
      item.dirty = true;
      if (item.status === "wrapup") $("wrapup-hint").textContent = hintFor(item);
    }
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
  socket.on("current", onCurrent);
  socket.on("offer", onOffer);
  socket.on("offer_revoked", onOfferRevoked);
  socket.on("assigned", onAssigned);
  socket.on("interaction_updated", onInteractionUpdated);
  socket.on("interaction_ended", onInteractionUpdated);  // same payload: the status it ended in

  // ---------------------------------------------------------------- wiring

  document.querySelectorAll("[data-set-status]").forEach(function (button) {
    button.addEventListener("click", function () { setStatus(button.dataset.setStatus); });
  });
  $("accept-offer").addEventListener("click", acceptOffer);
  $("reject-offer").addEventListener("click", askRejectReason);
  $("reject-form").addEventListener("submit", function (event) {
    event.preventDefault();
    rejectOffer();
  });
  $("cancel-reject").addEventListener("click", function () {
    show($("reject-form"), false);
    $("reject-offer").focus();
  });
  $("logout-form").addEventListener("submit", function () { CC.drafts.clearAll(); });

  /* Keyboard: Alt+A accept, Alt+D decline, Alt+W finish wrap-up, Alt+E end the call,
   * "/" search (outside text fields). */
  document.addEventListener("keydown", function (event) {
    var typing = event.target.closest && event.target.closest("input, textarea, select");
    if (event.key === "/" && !typing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      $("search-q").focus();
      return;
    }
    if (!event.altKey || event.ctrlKey || event.metaKey) return;
    var key = event.key.toLowerCase();
    var item = selectedItem();
    if (key === "a" && state.offers.length && !$("accept-offer").disabled) acceptOffer();
    else if (key === "d" && state.offers.length && !$("reject-offer").disabled) askRejectReason();
    else if (key === "w" && item && (item.status === "wrapup" || item.status === "ended")) finishWrapup(item);
    else if (key === "e" && item && LIVE.indexOf(item.status) >= 0) complete(item, null);
    else return;
    event.preventDefault();
  });
  $("wrapup-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var item = selectedItem();
    if (item && item.status === "wrapup") finishWrapup(item);
    else complete(item, null);
  });
  $("finish-wrapup").addEventListener("click", function () { finishWrapup(selectedItem()); });
  $("dismiss-interaction").addEventListener("click", function () {
    var item = selectedItem();
    if (item && item.status === "ended") {
      activity("Closed " + itemName(item) + " without an outcome", "info");
      removeItem(item.id);
    }
  });
  $("disposition").addEventListener("change", keepDraft);
  $("disposition").addEventListener("input", keepDraft);
  $("notes").addEventListener("input", keepDraft);
  $("work-items").addEventListener("keydown", function (event) {
    var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (!step && event.key !== "Home" && event.key !== "End") return;
    event.preventDefault();
    var index = state.items.indexOf(selectedItem());
    var count = state.items.length;
    if (!count) return;
    if (event.key === "Home") index = 0;
    else if (event.key === "End") index = count - 1;
    else index = (index + step + count) % count;
    select(state.items[index].id);
    var tab = $("work-tab-" + state.items[index].id);
    if (tab) tab.focus();
  });
  $("toast-close").addEventListener("click", function () { show($("toast"), false); });
  $("user-initials").textContent = initials($("user-name").textContent);

  /* What workspace.js builds on: the socket, the selected work, and ways to update it. */
  CC.console = {
    socket: socket,
    selected: selectedItem,
    toast: toast,
    activity: activity,
    renderPop: renderPop,
    callerName: callerName,
    complete: function (item) { complete(item, null); },
    /* A fresh screen pop for an item (after a note, or once an unknown caller is known). */
    setScreenPop: function (id, pop) {
      upsertItem({ id: id }, { screenPop: pop });
      renderWork();
    },
    updateInteraction: function (interaction) {
      upsertItem(interaction);
      renderWork();
    },
  };

  setInterval(function () { tickStatus(); tickWork(); }, 1000);
  renderStatus();
})();
