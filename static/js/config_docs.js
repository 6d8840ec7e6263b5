/* The configuration pages for documents the API validates as a whole: business calendars
 * (/admin/calendars), SLA policies (/admin/sla-policies) and IVR flows (/admin/ivr-flows).
 *
 * The lists are rendered by the server; these scripts fill the forms from the API, send them,
 * and put the API's 422 errors next to what they name. An error's path (windows.mon.0.1,
 * escalations.0.actions.0.kind, nodes.menu.options) goes to the most specific error line
 * of the form (data-error-for="windows.mon"); an input whose data-field is the whole path is
 * marked and its label starts the message. Anything no line claims is listed at the top of
 * the form (or in its data-error-catchall list). After a save the page reloads, so the list
 * always shows what the server has.
 */
(function () {
  "use strict";

  var CC = window.CC;
  var $ = CC.$;
  var h = CC.h;
  var forms = CC.forms;
  var FLASH = "cc:config-flash";

  // ---------------------------------------------------------------- shared helpers

  function reloadWith(text) {
    try { window.sessionStorage.setItem(FLASH, text); } catch (e) { /* shown by nobody */ }
    window.location.reload();
  }

  function showFlash() {
    var text = null;
    try {
      text = window.sessionStorage.getItem(FLASH);
      window.sessionStorage.removeItem(FLASH);
    } catch (e) { /* storage disabled */ }
    if (text) forms.pageStatus(text, true);
  }

  /* Every message of the API's nested `fields` with its path. marshmallow's "value" level
   * (the errors of a dict's values) and "_schema" (the object's own) are not path parts. */
  function leaves(messages, path, out) {
    if (messages === null || messages === undefined) return out;
    if (typeof messages === "string") {
      out.push({ path: path, text: messages });
    } else if (Array.isArray(messages)) {
      messages.forEach(function (m) { leaves(m, path, out); });
    } else {
      Object.keys(messages).forEach(function (key) {
        leaves(messages[key], key === "value" || key === "_schema" ? path : path.concat([key]), out);
      });
    }
    return out;
  }

  /* ["escalations", "0", "actions", "1", "kind"] -> "escalations[0].actions[1].kind" */
  function pathText(path) {
    return path.reduce(function (text, part) {
      if (/^\d+$/.test(part)) return text + "[" + part + "]";
      if (part === "key") return text + " (the name)";
      return text ? text + "." + part : part;
    }, "");
  }

  function byAttr(root, attr, value) {
    return root.querySelector("[" + attr + '="' + CSS.escape(value) + '"]');
  }

  function markInvalid(input) {
    input.setAttribute("aria-invalid", "true");
    var box = input.closest(".field, .field-group");
    if (box) box.classList.add("field-invalid");
  }

  /* Put each error of an API failure next to what it names (see the top of this file). */
  function showErrors(form, error) {
    forms.clearErrors(form);
    var unplaced = [];
    var first = null;
    leaves(error.fields || {}, [], []).forEach(function (item) {
      var line = null;
      var at = item.path.length;
      for (; at > 0 && !line; at--) line = byAttr(form, "data-error-for", item.path.slice(0, at).join("."));
      if (line) at += 1; else at = 0;
      if (!line) line = form.querySelector("[data-error-catchall]");
      if (!line) {
        unplaced.push((item.path.length ? pathText(item.path) + ": " : "") + item.text);
        return;
      }
      var exact = item.path.length ? byAttr(form, "data-field", item.path.join(".")) : null;
      var label = line.hasAttribute("data-error-paths") ? pathText(item.path)
        : exact && at < item.path.length ? exact.getAttribute("aria-label")
        : pathText(item.path.slice(at));
      var text = label ? label + ": " + item.text : item.text;
      if (line.tagName === "UL") {
        line.appendChild(h("li", null, text));
      } else {
        line.textContent = line.textContent ? line.textContent + " " + text : text;
      }
      line.hidden = false;
      var inputs = exact ? [exact] : Array.prototype.slice.call(form.querySelectorAll(
        ["input", "select", "textarea"].map(function (tag) {
          return tag + '[aria-describedby~="' + CSS.escape(line.id) + '"]';
        }).join(", ")));
      inputs.forEach(function (input) {
        markInvalid(input);
        if (!first) first = input;
      });
    });
    var status = $(form.id + "-status");
    if (status) {
      var summary = unplaced.length ? error.message || "That did not work."
        : "Please correct the fields marked below.";
      status.textContent = [summary].concat(unplaced).join(" ");
      status.hidden = false;
    }
    if (first) first.focus();
  }

  /* Send a form's body; on success run `done`, on failure show the errors in the form. */
  function submit(form, method, path, body, done) {
    forms.busy(form, true);
    forms.clearErrors(form);
    return CC.api(method, path, body).then(function (data) {
      forms.busy(form, false);
      done(data);
    }, function (error) {
      forms.busy(form, false);
      showErrors(form, error);
    });
  }

  function fail(form, name, message) {
    var fields = {};
    fields[name] = [message];
    showErrors(form, { message: message, fields: fields });
  }

  function parseJson(form, name, text) {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (e) {
      fail(form, name, "Not valid JSON: " + e.message);
      return { ok: false };
    }
  }

  function commaList(text) {
    return String(text || "").split(",").map(function (part) { return part.trim(); })
      .filter(Boolean);
  }

  function checkedValues(form, name) {
    return Array.prototype.map.call(
      form.querySelectorAll('input[type=checkbox][name="' + CSS.escape(name) + '"]:checked'),
      function (box) { return box.value; });
  }

  function setChecked(form, name, values) {
    var wanted = (values || []).map(String);
    form.querySelectorAll('input[type=checkbox][name="' + CSS.escape(name) + '"]').forEach(function (box) {
      box.checked = wanted.indexOf(box.value) >= 0;
    });
  }

  function onClick(selector, handler) {
    document.querySelectorAll(selector).forEach(function (button) {
      button.addEventListener("click", function () { handler(button); });
    });
  }

  // ---------------------------------------------------------------- time zones

  /* How far `zone` is ahead of UTC at the instant `utcMs`, in milliseconds. */
  function zoneOffset(zone, utcMs) {
    var parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(utcMs)).forEach(function (part) { parts[part.type] = part.value; });
    var asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day),
      Number(parts.hour), Number(parts.minute), Number(parts.second));
    return asUtc - Math.floor(utcMs / 1000) * 1000;
  }

  /* "2026-03-02T16:30" read as a wall-clock time in `zone` -> an ISO UTC string. */
  function zonedToUtc(local, zone) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local || "");
    if (!m) return null;
    var guess = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
    var first = guess - zoneOffset(zone, guess);
    return new Date(guess - zoneOffset(zone, first)).toISOString();
  }

  function formatInZone(iso, zone) {
    return new Date(iso).toLocaleString("en-GB", {
      timeZone: zone, weekday: "short", year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit",
    }) + " (" + zone + ")";
  }

  // ---------------------------------------------------------------- calendars page

  function calendarsPage() {
    var form = $("calendar-form");
    var editing = null;

    function windowBox(day) { return byAttr(form, "data-windows-for", day); }

    /* Each window's inputs carry their path (windows.mon.0.1) and a label naming them. */
    function renumber(day) {
      var box = windowBox(day);
      var rows = box.querySelectorAll(".window-row");
      var dayName = box.dataset.dayName;
      rows.forEach(function (row, index) {
        var suffix = rows.length > 1 ? " (" + (index + 1) + ")" : "";
        var inputs = row.querySelectorAll("input");
        inputs[0].dataset.field = "windows." + day + "." + index + ".0";
        inputs[0].setAttribute("aria-label", dayName + " opens" + suffix);
        inputs[1].dataset.field = "windows." + day + "." + index + ".1";
        inputs[1].setAttribute("aria-label", dayName + " closes" + suffix);
        row.querySelector("button").setAttribute("aria-label", "Remove hours" + suffix + " on " + dayName);
      });
      byAttr(form, "data-closed-for", day).hidden = rows.length > 0;
    }

    function addWindow(day, open, close) {
      var described = "calendar-form-windows-" + day + "-error";
      function time(value) {
        var input = h("input", { type: "time", className: "input input-small", "aria-describedby": described });
        input.value = value || "";
        return input;
      }
      var remove = h("button", { type: "button", className: "btn btn-ghost btn-small" }, "Remove");
      var row = h("div", { className: "window-row inline-fields" },
        time(open), h("span", { "aria-hidden": "true" }, "–"), time(close === "24:00" ? "00:00" : close), remove);
      remove.addEventListener("click", function () {
        row.remove();
        renumber(day);
      });
      windowBox(day).appendChild(row);
      renumber(day);
      return row;
    }

    function dateBox(name) { return byAttr(form, "data-dates-for", name); }

    function renumberDates(name) {
      var box = dateBox(name);
      box.querySelectorAll(".date-row").forEach(function (row, index) {
        var input = row.querySelector("input");
        input.dataset.field = name + "." + index;
        input.setAttribute("aria-label", box.dataset.label + " " + (index + 1));
        row.querySelector("button").setAttribute("aria-label", "Remove " + box.dataset.label.toLowerCase() + " " + (index + 1));
      });
    }

    function addDate(name, value) {
      var input = h("input", { type: "date", className: "input input-small",
                               "aria-describedby": "calendar-form-" + name + "-error" });
      input.value = value || "";
      var remove = h("button", { type: "button", className: "btn btn-ghost btn-small" }, "Remove");
      var row = h("div", { className: "date-row inline-fields" }, input, remove);
      remove.addEventListener("click", function () {
        row.remove();
        renumberDates(name);
      });
      dateBox(name).appendChild(row);
      renumberDates(name);
      return input;
    }

    function fill(calendar) {
      forms.clearErrors(form);
      ["name", "timezone", "country", "subdivision"].forEach(function (name) {
        forms.field(form, name).value = calendar[name] || "";
      });
      form.querySelectorAll("[data-windows-for]").forEach(function (box) {
        var day = box.dataset.windowsFor;
        CC.clear(box);
        ((calendar.windows || {})[day] || []).forEach(function (w) { addWindow(day, w[0], w[1]); });
        renumber(day);
      });
      ["closed_dates", "open_dates"].forEach(function (name) {
        CC.clear(dateBox(name));
        (calendar[name] || []).forEach(function (value) { addDate(name, value); });
      });
    }

    function startNew() {
      editing = null;
      $("calendar-title").textContent = "New calendar";
      var office = {};
      ["mon", "tue", "wed", "thu", "fri"].forEach(function (day) { office[day] = [["09:00", "17:00"]]; });
      fill({ windows: office });
    }

    function collect() {
      var windows = {};
      form.querySelectorAll("[data-windows-for]").forEach(function (box) {
        var rows = Array.prototype.map.call(box.querySelectorAll(".window-row"), function (row) {
          var inputs = row.querySelectorAll("input");
          var close = inputs[1].value;
          return [inputs[0].value, close === "00:00" ? "24:00" : close];  // midnight closes the day
        });
        if (rows.length) windows[box.dataset.windowsFor] = rows;
      });
      var body = {
        name: forms.field(form, "name").value.trim(),
        timezone: forms.field(form, "timezone").value.trim(),
        country: forms.field(form, "country").value.trim().toUpperCase() || null,
        subdivision: forms.field(form, "subdivision").value.trim() || null,
        windows: windows,
      };
      ["closed_dates", "open_dates"].forEach(function (name) {
        body[name] = Array.prototype.map.call(dateBox(name).querySelectorAll("input"), function (input) {
          return input.value;
        }).filter(Boolean);
      });
      return body;
    }

    if (form) {
      onClick("[data-add-window]", function (button) {
        var day = button.dataset.addWindow;
        addWindow(day, "09:00", "17:00").querySelector("input").focus();
      });
      onClick("[data-add-date]", function (button) { addDate(button.dataset.addDate).focus(); });
      onClick("[data-edit-calendar]", function (button) {
        CC.api("GET", "/api/v1/calendars/" + button.dataset.editCalendar).then(function (calendar) {
          editing = calendar;
          $("calendar-title").textContent = "Edit " + calendar.name;
          fill(calendar);
          $("calendar-panel").scrollIntoView();
          forms.field(form, "name").focus();
        }, function (error) { forms.pageStatus(error.message, false); });
      });
      $("calendar-new").addEventListener("click", startNew);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var body = collect();
        var path = "/api/v1/calendars" + (editing ? "/" + editing.id : "");
        submit(form, editing ? "PUT" : "POST", path, body, function (calendar) {
          reloadWith("Saved calendar " + calendar.name + ".");
        });
      });
      startNew();
    }

    var due = $("due-form");
    due.addEventListener("submit", function (event) {
      event.preventDefault();
      var select = forms.field(due, "calendar");
      var option = select.options[select.selectedIndex];
      if (!option) return;
      var zone = option.dataset.timezone;
      var local = forms.field(due, "start").value;
      var start;
      try {
        start = zonedToUtc(local, zone);
      } catch (e) {
        start = null;
      }
      if (!start) { fail(due, "start", "Give a date and time."); return; }
      var result = $("due-result");
      result.textContent = "";
      submit(due, "POST", "/api/v1/calendars/" + select.value + "/add-minutes",
        { start: start, minutes: forms.numberOrRaw(forms.field(due, "minutes").value) },
        function (answer) {
          result.textContent = answer.business_minutes + " working minutes on " + option.textContent +
            " are up at " + formatInZone(answer.due_at, zone) + ".";
          result.dataset.dueAt = answer.due_at;
        });
    });
  }

  // ---------------------------------------------------------------- SLA policies page

  var CONDITION_LISTS = ["priority", "type", "customer_tier", "queue_id"];
  var CONDITION_TEXTS = ["channel", "tags"];

  function policiesPage() {
    var form = $("policy-form");
    if (!form) return;  // supervisors read the list
    var editing = null;

    function fill(policy) {
      forms.clearErrors(form);
      forms.field(form, "name").value = policy.name || "";
      forms.field(form, "position").value = policy.position === undefined ? 0 : policy.position;
      forms.field(form, "active").checked = policy.active !== false;
      forms.field(form, "calendar_id").value = policy.calendar_id ? String(policy.calendar_id) : "";
      var conditions = policy.conditions || {};
      CONDITION_LISTS.forEach(function (key) { setChecked(form, "conditions." + key, conditions[key]); });
      CONDITION_TEXTS.forEach(function (key) {
        forms.field(form, "conditions." + key).value = (conditions[key] || []).join(", ");
      });
      form.querySelectorAll("input[data-metric]").forEach(function (input) {
        var target = ((policy.targets || {})[input.dataset.priority] || {})[input.dataset.metric];
        input.value = target ? target.minutes : "";
        var business = forms.field(form, input.name.replace(/\.minutes$/, ".business"));
        business.value = target && target.business === false ? "false" : "true";
      });
      form.querySelectorAll('input[type=checkbox][name^="pauses."]').forEach(function (box) {
        var metric = box.name.slice("pauses.".length);
        box.checked = ((policy.pauses || {})[metric] || []).indexOf(box.value) >= 0;
      });
      forms.field(form, "escalations").value = JSON.stringify(policy.escalations || [], null, 2);
    }

    function startNew() {
      editing = null;
      $("policy-title").textContent = "New SLA policy";
      fill({});
    }

    function collect() {
      var escalations = parseJson(form, "escalations", forms.field(form, "escalations").value.trim() || "[]");
      if (!escalations.ok) return null;
      var conditions = {};
      CONDITION_LISTS.forEach(function (key) {
        var values = checkedValues(form, "conditions." + key);
        if (key === "queue_id") values = values.map(Number);
        if (values.length) conditions[key] = values;
      });
      CONDITION_TEXTS.forEach(function (key) {
        var values = commaList(forms.field(form, "conditions." + key).value);
        if (values.length) conditions[key] = values;
      });
      var targets = {};
      form.querySelectorAll("input[data-metric]").forEach(function (input) {
        if (input.value.trim() === "") return;
        var business = forms.field(form, input.name.replace(/\.minutes$/, ".business")).value === "true";
        targets[input.dataset.priority] = targets[input.dataset.priority] || {};
        targets[input.dataset.priority][input.dataset.metric] = {
          minutes: forms.numberOrRaw(input.value), business: business,
        };
      });
      var pauses = {};
      form.querySelectorAll('input[type=checkbox][name^="pauses."]:checked').forEach(function (box) {
        var metric = box.name.slice("pauses.".length);
        (pauses[metric] = pauses[metric] || []).push(box.value);
      });
      var calendar = forms.field(form, "calendar_id").value;
      var position = forms.field(form, "position").value.trim();
      return {
        name: forms.field(form, "name").value.trim(),
        position: position === "" ? 0 : forms.numberOrRaw(position),
        active: forms.field(form, "active").checked,
        calendar_id: calendar ? Number(calendar) : null,
        conditions: conditions,
        targets: targets,
        pauses: pauses,
        escalations: escalations.value,
      };
    }

    onClick("[data-edit-policy]", function (button) {
      CC.api("GET", "/api/v1/sla/policies/" + button.dataset.editPolicy).then(function (policy) {
        editing = policy;
        $("policy-title").textContent = "Edit " + policy.name;
        fill(policy);
        $("policy-panel").scrollIntoView();
        forms.field(form, "name").focus();
      }, function (error) { forms.pageStatus(error.message, false); });
    });
    onClick("[data-delete-policy]", function (button) {
      var name = button.dataset.name;
      if (!window.confirm("Delete the SLA policy " + name + "? Its open tickets fall to the next matching policy.")) return;
      CC.api("DELETE", "/api/v1/sla/policies/" + button.dataset.deletePolicy).then(function () {
        reloadWith("Deleted the SLA policy " + name + ".");
      }, function (error) { forms.pageStatus(error.message, false); });
    });
    $("policy-new").addEventListener("click", startNew);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = collect();
      if (!body) return;
      var path = "/api/v1/sla/policies" + (editing ? "/" + editing.id : "");
      submit(form, editing ? "PUT" : "POST", path, body, function (policy) {
        reloadWith("Saved SLA policy " + policy.name + ".");
      });
    });
    startNew();
  }

  // ---------------------------------------------------------------- IVR flows page

  function flowsPage() {
    var form = $("flow-form");

    onClick("[data-open-flow]", function (button) {
      CC.api("GET", "/api/v1/ivr/flows/" + button.dataset.openFlow).then(function (flow) {
        var text = JSON.stringify(flow.definition, null, 2);
        if (form) {
          forms.clearErrors(form);
          forms.field(form, "definition").value = text;
          $("flow-title").textContent = "Add a flow version (from " + flow.name + " version " + flow.version + ")";
          $("flow-panel").scrollIntoView();
          forms.field(form, "definition").focus();
        } else {
          $("flow-view-title").textContent = flow.name + " version " + flow.version;
          $("flow-view").textContent = text;
          $("flow-view-panel").hidden = false;
          $("flow-view-panel").scrollIntoView();
        }
      }, function (error) { forms.pageStatus(error.message, false); });
    });
    onClick("[data-activate-flow]", function (button) {
      CC.api("POST", "/api/v1/ivr/flows/" + button.dataset.activateFlow + "/activate").then(function (flow) {
        reloadWith("Version " + flow.version + " of " + flow.name + " is now the active flow.");
      }, function (error) { forms.pageStatus(error.message, false); });
    });
    if (!form) return;

    var file = forms.field(form, "file");
    var editor = forms.field(form, "definition");
    file.addEventListener("change", function () {
      forms.clearErrors(form);
      var chosen = file.files[0];
      if (!chosen) return;
      var limit = Number(file.dataset.maxBytes);
      if (chosen.size > limit) {
        fail(form, "file", chosen.name + " is " + Math.ceil(chosen.size / 1024) + " KB; the limit is " +
          Math.round(limit / 1024) + " KB.");
        file.value = "";
        return;
      }
      var reader = new FileReader();
      reader.onload = function () {
        editor.value = String(reader.result);
        forms.pageStatus("Loaded " + chosen.name + ": check it, then save.", true);
      };
      reader.onerror = function () { fail(form, "file", "Could not read " + chosen.name + "."); };
      reader.readAsText(chosen);
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var parsed = parseJson(form, "definition", editor.value);
      if (!parsed.ok) return;
      var activate = forms.field(form, "activate").checked;
      submit(form, "POST", "/api/v1/ivr/flows", { definition: parsed.value, activate: activate },
        function (flow) {
          reloadWith("Saved version " + flow.version + " of " + flow.name +
            (flow.is_active ? "; it is now the active flow." : " (not active)."));
        });
    });
  }

  showFlash();
  if ($("calendars-rows")) calendarsPage();
  if ($("policies-rows")) policiesPage();
  if ($("flows-rows")) flowsPage();
  document.body.dataset.configReady = "true";  // browser tests wait for this before typing
})();
