// Appointment pages: the hold countdown and the date-override form. Loaded as an external
// script (the Content-Security-Policy forbids inline scripts); every page works without it.
(function () {
  "use strict";

  // The hold countdown. The server renders "Held until 10:42"; this adds the minutes and seconds
  // left and, at zero, says the hold expired and disables the form that needed the hold.
  // The server's clock decides (data-mm-now), so a wrong clock on the device does not matter.
  document.querySelectorAll("[data-mm-hold]").forEach(function (hold) {
    var expires = Date.parse(hold.getAttribute("data-mm-expires"));
    var serverNow = Date.parse(hold.getAttribute("data-mm-now"));
    var box = hold.querySelector("[data-mm-countdown]");
    var value = hold.querySelector("[data-mm-countdown-value]");
    var expiredNote = hold.querySelector("[data-mm-hold-expired]");
    if (isNaN(expires) || isNaN(serverNow) || !box || !value) {
      return;
    }
    var skew = serverNow - Date.now();
    var timer = null;
    var pad = function (n) {
      return (n < 10 ? "0" : "") + n;
    };
    var expire = function () {
      value.textContent = "0:00";
      box.classList.add("is-expired");
      if (expiredNote) {
        expiredNote.hidden = false;
      }
      document.querySelectorAll("[data-mm-hold-form]").forEach(function (form) {
        form.querySelectorAll("input, textarea, select, button").forEach(function (field) {
          field.disabled = true;
        });
        form.setAttribute("aria-disabled", "true");
        form.classList.add("is-expired");
      });
    };
    var tick = function () {
      var left = Math.ceil((expires - (Date.now() + skew)) / 1000);
      if (left <= 0) {
        window.clearInterval(timer);
        expire();
        return;
      }
      value.textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      value.setAttribute("aria-label", window.interpolate(window.gettext("%(minutes)s minutes %(seconds)s seconds left"), { minutes: Math.floor(left / 60), seconds: left % 60 }, true));
      box.classList.toggle("is-ending", left <= 60);
    };
    box.hidden = false;
    tick();
    timer = window.setInterval(tick, 1000);
  });

  // Date overrides: the From/To times only matter for "Special hours".
  document.querySelectorAll("[data-mm-override-form]").forEach(function (form) {
    var hours = form.querySelector("[data-mm-override-hours]");
    var radios = form.querySelectorAll("input[name='kind']");
    if (!hours || !radios.length) {
      return;
    }
    var refresh = function () {
      var checked = form.querySelector("input[name='kind']:checked");
      var special = Boolean(checked) && checked.value === "hours";
      hours.hidden = !special && !hours.querySelector(".mm-field-invalid");
    };
    radios.forEach(function (radio) {
      radio.addEventListener("change", refresh);
    });
    refresh();
  });
})();
