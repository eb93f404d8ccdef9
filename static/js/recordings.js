// The appointment page's consultation recordings (templates/consultations/includes/recordings.html):
// "Copy share link" asks the API for a time-limited signed link (POST /api/v1/recordings/<id>/links/),
// shows it and copies it to the clipboard.
(function () {
  "use strict";

  // Words come from Django's JavaScript catalogue (djangojs, /jsi18n/, loaded by base.html).
  var gettext = window.gettext;
  var interpolate = window.interpolate;

  var card = document.querySelector("[data-mm-recordings]");
  if (!card) {
    return;
  }
  var csrf = (card.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";

  card.querySelectorAll("[data-mm-share]").forEach(function (button) {
    button.addEventListener("click", function () {
      var item = button.closest("[data-recording]");
      var result = item.querySelector("[data-mm-share-result]");
      var field = item.querySelector("[data-mm-share-url]");
      var note = item.querySelector("[data-mm-share-note]");
      button.disabled = true;
      window
        .fetch(button.getAttribute("data-mm-share"), {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
          body: JSON.stringify({ minutes: 60 }),
        })
        .then(function (response) {
          return response.json().then(function (body) {
            if (!response.ok) {
              throw new Error(body && body.error ? body.error.message : gettext("The link could not be created."));
            }
            return body;
          });
        })
        .then(function (link) {
          result.hidden = false;
          field.value = link.url;
          field.select();
          var until = new Date(link.expires_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
          var copied = navigator.clipboard && window.isSecureContext ? navigator.clipboard.writeText(link.url) : Promise.reject(new Error("no clipboard"));
          return copied
            .then(function () {
              note.textContent = interpolate(gettext("Copied. The link works until %(until)s."), { until: until }, true);
            })
            .catch(function () {
              note.textContent = interpolate(gettext("Copy the link above. It works until %(until)s."), { until: until }, true);
            });
        })
        .catch(function (error) {
          result.hidden = false;
          note.textContent = error.message;
        })
        .then(function () {
          button.disabled = false;
        });
    });
  });
})();
