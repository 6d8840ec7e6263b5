/* The softphone: the agent's calls in the browser (Twilio Voice JavaScript SDK).
 *
 * Plain browser JavaScript, no build step (static/vendor/twilio-voice.min.js defines
 * window.Twilio). It asks the API where the agent's calls ring
 * (GET /api/v1/agents/me/endpoint). When that is this browser and the server can sign
 * Voice SDK tokens, it fetches one (POST /api/v1/agents/me/voice-token), registers a
 * Twilio.Device and renews the token before it expires; an incoming call (the agent's leg
 * of a call they accepted, or of their own click-to-call) shows Answer / Decline, then Mute
 * and Hang up. Otherwise it shows where the calls ring instead. The agent changes that with
 * PATCH /api/v1/agents/me/endpoint. Writes use the login session with the page's CSRF token.
 *
 * window.Softphone.call(customerId, phone?) starts a click-to-call
 * (POST /api/v1/customers/<id>/call): the agent's endpoint rings first, then the customer.
 * It returns a Promise of the interaction, or rejects with an Error carrying status, code
 * and fields from the API's error body.
 */
(function () {
  "use strict";

  var ENDPOINT_URL = "/api/v1/agents/me/endpoint";
  var TOKEN_URL = "/api/v1/agents/me/voice-token";
  var RETRY_MS = [5000, 15000, 30000, 60000];
  // The SDK fires tokenWillExpire 10 s before expiry once it has reached Twilio; this timer
  // renews the token even when that event cannot come (say, while the network is down).
  var RENEW_BEFORE_EXPIRY_MS = 5000;
  // Registering takes a second or two; after this long the card says Twilio is not answering.
  var REGISTER_PATIENCE_MS = 10000;
  var CLICK_TO_CALL_ANSWER_MS = 45000; // an incoming leg this soon after a click-to-call is ours
  // Token errors the SDK reports (expired, invalid): a new token is the cure.
  var TOKEN_ERRORS = [20101, 20103, 20104, 31204, 31205];
  var KIND_LABELS = {
    phone: { label: "Phone number", placeholder: "+44 7911 123456", autocomplete: "tel" },
    sip: { label: "SIP address", placeholder: "sip:me@pbx.example.com", autocomplete: "off" },
  };

  var panel = document.getElementById("softphone");
  if (!panel) return;

  var state = {
    endpoint: null,
    device: null,
    call: null,
    renewTimer: null,
    retryTimer: null,
    patienceTimer: null,
    retries: 0,
    clickToCallUntil: 0,
  };

  function $(id) {
    return document.getElementById(id);
  }

  // ---------------------------------------------------------------- the API

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* fetch() with the session (and the CSRF token on writes); resolves to the JSON body,
   * rejects with an Error carrying the API's {status, code, fields}. */
  function api(method, url, body) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) return data;
        var detail = (data && data.error) || {};
        var error = new Error(detail.message || "The request failed (" + response.status + ").");
        error.status = response.status;
        error.code = detail.code || "error";
        error.fields = detail.fields || {};
        throw error;
      });
    });
  }

  function failed(error) {
    if (error && error.code === "csrf_failed") {
      return "The page's security token has expired: reload the page.";
    }
    if (error && error.status === 401) return "You are signed out: reload the page.";
    return (error && error.message) || "Something went wrong.";
  }

  // ---------------------------------------------------------------- what the card shows

  function show(name, text, detail) {
    panel.dataset.state = name;
    $("softphone-state").textContent = text;
    var detailNode = $("softphone-detail");
    detailNode.textContent = detail || "";
    detailNode.hidden = !detail;
  }

  function showCall() {
    var call = state.call;
    var box = $("softphone-call");
    box.hidden = !call;
    if (!call) return;
    var live = call.status() === "open" || call.status() === "reconnecting";
    $("softphone-call-title").textContent = live ? "On a call" : "Incoming call";
    $("softphone-answer").hidden = live;
    $("softphone-decline").hidden = live;
    $("softphone-mute").hidden = !live;
    $("softphone-hangup").hidden = !live;
    var muted = call.isMuted();
    $("softphone-mute").setAttribute("aria-pressed", muted ? "true" : "false");
    $("softphone-mute").textContent = muted ? "Unmute" : "Mute";
  }

  function showDevice() {
    if (state.call) {
      var live = state.call.status() === "open" || state.call.status() === "reconnecting";
      show(live ? "on-call" : "incoming", live ? "On a call" : "Ringing in this browser");
      return;
    }
    var device = state.device;
    if (!device) return;
    var deviceState = device.state;
    if (deviceState === "registered") {
      clearTimeout(state.patienceTimer);
      show("ready", "Ready: calls ring in this browser");
    } else if (deviceState === "registering") {
      show("connecting", "Connecting to Twilio…");
      awaitRegistration(device);
    }
  }

  /* Say so when Twilio does not answer: the SDK keeps retrying without an error event. */
  function awaitRegistration(device) {
    clearTimeout(state.patienceTimer);
    state.patienceTimer = setTimeout(function () {
      if (state.device !== device || device.state === "registered" || state.call) return;
      show("error", "Twilio is not answering",
           "Calls cannot ring in this browser yet. The softphone keeps trying.");
    }, REGISTER_PATIENCE_MS);
  }

  // ---------------------------------------------------------------- the endpoint

  function fillForm(endpoint) {
    var radio = $("softphone-kind-" + endpoint.kind);
    if (radio) radio.checked = true;
    $("softphone-address").value = endpoint.kind === "browser" ? "" : endpoint.address || "";
    showAddressRow(endpoint.kind);
    showFormError("");
  }

  function chosenKind() {
    var checked = document.querySelector('#softphone-endpoint-form input[name="kind"]:checked');
    return checked ? checked.value : "browser";
  }

  function showAddressRow(kind) {
    var row = $("softphone-address-row");
    var meta = KIND_LABELS[kind];
    row.hidden = !meta;
    if (!meta) return;
    $("softphone-address-label").textContent = meta.label;
    var input = $("softphone-address");
    input.placeholder = meta.placeholder;
    input.setAttribute("autocomplete", meta.autocomplete);
  }

  function showFormError(text) {
    var node = $("softphone-endpoint-error");
    node.textContent = text;
    node.hidden = !text;
  }

  function loadEndpoint() {
    return api("GET", ENDPOINT_URL).then(applyEndpoint, function (error) {
      show("error", "Could not read where your calls ring.", failed(error));
      retryLater(loadEndpoint);
    });
  }

  function applyEndpoint(endpoint) {
    state.endpoint = endpoint;
    fillForm(endpoint);
    if (endpoint.kind !== "browser") {
      stopDevice();
      show("elsewhere", "Calls ring at " + endpoint.masked_address,
           "Choose this browser below to take calls here.");
      return;
    }
    if (!endpoint.softphone_configured) {
      stopDevice();
      show("off", "Softphone not configured",
           "Ask an administrator to set it up, or have your calls ring at a phone number.");
      return;
    }
    if (!window.Twilio || !window.Twilio.Device) {
      show("error", "The softphone could not load.", "Reload the page to try again.");
      return;
    }
    if (!state.device) startDevice();
  }

  function saveEndpoint(event) {
    event.preventDefault();
    var kind = chosenKind();
    var body = { kind: kind };
    if (kind !== "browser") body.address = $("softphone-address").value.trim();
    $("softphone-save").disabled = true;
    showFormError("");
    api("PATCH", ENDPOINT_URL, body).then(function (endpoint) {
      $("softphone-settings").open = false;
      applyEndpoint(endpoint);
    }, function (error) {
      var fields = error.fields || {};
      var message = (fields.address || fields.kind || [])[0];
      showFormError(message || failed(error));
    }).then(function () {
      $("softphone-save").disabled = false;
    });
  }

  // ---------------------------------------------------------------- the Device

  function retryLater(action) {
    clearTimeout(state.retryTimer);
    var wait = RETRY_MS[Math.min(state.retries, RETRY_MS.length - 1)];
    state.retries += 1;
    state.retryTimer = setTimeout(action, wait);
  }

  function logLevel() {
    // Errors reach the card through the Device's events; the SDK's own logging stays off
    // unless asked for (localStorage "softphone.logLevel" = "debug", for support).
    try {
      return window.localStorage.getItem("softphone.logLevel") || "silent";
    } catch (e) {
      return "silent";
    }
  }

  function scheduleRenewal(voiceToken) {
    clearTimeout(state.renewTimer);
    var wait = Math.max(1000, voiceToken.ttl_s * 1000 - RENEW_BEFORE_EXPIRY_MS);
    state.renewTimer = setTimeout(renewToken, wait);
  }

  function startDevice() {
    clearTimeout(state.retryTimer);
    show("connecting", "Connecting to Twilio…");
    api("POST", TOKEN_URL).then(function (voiceToken) {
      if (state.device || !state.endpoint || state.endpoint.kind !== "browser") return;
      var device = new window.Twilio.Device(voiceToken.token, {
        logLevel: logLevel(),
        codecPreferences: ["opus", "pcmu"],
        closeProtection: "A call is in progress in the softphone: leave the page anyway?",
      });
      state.device = device;
      state.retries = 0;
      scheduleRenewal(voiceToken);
      device.on("registering", showDevice);
      device.on("registered", function () {
        state.retries = 0;
        showDevice();
      });
      device.on("unregistered", function () {
        if (state.device !== device) return;
        show("connecting", "Reconnecting to Twilio…");
        awaitRegistration(device);
      });
      device.on("error", function (twilioError) { deviceError(device, twilioError); });
      device.on("tokenWillExpire", renewToken);
      device.on("incoming", incoming);
      device.register().catch(function (error) { deviceError(device, error); });
    }, function (error) {
      show("error", "No softphone token.", failed(error));
      // Not configured, or the calls ring elsewhere now: read the endpoint again to say which.
      retryLater(error.status === 503 || error.status === 409 ? loadEndpoint : startDevice);
    });
  }

  function deviceError(device, error) {
    if (state.device !== device) return;
    var code = error && error.code;
    if (TOKEN_ERRORS.indexOf(code) !== -1) {
      renewToken();
      return;
    }
    if (state.call) return; // the call's own events say what happens to it
    var text = (error && (error.description || error.message)) || "unknown error";
    show("error", "Not connected to Twilio", text + (code ? " (" + code + ")" : "") +
         ". The softphone keeps trying.");
  }

  function renewToken() {
    if (!state.device) return;
    var device = state.device;
    api("POST", TOKEN_URL).then(function (voiceToken) {
      if (state.device !== device) return;
      device.updateToken(voiceToken.token);
      scheduleRenewal(voiceToken);
    }, function (error) {
      if (state.device !== device) return;
      if (error.status === 503 || error.status === 409) {
        loadEndpoint();
        return;
      }
      show("error", "Could not renew the softphone's token.", failed(error));
      if (error.code !== "csrf_failed" && error.status !== 401) retryLater(renewToken);
    });
  }

  function stopDevice() {
    clearTimeout(state.renewTimer);
    clearTimeout(state.retryTimer);
    clearTimeout(state.patienceTimer);
    var device = state.device;
    state.device = null;
    state.call = null;
    showCall();
    if (device) device.destroy();
  }

  // ---------------------------------------------------------------- calls

  function incoming(call) {
    if (state.call) {
      call.reject();
      return;
    }
    state.call = call;
    var settle = function () {
      if (state.call !== call) return;
      state.call = null;
      showCall();
      showDevice();
    };
    call.on("accept", function () { showCall(); showDevice(); });
    call.on("reconnecting", function () { show("on-call", "Reconnecting the call…"); });
    call.on("reconnected", function () { showDevice(); });
    call.on("mute", showCall);
    call.on("cancel", settle);
    call.on("disconnect", settle);
    call.on("reject", settle);
    call.on("error", function (error) {
      show("error", "Call problem", (error && (error.description || error.message)) || "");
    });
    showCall();
    showDevice();
    if (Date.now() < state.clickToCallUntil) {
      state.clickToCallUntil = 0;
      answer(); // the agent just asked for this call
    }
  }

  function answer() {
    if (state.call) state.call.accept();
  }

  function decline() {
    if (state.call) state.call.reject();
  }

  function toggleMute() {
    if (state.call) state.call.mute(!state.call.isMuted());
  }

  function hangUp() {
    if (state.call) state.call.disconnect();
  }

  /* Click-to-call a customer (their first number, or `phone`, which must be theirs). */
  function callCustomer(customerId, phone) {
    var body = {};
    if (phone) body.phone = phone;
    if (state.device && state.endpoint && state.endpoint.kind === "browser") {
      state.clickToCallUntil = Date.now() + CLICK_TO_CALL_ANSWER_MS;
    }
    var url = "/api/v1/customers/" + encodeURIComponent(customerId) + "/call";
    return api("POST", url, body).then(function (interaction) {
      var where = state.endpoint && state.endpoint.kind !== "browser"
        ? state.endpoint.masked_address : "this browser";
      show(panel.dataset.state, $("softphone-state").textContent,
           "Calling: " + where + " rings first, then the customer.");
      return interaction;
    }, function (error) {
      state.clickToCallUntil = 0;
      show(panel.dataset.state, $("softphone-state").textContent, "Call not placed: " + failed(error));
      throw error;
    });
  }

  // ---------------------------------------------------------------- start

  $("softphone-endpoint-form").addEventListener("submit", saveEndpoint);
  Array.prototype.forEach.call(
    document.querySelectorAll('#softphone-endpoint-form input[name="kind"]'),
    function (radio) {
      radio.addEventListener("change", function () {
        showAddressRow(chosenKind());
        showFormError("");
      });
    }
  );
  $("softphone-answer").addEventListener("click", answer);
  $("softphone-decline").addEventListener("click", decline);
  $("softphone-mute").addEventListener("click", toggleMute);
  $("softphone-hangup").addEventListener("click", hangUp);

  window.Softphone = { call: callCustomer, refresh: loadEndpoint };
  loadEndpoint();
})();
