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

  // Doctor search: on small screens the filters fold away behind a "Filters" button (they stay
  // open when a filter has an error). Without this script they are simply always shown.
  document.querySelectorAll("[data-mm-filters-toggle]").forEach(function (button) {
    var panel = document.getElementById(button.getAttribute("aria-controls"));
    if (!panel) {
      return;
    }
    var label = button.querySelector("span");
    var active = Array.prototype.filter.call(panel.querySelectorAll("select, input"), function (field) {
      return field.value && field.type !== "hidden" && field.type !== "submit";
    }).length;
    if (label && active) {
      label.textContent = window.interpolate(window.gettext("Filters (%(count)s)"), { count: active }, true);
    }
    var setOpen = function (open) {
      panel.classList.toggle("mm-collapsed", !open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    };
    setOpen(panel.hasAttribute("data-mm-has-errors"));
    button.hidden = false;
    button.addEventListener("click", function () {
      setOpen(panel.classList.contains("mm-collapsed"));
    });
  });

  // Doctor search: a new sort order applies at once (the Search button does the same without JS).
  document.querySelectorAll("form[data-mm-search-form] select[name='sort']").forEach(function (select) {
    select.addEventListener("change", function () {
      select.form.requestSubmit();
    });
  });

  // Portal lists (education, certifications, positions): "Add another" copies the empty row
  // Django renders in a <template> (its "__prefix__" becomes the next index) and counts it in
  // the formset's TOTAL_FORMS. One empty row is always there, so the page works without this.
  document.querySelectorAll("[data-mm-formset]").forEach(function (section) {
    var prefix = section.getAttribute("data-mm-formset");
    var total = section.querySelector("input[name='" + prefix + "-TOTAL_FORMS']");
    var max = section.querySelector("input[name='" + prefix + "-MAX_NUM_FORMS']");
    var rows = section.querySelector("[data-mm-formset-rows]");
    var template = section.querySelector("template[data-mm-formset-template]");
    var button = section.querySelector("[data-mm-formset-add]");
    if (!total || !rows || !template || !button) {
      return;
    }
    var refresh = function () {
      button.disabled = Boolean(max) && Number(total.value) >= Number(max.value);
    };
    button.hidden = false;
    refresh();
    button.addEventListener("click", function () {
      var index = Number(total.value);
      rows.insertAdjacentHTML("beforeend", template.innerHTML.replace(/__prefix__/g, String(index)));
      total.value = String(index + 1);
      refresh();
      var first = rows.lastElementChild && rows.lastElementChild.querySelector("input, select, textarea");
      if (first) {
        first.focus();
      }
    });
  });
})();
