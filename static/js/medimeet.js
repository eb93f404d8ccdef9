// MediMeet progressive enhancement. Every page works without this file; it only smooths edges.
// Loaded as an external script because the Content-Security-Policy forbids inline handlers.
(function () {
  "use strict";

  // A second click on a slow submit would send the form twice (two sign-ups, two uploads).
  // The button is marked busy rather than disabled: a disabled button drops its name/value
  // from the POST, and allauth tells actions apart by them.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") {
      return;
    }
    if (form.dataset.mmSubmitting === "true") {
      event.preventDefault();
      return;
    }
    form.dataset.mmSubmitting = "true";
    var button = event.submitter;
    if (button) {
      button.setAttribute("aria-busy", "true");
      button.classList.add("mm-busy");
    }
    var release = function () {
      delete form.dataset.mmSubmitting;
      if (button) {
        button.removeAttribute("aria-busy");
        button.classList.remove("mm-busy");
      }
    };
    // Coming back from the browser cache, or a response that did not navigate (a download),
    // must leave the form usable again.
    window.addEventListener("pageshow", release, { once: true });
    window.setTimeout(release, 10000);
  });

  // On sign-up, preselect the browser's time zone while the field still shows the default.
  document.querySelectorAll("form[data-mm-detect-timezone] select[name='timezone']").forEach(function (select) {
    var zone;
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (error) {
      return;
    }
    if (!zone || select.value !== "UTC") {
      return;
    }
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === zone) {
        select.value = zone;
        return;
      }
    }
  });

  // Show the chosen file name next to the picture upload and enable its button.
  document.querySelectorAll("[data-mm-picture-form]").forEach(function (form) {
    var input = form.querySelector("input[type='file']");
    var button = form.querySelector("button[type='submit']");
    if (!input || !button) {
      return;
    }
    button.disabled = !input.files.length;
    input.addEventListener("change", function () {
      button.disabled = !input.files.length;
    });
  });
})();
