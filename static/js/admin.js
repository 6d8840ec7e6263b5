/* The configuration pages (/admin/users, /admin/queues): lists from the JSON API, forms that
 * send it, and the API's field errors shown next to the inputs they name (422/409 bodies:
 * {"error": {"message", "fields": {name: [messages] or {...}}}}).
 */
(function () {
  "use strict";

  var CC = window.CC;
  var $ = CC.$;
  var h = CC.h;

  // ---------------------------------------------------------------- shared helpers

  function pageStatus(text, ok) {
    var box = $("page-status");
    box.textContent = text;
    box.className = "alert " + (ok ? "alert-success" : "alert-error");
    box.hidden = !text;
  }

  /* A field's messages as one line: nested errors (a skill, an endpoint's address, a step)
   * keep the name of what they are about unless it is only the field's own part. */
  var OWN_PARTS = { address: 1, kind: 1, value: 1, key: 1, _schema: 1 };

  function flatten(messages) {
    if (messages === null || messages === undefined) return "";
    if (typeof messages === "string") return messages;
    if (Array.isArray(messages)) return messages.map(flatten).join(" ");
    return Object.keys(messages).map(function (key) {
      var text = flatten(messages[key]);
      if (OWN_PARTS[key]) return text;
      if (/^\d+$/.test(key)) return "Step " + (Number(key) + 1) + ": " + text;
      return key + ": " + text;
    }).join(" ");
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (line) {
      line.textContent = "";
      line.hidden = true;
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
    });
    form.querySelectorAll(".field-invalid").forEach(function (box) {
      box.classList.remove("field-invalid");
    });
    var status = $(form.id + "-status");
    if (status) { status.textContent = ""; status.hidden = true; }
  }

  /* Put each error next to its field; what names no field goes in the form's alert. */
  function showErrors(form, error) {
    clearErrors(form);
    var fields = error.fields || {};
    var unplaced = [];
    var first = null;
    Object.keys(fields).forEach(function (name) {
      var line = form.querySelector('[data-error-for="' + name + '"]');
      var text = flatten(fields[name]);
      if (!line) { unplaced.push(name === "_schema" ? text : name + ": " + text); return; }
      line.textContent = text;
      line.hidden = false;
      form.querySelectorAll('[data-field="' + name + '"]').forEach(function (input) {
        input.setAttribute("aria-invalid", "true");
        var box = input.closest(".field, .field-group");
        if (box) box.classList.add("field-invalid");
        if (!first) first = input;
      });
    });
    var status = $(form.id + "-status");
    if (status) {
      var summary = Object.keys(fields).length && !unplaced.length
        ? "Please correct the fields marked below."
        : error.message || "That did not work.";
      status.textContent = [summary].concat(unplaced).join(" ");
      status.hidden = false;
    }
    if (first) first.focus();
  }

  function busy(form, on) {
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.disabled = on;
    });
  }

  /* Send a form's body; on success run `done`, on failure show the errors next to fields. */
  function submit(form, method, path, body, done) {
    busy(form, true);
    clearErrors(form);
    return CC.api(method, path, body).then(function (data) {
      busy(form, false);
      done(data);
    }, function (error) {
      busy(form, false);
      showErrors(form, error);
    });
  }

  function field(form, name) {
    return form.querySelector('[name="' + name + '"]');
  }

  /* "lang:en=5, product:cards" -> {"lang:en": 5, "product:cards": 1}; a level that is not a
   * whole number is sent as typed, so the API names the mistake. */
  function parseSkills(text) {
    var skills = {};
    String(text || "").split(",").forEach(function (part) {
      part = part.trim();
      if (!part) return;
      var at = part.indexOf("=");
      var name = (at < 0 ? part : part.slice(0, at)).trim();
      var level = at < 0 ? "1" : part.slice(at + 1).trim();
      skills[name] = /^\d+$/.test(level) ? Number(level) : level;
    });
    return skills;
  }

  function formatSkills(skills) {
    return Object.keys(skills || {}).sort().map(function (name) {
      return name + "=" + skills[name];
    }).join(", ");
  }

  function numberOrRaw(value) {
    var text = String(value).trim();
    return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
  }

  // ---------------------------------------------------------------- users page

  function usersPage() {
    var rows = $("users-rows");
    var isAdmin = document.body.dataset.role === "admin";
    var myId = Number(document.body.dataset.userId);
    var editForm = $("edit-form");
    var passwordForm = $("password-form");
    var createForm = $("create-form");
    var editing = null;

    function capacityOf(form) {
      var capacity = {};
      form.querySelectorAll('[data-field="capacity"]').forEach(function (input) {
        if (input.value.trim() !== "") capacity[input.dataset.channel] = numberOrRaw(input.value);
      });
      return capacity;
    }

    function endpointOf(form) {
      var kind = field(form, "endpoint-kind").value;
      var address = field(form, "endpoint-address").value.trim();
      return kind === "browser" && !address ? { kind: kind } : { kind: kind, address: address };
    }

    function load() {
      var query = [];
      var role = $("filter-role").value;
      var active = $("filter-active").value;
      if (role) query.push("role=" + encodeURIComponent(role));
      if (active) query.push("active=" + active);
      return CC.api("GET", "/api/v1/users" + (query.length ? "?" + query.join("&") : ""))
        .then(render, function (error) { pageStatus(error.message, false); });
    }

    function render(users) {
      CC.clear(rows);
      if (!users.length) {
        rows.appendChild(h("tr", null, h("td", { colspan: 8, className: "muted" }, "No users.")));
        return;
      }
      users.forEach(function (user) {
        var canEdit = isAdmin || user.role === "agent";
        var actions = h("td", { className: "row-actions" });
        if (canEdit) {
          actions.appendChild(h("button", {
            type: "button", className: "btn btn-secondary btn-small",
            "aria-label": "Edit " + user.username, dataset: { edit: user.username },
          }, "Edit"));
          actions.lastChild.addEventListener("click", function () { openEdit(user); });
        }
        if (isAdmin && user.id !== myId) {
          var verb = user.active ? "Deactivate" : "Reactivate";
          var toggle = h("button", {
            type: "button", className: "btn btn-ghost btn-small",
            "aria-label": verb + " " + user.username,
          }, verb);
          toggle.addEventListener("click", function () { setActive(user, !user.active); });
          actions.appendChild(toggle);
        }
        var endpoint = user.voice_endpoint || {};
        rows.appendChild(h("tr", { dataset: { username: user.username } },
          h("td", null, h("strong", null, user.display_name), h("div", { className: "muted small" }, user.username)),
          h("td", null, CC.humanise(user.role)),
          h("td", null, user.team || "–"),
          h("td", null, formatSkills(user.skills) || "–"),
          h("td", null, Object.keys(user.capacity || {}).map(function (ch) {
            return ch + " " + user.capacity[ch];
          }).join(", ")),
          h("td", null, endpoint.kind === "browser" ? "Browser" : (endpoint.address || "–")),
          h("td", null, user.active ? CC.humanise(user.status) : h("span", { className: "badge" }, "Deactivated")),
          actions));
      });
    }

    function setActive(user, active) {
      if (!active && !window.confirm("Deactivate " + user.username + "? They are signed out at once.")) return;
      CC.api("POST", "/api/v1/users/" + user.id + (active ? "/reactivate" : "/deactivate")).then(function () {
        pageStatus((active ? "Reactivated " : "Deactivated ") + user.username + ".", true);
        load();
      }, function (error) { pageStatus(error.message, false); });
    }

    function openEdit(user) {
      editing = user;
      clearErrors(editForm);
      $("edit-title").textContent = "Edit " + user.display_name + " (" + user.username + ")";
      if (isAdmin) {
        field(editForm, "display_name").value = user.display_name;
        field(editForm, "role").value = user.role;
        var endpoint = user.voice_endpoint || {};
        field(editForm, "endpoint-kind").value = endpoint.kind || "browser";
        field(editForm, "endpoint-address").value = endpoint.kind === "browser" ? "" : (endpoint.address || "");
      }
      field(editForm, "team").value = user.team || "";
      field(editForm, "skills").value = formatSkills(user.skills);
      editForm.querySelectorAll('[data-field="capacity"]').forEach(function (input) {
        var value = (user.capacity || {})[input.dataset.channel];
        input.value = value === undefined ? "" : value;
      });
      if (passwordForm) {
        clearErrors(passwordForm);
        field(passwordForm, "password").value = "";
      }
      $("edit-panel").hidden = false;
      (field(editForm, "display_name") || field(editForm, "team")).focus();
    }

    editForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!editing) return;
      var team = field(editForm, "team").value.trim();
      var body = {
        team: team || null,
        skills: parseSkills(field(editForm, "skills").value),
        capacity: capacityOf(editForm),
      };
      if (isAdmin) {
        body.display_name = field(editForm, "display_name").value.trim();
        body.role = field(editForm, "role").value;
        body.voice_endpoint = endpointOf(editForm);
      }
      submit(editForm, "PATCH", "/api/v1/users/" + editing.id, body, function (user) {
        pageStatus("Saved " + user.username + ".", true);
        $("edit-panel").hidden = true;
        editing = null;
        load();
      });
    });
    $("edit-cancel").addEventListener("click", function () {
      $("edit-panel").hidden = true;
      editing = null;
    });

    if (passwordForm) {
      passwordForm.addEventListener("submit", function (event) {
        event.preventDefault();
        if (!editing) return;
        var input = field(passwordForm, "password");
        var who = editing.username;
        submit(passwordForm, "POST", "/api/v1/users/" + editing.id + "/password",
          { password: input.value }, function () {
            input.value = "";
            pageStatus("New password set for " + who + ".", true);
          });
      });
    }

    if (createForm) {
      createForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var display = field(createForm, "display_name").value.trim();
        var team = field(createForm, "team").value.trim();
        var body = {
          username: field(createForm, "username").value.trim(),
          password: field(createForm, "password").value,
          role: field(createForm, "role").value,
          skills: parseSkills(field(createForm, "skills").value),
          capacity: capacityOf(createForm),
          voice_endpoint: endpointOf(createForm),
        };
        if (display) body.display_name = display;
        if (team) body.team = team;
        submit(createForm, "POST", "/api/v1/users", body, function (user) {
          createForm.reset();
          pageStatus("Created " + user.username + ".", true);
          load();
        });
      });
    }

    $("filter-role").addEventListener("change", load);
    $("filter-active").addEventListener("change", load);
    load();
  }

  // ---------------------------------------------------------------- queues page

  function queuesPage() {
    var rows = $("queues-rows");
    var form = $("queue-form");
    var editing = null;

    function load() {
      return CC.api("GET", "/api/v1/queues").then(render, function (error) {
        pageStatus(error.message, false);
      });
    }

    function steps(queue) {
      return (queue.overflow_steps || []).map(function (step) {
        var what = step.relax ? "relax " + formatSkills(step.relax)
          : step.add_teams ? "add teams " + step.add_teams.join(", ")
          : "move to " + step.queue;
        return "after " + step.after_s + "s: " + what;
      }).join("; ");
    }

    function render(queues) {
      CC.clear(rows);
      queues.forEach(function (queue) {
        var edit = h("button", {
          type: "button", className: "btn btn-secondary btn-small",
          "aria-label": "Edit " + queue.name,
        }, "Edit");
        edit.addEventListener("click", function () { openEdit(queue); });
        rows.appendChild(h("tr", { dataset: { queue: queue.name } },
          h("td", null, h("strong", null, queue.name),
            queue.restricted ? h("span", { className: "muted small" }, " restricted") : null),
          h("td", null, (queue.channels || []).join(", ")),
          h("td", null, formatSkills(queue.required_skills) || "Anyone"),
          h("td", null, CC.humanise(queue.strategy)),
          h("td", null, queue.offer_timeout_s + " s"),
          h("td", null, queue.wrapup_s + " s"),
          h("td", null, Math.round(queue.service_level_target * 100) + " % in " +
            queue.service_level_threshold_s + " s"),
          h("td", null, steps(queue) || "–"),
          h("td", null, queue.estimate ? String(queue.estimate.waiting) : "–"),
          h("td", null, edit)));
      });
      if (!queues.length) {
        rows.appendChild(h("tr", null, h("td", { colspan: 10, className: "muted" }, "No queues yet.")));
      }
    }

    function openEdit(queue) {
      editing = queue;
      clearErrors(form);
      $("queue-title").textContent = "Edit " + queue.name;
      field(form, "required_skills").value = formatSkills(queue.required_skills);
      field(form, "teams").value = (queue.teams || []).join(", ");
      field(form, "restricted").checked = Boolean(queue.restricted);
      field(form, "strategy").value = queue.strategy;
      ["offer_timeout_s", "wrapup_s", "service_level_threshold_s", "service_level_target"]
        .forEach(function (name) { field(form, name).value = queue[name]; });
      field(form, "overflow_steps").value = JSON.stringify(queue.overflow_steps || []);
      $("queue-panel").hidden = false;
      field(form, "required_skills").focus();
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!editing) return;
      var stepsText = field(form, "overflow_steps").value.trim();
      var overflow;
      try {
        overflow = stepsText ? JSON.parse(stepsText) : [];
      } catch (e) {
        showErrors(form, { message: "Some fields are invalid.",
                           fields: { overflow_steps: ["Not valid JSON: " + e.message] } });
        return;
      }
      var body = {
        required_skills: parseSkills(field(form, "required_skills").value),
        teams: field(form, "teams").value.split(",").map(function (team) { return team.trim(); })
          .filter(Boolean),
        restricted: field(form, "restricted").checked,
        strategy: field(form, "strategy").value,
        overflow_steps: overflow,
      };
      ["offer_timeout_s", "wrapup_s", "service_level_threshold_s", "service_level_target"]
        .forEach(function (name) { body[name] = numberOrRaw(field(form, name).value); });
      submit(form, "PATCH", "/api/v1/queues/" + editing.id, body, function (queue) {
        pageStatus("Saved " + queue.name + ".", true);
        $("queue-panel").hidden = true;
        editing = null;
        load();
      });
    });
    $("queue-cancel").addEventListener("click", function () {
      $("queue-panel").hidden = true;
      editing = null;
    });
    load();
  }

  // The calendar, SLA policy and IVR flow pages (config_docs.js) build on these.
  CC.forms = { pageStatus: pageStatus, clearErrors: clearErrors, busy: busy, field: field,
               numberOrRaw: numberOrRaw };

  if ($("users-rows")) usersPage();
  if ($("queues-rows")) queuesPage();
})();
