// The pre-meeting check (templates/consultations/check.html): camera and microphone (with a
// preview and a level meter), speakers (a generated tone), the connection to the server (pings
// over a websocket) and the routes WebRTC finds with the configured ICE servers.
// Each row of the results list carries data-status: pending, pass, warn, fail or todo.
(function () {
  "use strict";

  // Words come from Django's JavaScript catalogue (djangojs, /jsi18n/, loaded by base.html).
  var gettext = window.gettext;
  var ngettext = window.ngettext;
  var interpolate = window.interpolate;

  var root = document.getElementById("mm-check");
  if (!root) {
    return;
  }
  var $ = function (selector) {
    return document.querySelector(selector);
  };
  var video = $("[data-mm-check-video]");
  var videoOff = $("[data-mm-check-video-off]");
  var videoText = $("[data-mm-check-video-text]");
  var level = $("[data-mm-level]");
  var levelBar = $("[data-mm-level-bar]");
  var levelNote = $("[data-mm-level-note]");
  var summary = $("[data-mm-check-summary]");
  var toneQuestion = $("[data-mm-tone-question]");
  var iceServers = [];
  try {
    iceServers = JSON.parse(document.getElementById("mm-ice-servers").textContent) || [];
  } catch (error) {
    iceServers = [];
  }

  var STATUS_WORDS = { pending: gettext("checking"), pass: gettext("passed"), warn: gettext("needs attention"), fail: gettext("failed"), todo: gettext("not tested yet") };
  var stream = null;
  var audio = null; // { context, analyser, source, frame }
  var heardSound = false;
  var run = 0;

  var row = function (key) {
    return root.querySelector("[data-check='" + key + "']");
  };

  var set = function (key, status, detail) {
    var item = row(key);
    item.setAttribute("data-status", status);
    item.querySelector("[data-mm-check-status]").textContent = STATUS_WORDS[status];
    item.querySelector("[data-mm-check-detail]").textContent = detail;
    renderSummary();
  };

  var renderSummary = function () {
    var counts = { pending: 0, pass: 0, warn: 0, fail: 0, todo: 0 };
    root.querySelectorAll("[data-check]").forEach(function (item) {
      counts[item.getAttribute("data-status")] += 1;
    });
    var text;
    var tone;
    if (counts.pending) {
      text = gettext("Checking…");
      tone = "";
    } else if (counts.fail) {
      text = interpolate(ngettext("One check needs your attention before the consultation.", "%(count)s checks need your attention before the consultation.", counts.fail), { count: counts.fail }, true);
      tone = "is-fail";
    } else if (counts.todo) {
      text = gettext("Almost done: play the test sound to check your speakers.");
      tone = "is-todo";
    } else if (counts.warn) {
      text = gettext("You can join, but read the notes below.");
      tone = "is-warn";
    } else {
      text = gettext("Everything is ready for your consultation.");
      tone = "is-pass";
    }
    summary.className = "mm-check-summary " + tone;
    summary.textContent = text;
    root.setAttribute("data-check-state", counts.pending ? "running" : "done");
  };

  // --- Camera and microphone ----------------------------------------------------------------

  var explain = function (error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return gettext("Blocked by the browser. Allow the camera and microphone for this site (the icon in the address bar), then run the checks again.");
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return gettext("None found. Connect one, then run the checks again.");
    }
    if (name === "NotReadableError") {
      return gettext("In use by another app. Close it, then run the checks again.");
    }
    return gettext("Not available in this browser. Use a recent Chrome, Edge, Firefox or Safari.");
  };

  var stopStream = function () {
    if (stream) {
      stream.getTracks().forEach(function (track) {
        track.stop();
      });
      stream = null;
    }
    if (audio) {
      window.cancelAnimationFrame(audio.frame);
      audio.source.disconnect();
    }
  };

  var audioContext = function () {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) {
      return null;
    }
    if (!audio) {
      audio = { context: new Context(), analyser: null, source: null, frame: 0 };
    }
    if (audio.context.state === "suspended") {
      audio.context.resume().catch(function () {});
    }
    return audio.context;
  };

  var meter = function (track) {
    var context = audioContext();
    if (!context) {
      levelNote.textContent = gettext("This browser cannot show the level; the microphone itself works.");
      return;
    }
    audio.analyser = context.createAnalyser();
    audio.analyser.fftSize = 512;
    audio.source = context.createMediaStreamSource(new MediaStream([track]));
    audio.source.connect(audio.analyser);
    var samples = new Uint8Array(audio.analyser.fftSize);
    var draw = function () {
      audio.analyser.getByteTimeDomainData(samples);
      var peak = 0;
      for (var i = 0; i < samples.length; i++) {
        peak = Math.max(peak, Math.abs(samples[i] - 128));
      }
      var value = Math.min(100, Math.round((peak / 128) * 160));
      levelBar.style.width = value + "%";
      level.setAttribute("aria-valuenow", String(value));
      if (value > 8 && !heardSound) {
        heardSound = true;
        levelNote.textContent = gettext("We can hear you.");
        if (row("microphone").getAttribute("data-status") === "pass") {
          set("microphone", "pass", interpolate(gettext("Working, and we can hear you: %(device)s."), { device: track.label || gettext("default microphone") }, true));
        }
      }
      audio.frame = window.requestAnimationFrame(draw);
    };
    draw();
  };

  var checkDevices = function () {
    set("camera", "pending", gettext("Asking for your camera…"));
    set("microphone", "pending", gettext("Asking for your microphone…"));
    stopStream();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      set("camera", "fail", explain(null));
      set("microphone", "fail", explain(null));
      videoText.textContent = gettext("No camera");
      return Promise.resolve();
    }
    var media = navigator.mediaDevices;
    return media
      .getUserMedia({ audio: true, video: { width: { ideal: 1280 }, height: { ideal: 720 } } })
      .catch(function (error) {
        // Tell the camera and the microphone apart: try each alone.
        return Promise.all([
          media.getUserMedia({ video: true }).catch(function (e) {
            return e;
          }),
          media.getUserMedia({ audio: true }).catch(function (e) {
            return e;
          }),
        ]).then(function (results) {
          var tracks = [];
          results.forEach(function (result) {
            if (result instanceof MediaStream) {
              tracks = tracks.concat(result.getTracks());
            }
          });
          if (!tracks.length) {
            throw error;
          }
          var combined = new MediaStream(tracks);
          combined.cameraError = results[0] instanceof MediaStream ? null : results[0];
          combined.microphoneError = results[1] instanceof MediaStream ? null : results[1];
          return combined;
        });
      })
      .then(function (got) {
        stream = got;
        var camera = got.getVideoTracks()[0];
        var microphone = got.getAudioTracks()[0];
        if (camera) {
          video.srcObject = new MediaStream([camera]);
          videoOff.hidden = true;
          var settings = camera.getSettings ? camera.getSettings() : {};
          var size = settings.width && settings.height ? " (" + settings.width + "×" + settings.height + ")" : "";
          set("camera", "pass", interpolate(gettext("Working: %(device)s."), { device: (camera.label || gettext("default camera")) + size }, true));
        } else {
          videoText.textContent = gettext("No picture");
          set("camera", "fail", interpolate(gettext("Camera: %(problem)s"), { problem: explain(got.cameraError) }, true));
        }
        if (microphone) {
          heardSound = false;
          set("microphone", "pass", interpolate(gettext("Working: %(device)s. Say a few words to see the level."), { device: microphone.label || gettext("default microphone") }, true));
          meter(microphone);
        } else {
          set("microphone", "fail", interpolate(gettext("Microphone: %(problem)s"), { problem: explain(got.microphoneError) }, true));
        }
      })
      .catch(function (error) {
        videoText.textContent = gettext("No picture");
        set("camera", "fail", explain(error));
        set("microphone", "fail", explain(error));
      });
  };

  // --- Speakers -----------------------------------------------------------------------------

  var playTone = function () {
    var context = audioContext();
    if (!context) {
      set("speaker", "fail", gettext("This browser cannot play the test sound."));
      return;
    }
    // Two soft notes (C5, E5) with a gentle fade in and out: about a second in all.
    var start = context.currentTime + 0.05;
    [523.25, 659.25].forEach(function (frequency, index) {
      var oscillator = context.createOscillator();
      var gain = context.createGain();
      var at = start + index * 0.45;
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0, at);
      gain.gain.linearRampToValueAtTime(0.25, at + 0.05);
      gain.gain.exponentialRampToValueAtTime(0.001, at + 0.6);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.65);
    });
    toneQuestion.hidden = false;
    if (row("speaker").getAttribute("data-status") !== "pass") {
      set("speaker", "todo", gettext("Did you hear the tone? Answer next to the button."));
    }
  };

  $("[data-mm-play-tone]").addEventListener("click", playTone);
  document.querySelectorAll("[data-mm-heard]").forEach(function (button) {
    button.addEventListener("click", function () {
      toneQuestion.hidden = true;
      if (button.getAttribute("data-mm-heard") === "yes") {
        set("speaker", "pass", gettext("You heard the test sound."));
      } else {
        set("speaker", "fail", gettext("Turn the volume up and check which speakers or headphones are selected, then play it again."));
      }
    });
  });

  // --- Connection to the server ------------------------------------------------------------

  var checkServer = function () {
    set("server", "pending", gettext("Measuring the connection…"));
    return new Promise(function (resolve) {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket;
      var times = [];
      var done = false;
      var finish = function (status, detail) {
        if (done) {
          return;
        }
        done = true;
        window.clearTimeout(timer);
        set("server", status, detail);
        if (socket && socket.readyState <= WebSocket.OPEN) {
          socket.close(1000);
        }
        resolve();
      };
      var timer = window.setTimeout(function () {
        finish("fail", gettext("No answer from MediMeet within 8 seconds. A firewall or proxy may block live connections; try another network."));
      }, 8000);
      var ping = function () {
        socket.send(JSON.stringify({ type: "ping", t: performance.now() }));
      };
      try {
        socket = new WebSocket(scheme + window.location.host + root.getAttribute("data-check-socket-path"));
      } catch (error) {
        finish("fail", gettext("This browser could not open a live connection."));
        return;
      }
      socket.onopen = ping;
      socket.onmessage = function (event) {
        var frame;
        try {
          frame = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (frame.type !== "pong" || typeof frame.t !== "number") {
          return;
        }
        times.push(performance.now() - frame.t);
        if (times.length < 3) {
          window.setTimeout(ping, 150);
          return;
        }
        times.sort(function (a, b) {
          return a - b;
        });
        var ms = Math.round(times[1]);
        if (ms <= 300) {
          finish("pass", interpolate(gettext("Good: %(ms)s ms round trip."), { ms: ms }, true));
        } else {
          finish("warn", interpolate(gettext("Slow: %(ms)s ms round trip. The call may lag; a wired or stronger connection helps."), { ms: ms }, true));
        }
      };
      socket.onclose = function () {
        finish("fail", gettext("The live connection to MediMeet was refused or dropped. A firewall or proxy may block it; try another network."));
      };
    });
  };

  // --- Routes for the video (ICE) -------------------------------------------------------------

  var checkRoutes = function () {
    set("network", "pending", gettext("Looking for routes…"));
    if (!window.RTCPeerConnection) {
      set("network", "fail", gettext("This browser cannot make video calls. Use a recent Chrome, Edge, Firefox or Safari."));
      return Promise.resolve();
    }
    return new Promise(function (resolve) {
      var found = { host: 0, srflx: 0, prflx: 0, relay: 0 };
      var pc = new RTCPeerConnection({ iceServers: iceServers });
      var done = false;
      var finish = function () {
        if (done) {
          return;
        }
        done = true;
        window.clearTimeout(timer);
        pc.close();
        var stun = iceServers.some(function (server) {
          return [].concat(server.urls).some(function (url) {
            return /^stuns?:/.test(url);
          });
        });
        var turn = iceServers.some(function (server) {
          return [].concat(server.urls).some(function (url) {
            return /^turns?:/.test(url);
          });
        });
        var list = Object.keys(found)
          .filter(function (type) {
            return found[type];
          })
          .map(function (type) {
            return { host: gettext("local"), srflx: gettext("public"), prflx: gettext("public"), relay: gettext("relay") }[type] + " ×" + found[type];
          })
          .join(", ");
        if (found.relay) {
          set("network", "pass", interpolate(gettext("Ready, with a relay if a direct route is blocked (%(routes)s)."), { routes: list }, true));
        } else if (found.srflx || found.prflx) {
          set(
            "network",
            turn ? "warn" : "pass",
            interpolate(turn ? gettext("A direct route was found but the relay did not answer; strict networks may not connect (%(routes)s).") : gettext("A direct route over the internet was found (%(routes)s)."), { routes: list }, true)
          );
        } else if (found.host && !stun && !turn) {
          set("network", "pass", interpolate(gettext("Local routes found (%(routes)s). This server has no STUN or TURN configured."), { routes: list }, true));
        } else if (found.host) {
          set("network", "warn", interpolate(gettext("Your network may block video calls: no public route was found (%(routes)s). If the call does not connect, try another network such as mobile data."), { routes: list }, true));
        } else {
          set("network", "fail", gettext("No route for the video was found. Check your network connection."));
        }
        resolve();
      };
      var timer = window.setTimeout(finish, 8000);
      pc.onicecandidate = function (event) {
        if (!event.candidate) {
          finish();
          return;
        }
        var type = event.candidate.type || (/ typ (\w+)/.exec(event.candidate.candidate) || [])[1];
        if (type in found) {
          found[type] += 1;
        }
      };
      pc.onicegatheringstatechange = function () {
        if (pc.iceGatheringState === "complete") {
          finish();
        }
      };
      pc.createDataChannel("check");
      pc.createOffer()
        .then(function (offer) {
          return pc.setLocalDescription(offer);
        })
        .catch(finish);
    });
  };

  // --- Run ------------------------------------------------------------------------------------

  var runAll = function () {
    run += 1;
    var speaker = row("speaker");
    if (speaker.getAttribute("data-status") === "pending") {
      set("speaker", "todo", gettext("Not tested yet: play the test sound."));
    }
    // Devices first: once the camera is allowed, browsers also show the real local addresses.
    return checkDevices().then(function () {
      return Promise.all([checkServer(), checkRoutes()]);
    });
  };

  $("[data-mm-check-again]").addEventListener("click", function () {
    audioContext();
    runAll();
  });
  // Browsers start audio only after a click or a key press: the level meter starts with the first.
  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, audioContext, { once: true });
  });
  window.addEventListener("pagehide", stopStream);

  runAll();
})();
