// Inviting a guest from the consultation room (templates/consultations/includes/guest_invite.html):
// create the one-time link, show it once to copy, withdraw it. The API is
// /api/v1/consultations/<room>/guests/ (docs/api.md → Consultations); the doctor admits the guest
// from the waiting room like anyone else (static/js/consultation.js).
(function () {
  "use strict";

  // Words come from Django's JavaScript catalogue (djangojs, /jsi18n/, loaded by base.html).
  var gettext = window.gettext;

  var box = document.querySelector("[data-mm-guest-invite]");
  if (!box) {
    return;
  }
  var api = box.getAttribute("data-api");
  var csrf = box.querySelector("input[name=csrfmiddlewaretoken]").value;
  var $ = function (selector) {
    return box.querySelector(selector);
  };
  var el = {
    open: $("[data-mm-guest-open]"),
    form: $("[data-mm-guest-form]"),
    submit: $("[data-mm-guest-submit]"),
    cancel: $("[data-mm-guest-cancel]"),
    current: $("[data-mm-guest-current]"),
    name: $("[data-mm-guest-name]"),
    relationship: $("[data-mm-guest-relationship]"),
    state: $("[data-mm-guest-state]"),
    linkRow: $("[data-mm-guest-link-row]"),
    link: $("[data-mm-guest-link]"),
    linkNote: $("[data-mm-guest-link-note]"),
    copy: $("[data-mm-guest-copy]"),
    revoke: $("[data-mm-guest-revoke]"),
    error: $("[data-mm-guest-error]"),
  };
  var current = null;

  var STATES = {
    open: gettext("link not used yet"),
    used: gettext("link used"),
    expired: gettext("link expired"),
  };
  var RELATIONSHIPS = {
    interpreter: gettext("Interpreter"),
    family: gettext("Family member"),
    caregiver: gettext("Caregiver"),
    other: gettext("Guest"),
  };

  var request = function (method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (response) {
      if (response.status === 204) {
        return null;
      }
      return response.json().then(function (data) {
        if (!response.ok) {
          var error = new Error((data && data.error && data.error.message) || gettext("Something went wrong. Try again."));
          error.fields = (data && data.error && data.error.fields) || {};
          throw error;
        }
        return data;
      });
    });
  };

  var showError = function (message) {
    el.error.textContent = message || "";
    el.error.hidden = !message;
  };

  var render = function () {
    var active = current && current.state !== "revoked";
    el.open.hidden = Boolean(active) || !el.form.hidden;
    el.current.hidden = !active;
    if (!active) {
      return;
    }
    el.name.textContent = current.name;
    el.relationship.textContent = RELATIONSHIPS[current.relationship] || current.relationship;
    el.state.textContent = STATES[current.state] || current.state;
    el.linkRow.hidden = !current.link;
    el.linkNote.hidden = !current.link;
    el.link.value = current.link || "";
  };

  var setFormOpen = function (open) {
    el.form.hidden = !open;
    el.open.setAttribute("aria-expanded", open ? "true" : "false");
    render();
    if (open) {
      el.form.querySelector("[name=name]").focus();
    }
  };

  el.open.addEventListener("click", function () {
    showError("");
    setFormOpen(true);
  });
  el.cancel.addEventListener("click", function () {
    setFormOpen(false);
    el.open.focus();
  });

  el.form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = {
      name: el.form.elements.name.value.trim(),
      relationship: el.form.elements.relationship.value,
      email: el.form.elements.email.value.trim(),
    };
    if (!data.name) {
      showError(gettext("Write the guest's name."));
      el.form.elements.name.focus();
      return;
    }
    el.submit.disabled = true;
    showError("");
    request("POST", api, data)
      .then(function (invite) {
        current = invite;
        el.form.reset();
        setFormOpen(false);
        el.link.focus();
        el.link.select();
      })
      .catch(function (error) {
        var fields = error.fields || {};
        var first = Object.keys(fields)[0];
        showError(first ? fields[first][0] : error.message);
      })
      .then(function () {
        el.submit.disabled = false;
      });
  });

  el.copy.addEventListener("click", function () {
    var done = function () {
      el.copy.textContent = gettext("Copied");
      window.setTimeout(function () {
        el.copy.textContent = gettext("Copy");
      }, 2000);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(el.link.value).then(done, function () {
        el.link.select();
      });
    } else {
      el.link.select();
    }
  });

  el.revoke.addEventListener("click", function () {
    if (!current) {
      return;
    }
    el.revoke.disabled = true;
    request("DELETE", api + current.id + "/")
      .then(function () {
        current = null;
        showError("");
        render();
        el.open.focus();
      })
      .catch(function (error) {
        showError(error.message);
      })
      .then(function () {
        el.revoke.disabled = false;
      });
  });

  var refresh = function () {
    request("GET", api)
      .then(function (invites) {
        var latest =
          (invites || []).filter(function (invite) {
            return invite.state !== "revoked";
          })[0] || null;
        if (latest && current && latest.id === current.id && latest.state === "open") {
          latest.link = current.link; // shown once: keep it on this page until it is used
        }
        current = latest;
        render();
      })
      .catch(function () {
        render();
      });
  };

  // The guest arriving in the room has used the link (static/js/consultation.js tells us).
  document.addEventListener("mm:presence", function (event) {
    if (event.detail && event.detail.role === "guest") {
      refresh();
    }
  });

  refresh();
})();
