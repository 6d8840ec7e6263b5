/* The agent's workspace around the selected work: call controls, the ticket (create, link,
 * status, priority, complaint, thread, reply with canned responses, internal notes), who
 * else is on the ticket, customer notes, naming an unknown caller, and search.
 *
 * Builds on agent.js (CC.console) and common.js (CC). Everything typed is kept as a draft
 * (CC.drafts) until it is sent, so a reload loses nothing.
 */
(function () {
  "use strict";

  var $ = CC.$, h = CC.h, clear = CC.clear, show = CC.show, humanise = CC.humanise;
  var dateTime = CC.dateTime, api = CC.api, drafts = CC.drafts;
  var ui = CC.console;
  var socket = ui.socket;
  var LIVE = ["connecting", "active"];
  var VIEW_REFRESH_MS = 30000;
  var MY_ID = Number(document.body.dataset.userId);
  var TICKET_TYPES = ["question", "incident", "request", "complaint"];
  var PRIORITIES = ["low", "normal", "high", "urgent"];
  var STATUSES = ["new", "open", "pending", "on_hold", "solved", "closed"];
  var COMPLAINT_CATEGORIES = ["Billing", "Service", "Product", "Staff conduct", "Delay", "Other"];

  function options(values, selected, label) {
    return values.map(function (value) {
      return h("option", { value: value, selected: value === selected ? "selected" : null },
        label ? label(value) : humanise(value));
    });
  }

  function failed(what) {
    return function (error) { ui.toast(what + ": " + error.message, "error"); };
  }

  /* A textarea or input whose text is kept as a draft under `key` while it is typed. */
  function drafted(node, key) {
    node.value = drafts.get(key);
    node.addEventListener("input", function () { drafts.set(key, node.value); });
    return node;
  }

  function busy(button, promise) {
    button.disabled = true;
    return promise.then(function (value) {
      button.disabled = false;
      return value;
    }, function (error) {
      button.disabled = false;
      throw error;
    });
  }

  function channelReceived(item) {
    var channel = item.interaction.channel;
    return channel === "email" ? "email" : channel === "web" ? "web" : "phone";
  }

  // ---------------------------------------------------------------- reference data

  var queues = [];

  function loadQueues() {
    return api("GET", "/api/v1/queues").then(function (list) {
      queues = list || [];
      var filter = $("filter-queue");
      queues.forEach(function (q) { filter.appendChild(h("option", { value: q.id }, q.name)); });
    }).catch(function () { /* the filters and transfer list work without queues */ });
  }

  var cannedResponses = null;

  function loadCanned() {
    if (cannedResponses) return Promise.resolve(cannedResponses);
    return api("GET", "/api/v1/canned-responses").then(function (list) {
      cannedResponses = list || [];
      return cannedResponses;
    }).catch(function () { return []; });
  }

  // ---------------------------------------------------------------- call controls

  /* Transfer targets: every queue, and the colleagues free right now (fetched when asked). */
  function fillTransferTargets() {
    var select = $("transfer-target");
    return api("GET", "/api/v1/agents?available=true").catch(function () { return []; }).then(function (agents) {
      clear(select);
      select.appendChild(h("option", { value: "" }, "Transfer to…"));
      select.appendChild(h("optgroup", { label: "Queues" }, queues.map(function (q) {
        return h("option", { value: "queue:" + q.id }, q.name);
      })));
      var others = (agents || []).filter(function (a) { return a.id !== MY_ID; });
      select.appendChild(h("optgroup", { label: "Agents available now" }, others.length
        ? others.map(function (a) { return h("option", { value: "agent:" + a.id }, a.display_name); })
        : [h("option", { value: "", disabled: "disabled" }, "Nobody is free")]));
    });
  }

  function callControl(path, body, done) {
    var item = ui.selected();
    if (!item) return Promise.resolve();
    return api("POST", "/api/v1/interactions/" + item.id + path, body).then(function (interaction) {
      ui.updateInteraction(interaction);
      if (done) ui.activity(done, "call");
    });
  }

  function transferTarget() {
    var parts = $("transfer-target").value.split(":");
    if (parts.length !== 2) {
      ui.toast("Choose a queue or an agent to transfer to.", "warn");
      $("transfer-target").focus();
      return null;
    }
    var body = {};
    body[parts[0] + "_id"] = Number(parts[1]);
    return body;
  }

  function renderControls(item) {
    var voice = item && (item.interaction.channel || "voice") === "voice";
    var live = item && LIVE.indexOf(item.status) >= 0;
    show($("call-controls"), Boolean(voice && live));
    if (!voice || !live) return;
    var held = Boolean(item.interaction.on_hold);
    var hold = $("hold-call");
    hold.textContent = held ? "Resume" : "Hold";
    hold.setAttribute("aria-pressed", held ? "true" : "false");
    var consulting = Boolean(item.interaction.consult_agent_id);
    show($("consult-complete"), consulting);
    show($("consult-cancel"), consulting);
    show($("consult-call"), !consulting);
    $("transfer-call").disabled = consulting;
  }

  $("hold-call").addEventListener("click", function (event) {
    var item = ui.selected();
    if (!item) return;
    var hold = !item.interaction.on_hold;
    busy(event.currentTarget, callControl("/hold", { hold: hold }, hold ? "Caller on hold" : "Caller off hold"))
      .catch(failed("Could not change hold"));
  });
  $("transfer-target").addEventListener("focus", fillTransferTargets, { once: true });
  $("transfer-call").addEventListener("click", function (event) {
    var body = transferTarget();
    if (body) {
      busy(event.currentTarget, callControl("/transfer", body, "Call transferred"))
        .catch(failed("Could not transfer the call"));
    }
  });
  $("consult-call").addEventListener("click", function (event) {
    var body = transferTarget();
    if (!body) return;
    if (!body.agent_id) {
      ui.toast("A consult is with an agent: choose one under “Agents available now”.", "warn");
      return;
    }
    busy(event.currentTarget, callControl("/consult", body, "Consulting a colleague (caller on hold)"))
      .catch(failed("Could not start the consult"));
  });
  $("consult-complete").addEventListener("click", function (event) {
    busy(event.currentTarget, callControl("/consult/complete", undefined, "Call handed over"))
      .catch(failed("Could not hand the call over"));
  });
  $("consult-cancel").addEventListener("click", function (event) {
    busy(event.currentTarget, callControl("/consult/cancel", undefined, "Consult called off"))
      .catch(failed("Could not call the consult off"));
  });
  $("end-call").addEventListener("click", function () {
    var item = ui.selected();
    if (item) ui.complete(item);
  });

  // ---------------------------------------------------------------- who else is on the ticket

  var viewing = { ticketId: null, timer: null, replying: false };

  function viewTicket(ticketId) {
    if (viewing.ticketId === ticketId) return;
    leaveTicket();
    if (!ticketId) return;
    viewing.ticketId = ticketId;
    viewing.replying = false;
    var touch = function () {
      socket.emit("view_ticket", { ticket_id: ticketId, replying: viewing.replying }, function (ack) {
        if (ack && ack.ok) renderPresence(ack);
      });
    };
    touch();
    viewing.timer = setInterval(touch, VIEW_REFRESH_MS);
  }

  function setReplying(replying) {
    if (!viewing.ticketId || viewing.replying === replying) return;
    viewing.replying = replying;
    socket.emit("view_ticket", { ticket_id: viewing.ticketId, replying: replying });
  }

  function leaveTicket() {
    if (viewing.timer) clearInterval(viewing.timer);
    if (viewing.ticketId) socket.emit("leave_ticket", { ticket_id: viewing.ticketId });
    viewing.ticketId = null;
    viewing.timer = null;
  }

  function renderPresence(activity) {
    var line = $("ticket-presence");
    if (!line || !activity || activity.ticket_id !== viewing.ticketId) return;
    var others = (activity.viewers || []).filter(function (v) { return v.id !== MY_ID; });
    clear(line);
    others.forEach(function (v) {
      line.appendChild(h("span", { className: "presence-chip", dataset: { replying: v.replying ? 1 : 0 } },
        v.name + (v.replying ? " is replying" : " is viewing")));
    });
    show(line, others.length > 0);
  }

  socket.on("ticket_activity", renderPresence);
  socket.on("connect", function () {
    // A reconnect lost the room: view the ticket again.
    var ticketId = viewing.ticketId;
    if (ticketId) {
      viewing.ticketId = null;
      viewTicket(ticketId);
    }
  });

  // ---------------------------------------------------------------- the ticket of the work

  var shown = { itemId: null, ticketId: undefined, customerId: undefined };

  function onWork(event) {
    var item = event.detail.item;
    renderControls(item);
    var ticketId = item ? item.interaction.ticket_id || null : null;
    var customerId = item ? item.interaction.customer_id || null : null;
    if (!item) {
      shown = { itemId: null, ticketId: undefined, customerId: undefined };
      clear($("ticket-work"));
      leaveTicket();
      return;
    }
    if (shown.itemId === item.id && shown.ticketId === ticketId && shown.customerId === customerId) return;
    shown = { itemId: item.id, ticketId: ticketId, customerId: customerId };
    if (ticketId) loadTicket(item, ticketId);
    else renderNoTicket(item);
  }

  function renderNoTicket(item) {
    leaveTicket();
    var box = $("ticket-work");
    clear(box);
    var channel = item.interaction.channel || "voice";
    if (channel !== "voice" && channel !== "callback") return;  // mail arrives on its ticket
    var key = "interaction:" + item.id + ":";
    var subject = drafted(h("input", { id: "new-ticket-subject", className: "input", maxlength: 300,
      placeholder: "What is it about?" }), key + "ticket-subject");
    var type = h("select", { id: "new-ticket-type", className: "input input-small" }, options(TICKET_TYPES, "question"));
    var priority = h("select", { id: "new-ticket-priority", className: "input input-small" }, options(PRIORITIES, "normal"));
    var category = h("select", { id: "new-ticket-category", className: "input input-small" },
      options(COMPLAINT_CATEGORIES, "Service", String));
    var categoryLabel = h("label", { hidden: true }, "Category ", category);
    type.addEventListener("change", function () { categoryLabel.hidden = type.value !== "complaint"; });
    var create = h("button", { type: "submit", className: "btn btn-primary btn-small", id: "create-ticket" }, "Create ticket");
    var form = h("form", { className: "ticket-create", id: "ticket-create-form" },
      h("label", { for: "new-ticket-subject" }, "Subject"), subject,
      h("div", { className: "inline-fields" },
        h("label", null, "Type ", type), h("label", null, "Priority ", priority), categoryLabel),
      h("div", { className: "form-actions" }, create));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!subject.value.trim()) {
        ui.toast("Give the ticket a subject.", "warn");
        subject.focus();
        return;
      }
      busy(create, createTicket(item, subject.value.trim(), type.value, priority.value, category.value))
        .then(function () { drafts.set(key + "ticket-subject", ""); })
        .catch(failed("Could not create the ticket"));
    });
    var open = (item.screenPop && item.screenPop.open_tickets) || [];
    var link = null;
    if (open.length) {
      var choice = h("select", { id: "link-ticket", className: "input input-small" }, open.map(function (t) {
        return h("option", { value: t.id }, "#" + (t.number || t.id) + " " + (t.subject || ""));
      }));
      var linkButton = h("button", { type: "submit", className: "btn btn-secondary btn-small" }, "Add to ticket");
      link = h("form", { className: "ticket-link" }, h("label", { for: "link-ticket" }, "Or add this to an open ticket"),
        h("div", { className: "inline-fields" }, choice, linkButton));
      link.addEventListener("submit", function (event) {
        event.preventDefault();
        busy(linkButton, attach(item, Number(choice.value))).catch(failed("Could not add to the ticket"));
      });
    }
    box.appendChild(h("div", { className: "card ticket-card" },
      h("h3", { className: "card-title", id: "ticket-work-title" }, "Ticket"),
      h("p", { className: "muted small" }, "Nothing is logged for this yet."),
      form, link));
  }

  function createTicket(item, subject, type, priority, category) {
    var customerId = item.interaction.customer_id || undefined;
    var made = type === "complaint"
      ? api("POST", "/api/v1/complaints", {
          customer_id: customerId, subject: subject, category: category,
          channel_received: channelReceived(item),
        }).then(function (complaint) {
          ui.activity("Complaint logged", "call");
          return complaint.ticket_id;
        })
      : api("POST", "/api/v1/tickets", {
          subject: subject, customer_id: customerId, type: type, priority: priority,
          channel: "phone",
        }).then(function (ticket) {
          ui.activity("Ticket #" + ticket.number + " created", "call");
          return ticket.id;
        });
    return made.then(function (ticketId) { return attach(item, ticketId); });
  }

  /* The call joins the ticket (as a call summary, completed when the call is). */
  function attach(item, ticketId) {
    return api("POST", "/api/v1/tickets/" + ticketId + "/calls", { interaction_id: item.id }).then(function () {
      ui.updateInteraction({ id: item.id, ticket_id: ticketId });
    });
  }

  function loadTicket(item, ticketId) {
    var box = $("ticket-work");
    clear(box);
    box.appendChild(h("div", { className: "card ticket-card" },
      h("h3", { className: "card-title", id: "ticket-work-title" }, "Ticket"),
      h("p", { className: "muted small" }, "Loading…")));
    return api("GET", "/api/v1/tickets/" + ticketId).then(function (ticket) {
      if (shown.itemId !== item.id || shown.ticketId !== ticketId) return;  // moved on meanwhile
      renderTicket(item, ticket);
    }).catch(failed("Could not load the ticket"));
  }

  function renderTicket(item, ticket) {
    var box = $("ticket-work");
    clear(box);
    var status = h("select", { id: "ticket-status", className: "input input-small" }, options(STATUSES, ticket.status));
    var priority = h("select", { id: "ticket-priority", className: "input input-small" }, options(PRIORITIES, ticket.priority));
    [["status", status], ["priority", priority]].forEach(function (pair) {
      pair[1].addEventListener("change", function () {
        var change = {};
        change[pair[0]] = pair[1].value;
        api("PATCH", "/api/v1/tickets/" + ticket.id, change).then(function (updated) {
          ui.activity("Ticket #" + updated.number + " " + pair[0] + ": " + humanise(updated[pair[0]]), "info");
        }).catch(function (error) {
          pair[1].value = ticket[pair[0]];
          ui.toast("Could not change the " + pair[0] + ": " + error.message, "error");
        });
      });
    });
    var head = h("div", { className: "ticket-head" },
      h("h3", { className: "card-title", id: "ticket-work-title" },
        "Ticket #" + ticket.number + " · " + ticket.subject),
      h("div", { className: "inline-fields" },
        h("label", null, "Status ", status), h("label", null, "Priority ", priority),
        ticket.type === "complaint" ? h("span", { className: "badge", dataset: { kind: "warn" } }, "Complaint")
                                    : complaintButton(item, ticket)));
    box.appendChild(h("div", { className: "card ticket-card", dataset: { ticketId: ticket.id } },
      head,
      h("p", { id: "ticket-presence", className: "ticket-presence small", role: "status", "aria-live": "polite", hidden: true }),
      thread(ticket.messages || []),
      replyForm(ticket),
      noteForm(ticket)));
    viewTicket(ticket.id);
  }

  function complaintButton(item, ticket) {
    var category = h("select", { className: "input input-small", id: "complaint-category", "aria-label": "Complaint category" },
      options(COMPLAINT_CATEGORIES, "Service", String));
    var button = h("button", { type: "submit", className: "btn btn-secondary btn-small", id: "convert-complaint" },
      "Make it a complaint");
    var form = h("form", { className: "inline-fields" }, category, button);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      busy(button, api("POST", "/api/v1/complaints", {
        ticket_id: ticket.id, category: category.value, channel_received: channelReceived(item),
      })).then(function () {
        ui.activity("Complaint logged on #" + ticket.number, "call");
        loadTicket(item, ticket.id);
      }).catch(failed("Could not log the complaint"));
    });
    return form;
  }

  var MESSAGE_LABELS = {
    outbound: "Reply", auto_reply: "Automatic reply", note: "Internal note", call_summary: "Call",
    voicemail: "Voicemail", bounce: "Bounce", description: "Description",
  };

  function thread(messages) {
    if (!messages.length) return h("p", { className: "muted small empty" }, "No messages yet.");
    return h("ol", { className: "thread", "aria-label": "Conversation" }, messages.map(function (m) {
      var who = m.kind === "inbound" ? (m.from_address || "Customer") : (MESSAGE_LABELS[m.kind] || humanise(m.kind));
      var status = m.kind === "outbound" && m.delivery_status ? " · " + humanise(m.delivery_status) : "";
      return h("li", { className: "message", dataset: { kind: m.kind } },
        h("p", { className: "message-meta" }, h("strong", null, who), " · ",
          h("time", { datetime: m.created_at }, dateTime(m.created_at)), status),
        h("p", { className: "message-body" }, m.body || ""));
    }));
  }

  /* A form of one drafted text box and a submit button: an empty box only takes the focus;
   * the button is off while `send(text)` runs; once it succeeds the draft is cleared and
   * `done` runs. Returns the form and its box. */
  function textForm(o) {
    var box = drafted(h("textarea", { id: o.id, className: "input", rows: o.rows, maxlength: o.maxlength,
      placeholder: o.placeholder }), o.draftKey);
    var button = h("button", { type: "submit", className: "btn btn-small " + o.buttonClass, id: o.buttonId }, o.buttonText);
    var form = h("form", { className: o.className },
      h("label", { for: o.id, className: o.labelClass || null }, o.label), o.before || null, box,
      h("div", { className: "form-actions" }, button));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!box.value.trim()) { box.focus(); return; }
      busy(button, o.send(box.value)).then(function () {
        drafts.set(o.draftKey, "");
        return o.done();
      }).catch(failed(o.failure));
    });
    return { form: form, box: box };
  }

  function replyForm(ticket) {
    var key = "ticket:" + ticket.id + ":reply";
    var canned = h("select", { id: "canned-response", className: "input input-small", "aria-label": "Canned response" },
      h("option", { value: "" }, "Insert a canned response…"));
    var reply = textForm({
      className: "reply-form", id: "reply-body", label: "Reply", before: canned, rows: 5, maxlength: 100000,
      placeholder: "Write to the customer…", draftKey: key,
      buttonId: "send-reply", buttonClass: "btn-primary", buttonText: "Send reply",
      failure: "Could not send the reply",
      send: function (text) { return api("POST", "/api/v1/tickets/" + ticket.id + "/replies", { body: text }); },
      done: function () {
        setReplying(false);
        ui.activity("Reply sent on #" + ticket.number, "call");
        reloadTicket(ticket.id);
      },
    });
    var body = reply.box;
    body.addEventListener("focus", function () { setReplying(true); });
    body.addEventListener("blur", function () { setReplying(false); });
    loadCanned().then(function (list) {
      list.forEach(function (c) { canned.appendChild(h("option", { value: c.id }, c.name)); });
    });
    canned.addEventListener("change", function () {
      if (!canned.value) return;
      api("GET", "/api/v1/tickets/" + ticket.id + "/canned/" + canned.value).then(function (rendered) {
        body.value = (body.value ? body.value + "\n\n" : "") + rendered.body;
        drafts.set(key, body.value);
        canned.value = "";
        body.focus();
      }).catch(failed("Could not insert the canned response"));
    });
    return reply.form;
  }

  function noteForm(ticket) {
    return textForm({
      className: "note-form", id: "ticket-note", label: "Internal note", rows: 3, maxlength: 100000,
      placeholder: "Only colleagues see this.", draftKey: "ticket:" + ticket.id + ":note",
      buttonId: "add-ticket-note", buttonClass: "btn-secondary", buttonText: "Add internal note",
      failure: "Could not add the note",
      send: function (text) { return api("POST", "/api/v1/tickets/" + ticket.id + "/notes", { body: text }); },
      done: function () { reloadTicket(ticket.id); },
    }).form;
  }

  function reloadTicket(ticketId) {
    var item = ui.selected();
    if (item && item.interaction.ticket_id === ticketId) loadTicket(item, ticketId);
  }

  document.addEventListener("cc:work", onWork);

  // ---------------------------------------------------------------- on the screen pop

  function refreshPop(item, customerId) {
    return api("GET", "/api/v1/customers/" + customerId + "/history").then(function (pop) {
      ui.setScreenPop(item.id, pop);
    });
  }

  /* Name an unknown caller: one of the suggested matches, or a new customer. */
  function identify(item, customerId) {
    return api("PATCH", "/api/v1/interactions/" + item.id, { customer_id: customerId }).then(function (interaction) {
      ui.updateInteraction(interaction);
      return refreshPop(item, customerId);
    });
  }

  function customerNoteForm(item, customer) {
    return textForm({
      className: "note-form", id: "customer-note", label: "Note", labelClass: "visually-hidden", rows: 2,
      maxlength: 10000, placeholder: "A note on the customer's record", draftKey: "customer:" + customer.id + ":note",
      buttonId: "add-customer-note", buttonClass: "btn-secondary", buttonText: "Add note",
      failure: "Could not add the note",
      send: function (text) {
        return api("POST", "/api/v1/customers/" + customer.id + "/notes", { text: text.trim() });
      },
      done: function () {
        ui.activity("Note added for " + customer.name, "info");
        return refreshPop(item, customer.id);
      },
    }).form;
  }

  function quickCreate(item) {
    var written = item.interaction.channel && item.interaction.channel !== "voice" && item.interaction.channel !== "callback";
    var from = item.interaction.from || "";
    var name = h("input", { id: "new-customer-name", className: "input", maxlength: 200, placeholder: "Full name" });
    var contact = h("input", { id: "new-customer-contact", className: "input", maxlength: 200, value: from });
    var create = h("button", { type: "submit", className: "btn btn-primary btn-small", id: "create-customer" }, "Create customer");
    var form = h("form", { className: "quick-create" },
      h("label", { for: "new-customer-name" }, "New customer"), name,
      h("label", { for: "new-customer-contact" }, written ? "Email" : "Phone"), contact,
      h("div", { className: "form-actions" }, create));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!name.value.trim()) { name.focus(); return; }
      var body = { name: name.value.trim() };
      if (contact.value.trim()) body[written ? "emails" : "phones"] = [contact.value.trim()];
      busy(create, api("POST", "/api/v1/customers", body).then(function (customer) {
        ui.activity("Customer " + customer.name + " created", "info");
        return identify(item, customer.id);
      })).catch(failed("Could not create the customer"));
    });
    return form;
  }

  document.addEventListener("cc:pop", function (event) {
    popExtras(event.detail.item, event.detail.container);
  });

  function popExtras(item, container) {
    var pop = item.screenPop || {};
    if (pop.customer) {
      var notes = container.querySelector(".pop-notes");
      if (notes) notes.appendChild(customerNoteForm(item, pop.customer));
      return;
    }
    var profile = container.querySelector(".pop-unknown");
    if (!profile) return;
    container.querySelectorAll(".suggestion").forEach(function (row) {
      var id = Number(row.dataset.customerId);
      var pick = h("button", { type: "button", className: "btn btn-secondary btn-small" }, "This is them");
      pick.addEventListener("click", function () {
        busy(pick, identify(item, id)).catch(failed("Could not link the customer"));
      });
      row.appendChild(pick);
    });
    profile.appendChild(quickCreate(item));
  }

  // ---------------------------------------------------------------- search

  var lookup = { customerId: null };

  function searchTickets(q) {
    var filters = new FormData($("ticket-filters"));
    var query = new URLSearchParams();
    if (q) query.set("q", q);
    ["status", "sla", "queue_id"].forEach(function (name) {
      if (filters.get(name)) query.set(name, filters.get(name));
    });
    if (filters.get("mine")) query.set("assignee_id", String(MY_ID));
    query.set("limit", "25");
    return api("GET", "/api/v1/tickets?" + query.toString()).then(function (tickets) {
      var list = $("found-tickets");
      clear(list);
      if (!tickets.length) list.appendChild(h("li", { className: "muted small" }, "No tickets match."));
      tickets.forEach(function (t) {
        var open = h("button", { type: "button", className: "link record-main" }, t.subject);
        open.addEventListener("click", function () { showTicket(t); });
        list.appendChild(h("li", { className: "record" },
          h("span", { className: "record-ref" }, "#" + t.number), open,
          h("span", { className: "record-meta" }, humanise(t.status) + " · " + humanise(t.priority) +
            (t.next_breach_at ? " · due " + dateTime(t.next_breach_at) : ""))));
      });
    });
  }

  function search(q) {
    show($("search-panel"), true);
    show($("lookup"), false);
    var customers = q ? api("GET", "/api/v1/customers?limit=25&q=" + encodeURIComponent(q)).then(function (found) {
      var list = $("found-customers");
      clear(list);
      if (!found.length) list.appendChild(h("li", { className: "muted small" }, "No customers match."));
      found.forEach(function (c) {
        var open = h("button", { type: "button", className: "link record-main" }, c.name);
        open.addEventListener("click", function () { showCustomer(c.id, c.name); });
        list.appendChild(h("li", { className: "record" },
          h("span", { className: "record-ref" }, c.tier ? "Tier " + c.tier : ""), open,
          h("span", { className: "record-meta" }, (c.identities || []).map(function (i) { return i.value; }).join(" · "))));
      });
    }) : Promise.resolve(clear($("found-customers")));
    return Promise.all([customers, searchTickets(q)]).catch(failed("Search failed"));
  }

  function showCustomer(customerId, name) {
    return api("GET", "/api/v1/customers/" + customerId + "/history").then(function (pop) {
      lookup.customerId = customerId;
      $("lookup-title").textContent = name || (pop.customer && pop.customer.name) || "";
      show($("lookup-call"), true);
      ui.renderPop($("lookup-pop"), pop, null);
      show($("lookup"), true);
    }).catch(failed("Could not open the customer"));
  }

  function showTicket(ticket) {
    return api("GET", "/api/v1/tickets/" + ticket.id).then(function (detail) {
      lookup.customerId = detail.customer_id;
      $("lookup-title").textContent = "#" + detail.number + " · " + detail.subject;
      show($("lookup-call"), Boolean(detail.customer_id));
      var pop = $("lookup-pop");
      clear(pop);
      pop.appendChild(h("p", { className: "muted small" },
        humanise(detail.status) + " · " + humanise(detail.priority) + " · " + humanise(detail.type)));
      pop.appendChild(thread(detail.messages || []));
      show($("lookup"), true);
    }).catch(failed("Could not open the ticket"));
  }

  $("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    search($("search-q").value.trim());
  });
  $("ticket-filters").addEventListener("change", function () {
    searchTickets($("search-q").value.trim()).catch(failed("Search failed"));
  });
  $("search-close").addEventListener("click", function () {
    show($("search-panel"), false);
    $("search-q").focus();
  });
  $("lookup-call").addEventListener("click", function (event) {
    if (!lookup.customerId) return;
    var call = window.Softphone && window.Softphone.call
      ? window.Softphone.call(lookup.customerId)
      : api("POST", "/api/v1/customers/" + lookup.customerId + "/call", {});
    busy(event.currentTarget, Promise.resolve(call)).then(function () {
      ui.activity("Calling the customer: your phone rings first", "call");
    }).catch(failed("Could not place the call"));
  });

  loadQueues();
  // Work the console showed before this script ran (its events came too early for us).
  var early = ui.selected();
  if (early) {
    onWork({ detail: { item: early } });
    var shownPop = $("current-pop");
    if (shownPop.firstChild && !shownPop.querySelector("#customer-note, .quick-create")) {
      popExtras(early, shownPop);
    }
  }
  document.body.dataset.workspaceReady = "true";  // search and tools answer from here on
})();
