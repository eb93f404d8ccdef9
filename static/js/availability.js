// Live availability on the booking page: a socket to /ws/doctors/<slug>/availability/ says when
// some of the doctor's times were held, booked or freed (docs/signaling.md, "Live
// availability"). A time someone else took disappears at once; then the day strip and the day's
// times are re-rendered by the server (the page itself, asked for its slot picker only), so
// buffers, daily caps and freed times come out exactly as on a fresh page. The page works the
// same without this script; a stale time pressed is refused with the next free times.
(function () {
  "use strict";

  var live = document.querySelector("[data-mm-live-slots]");
  if (!live || !("WebSocket" in window) || !window.fetch) {
    return;
  }
  var socketPath = live.getAttribute("data-mm-socket");
  var refreshUrl = live.getAttribute("data-mm-refresh");
  var durationMs = Number(live.getAttribute("data-mm-duration")) * 60000;
  var windowStart = Date.parse(live.getAttribute("data-mm-window-start"));
  var windowEnd = Date.parse(live.getAttribute("data-mm-window-end"));
  var goneBox = document.querySelector("[data-mm-slot-gone]");
  var goneText = document.querySelector("[data-mm-slot-gone-text]");
  var status = document.querySelector("[data-mm-live-status]");

  // The time the patient is looking at: the last one pointed at or focused.
  var lookedAt = null;
  var remember = function (event) {
    var slot = event.target.closest && event.target.closest("button.mm-slot[name='start']");
    if (slot) {
      lookedAt = { value: slot.value, label: slot.querySelector(".mm-slot-time").textContent.trim() };
    }
  };
  live.addEventListener("pointerover", remember);
  live.addEventListener("focusin", remember);

  var slotButtons = function () {
    return Array.prototype.slice.call(live.querySelectorAll("button.mm-slot[name='start']"));
  };

  var tellIfLookedAtIsGone = function () {
    if (!lookedAt || !goneBox || !goneText) {
      return;
    }
    var stillThere = slotButtons().some(function (slot) {
      return slot.value === lookedAt.value;
    });
    if (!stillThere) {
      goneText.textContent = window.interpolate(
        window.gettext("The time you were looking at, %(time)s, has just been taken by someone else. Please choose another time."),
        { time: lookedAt.label },
        true
      );
      goneBox.hidden = false;
      lookedAt = null;
    }
  };

  // A held or booked time: every time of this page overlapping it is gone (one doctor's
  // appointments never overlap), whatever the buffers; the re-render then settles the rest.
  var removeOverlapping = function (start, end) {
    var removed = 0;
    slotButtons().forEach(function (slot) {
      var slotStart = Date.parse(slot.value);
      if (slotStart < end && slotStart + durationMs > start) {
        slot.remove();
        removed += 1;
      }
    });
    return removed;
  };

  // Re-render at most one at a time; changes arriving meanwhile ask for one more afterwards,
  // so a burst of events costs two requests, not one per event.
  var fetching = false;
  var again = false;
  var timer = null;
  var refresh = function () {
    timer = null;
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    window
      .fetch(refreshUrl, { credentials: "same-origin", headers: { "X-MediMeet-Fragment": "slot-picker" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var hadFocus = live.contains(document.activeElement) ? document.activeElement.value : null;
        live.innerHTML = html;
        if (hadFocus) {
          var same = live.querySelector("button.mm-slot[value='" + hadFocus + "']");
          if (same) {
            same.focus();
          }
        }
        tellIfLookedAtIsGone();
        if (status) {
          status.textContent = window.gettext("The free times were updated.");
        }
      })
      .catch(function () {
        // Keep what is shown: pressing a time that has gone is refused with the next free ones.
      })
      .then(function () {
        fetching = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  };
  var refreshSoon = function () {
    if (timer === null) {
      timer = window.setTimeout(refresh, 100);
    }
  };

  var onChange = function (frame) {
    var start = Date.parse(frame.start);
    var end = Date.parse(frame.end);
    if ((frame.state === "held" || frame.state === "booked") && removeOverlapping(start, end)) {
      tellIfLookedAtIsGone();
    }
    var from = Date.parse(frame.refetch_from);
    var until = Date.parse(frame.refetch_until);
    if (from < windowEnd && until > windowStart) {
      refreshSoon();
    }
  };

  // Reconnect with exponential backoff (1 s doubling to 30 s, with jitter); after a
  // reconnection the times are re-rendered, since changes may have been missed meanwhile.
  var attempts = 0;
  var connect = function () {
    var socket = new WebSocket((window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + socketPath);
    socket.addEventListener("open", function () {
      live.setAttribute("data-mm-live", "open");
      if (attempts > 0) {
        refreshSoon();
      }
      attempts = 0;
    });
    socket.addEventListener("message", function (message) {
      var frame;
      try {
        frame = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (frame.type === "slots.changed") {
        onChange(frame);
      }
    });
    socket.addEventListener("close", function (event) {
      live.setAttribute("data-mm-live", "closed");
      if (event.code === 4404) {
        return; // the doctor no longer takes bookings: nothing will change here
      }
      var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.75 + Math.random() / 2);
      attempts += 1;
      window.setTimeout(connect, delay);
    });
  };
  connect();
  live.setAttribute("data-mm-live", "connecting");
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      refreshSoon(); // back from the browser's cache: the times shown may be old
    }
  });
})();
