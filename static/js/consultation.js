// The video consultation room (templates/consultations/room.html): the camera preview, the room's
// websocket (docs/signaling.md), the WebRTC call, the waiting room, presence and chat.
// Loaded as an external script (the Content-Security-Policy forbids inline scripts).
//
// The state is mirrored on #mm-consultation's data- attributes (data-call-state, data-socket-state,
// data-peer-state, data-remote-video) for styling and tests; window.mmConsultation exposes the
// RTCPeerConnection (pc) so a test can read its getStats().
(function () {
  "use strict";

  // Words come from Django's JavaScript catalogue (djangojs, /jsi18n/, loaded by base.html).
  var gettext = window.gettext;
  var interpolate = window.interpolate;

  // A room that is not open yet: come back by itself when it opens (the server decides again).
  var notYet = document.querySelector("[data-mm-reload-at]");
  if (notYet) {
    var wait = Date.parse(notYet.getAttribute("data-mm-reload-at")) - Date.now();
    if (!isNaN(wait) && wait < 12 * 3600 * 1000) {
      // A device clock ahead of the server's would reload too early; then try every 30 s.
      window.setTimeout(function () {
        window.location.reload();
      }, wait > 0 ? wait + 2000 : 30000);
    }
  }

  var root = document.getElementById("mm-consultation");
  if (!root) {
    return;
  }

  var STATS_EVERY_MS = 5000;
  var TYPING_EVERY_MS = 3000;
  var MAX_BACKOFF_MS = 15000;
  var role = root.getAttribute("data-role");
  var otherName = root.getAttribute("data-other-name");
  var $ = function (selector) {
    return root.querySelector(selector);
  };
  var el = {
    remoteVideo: $("[data-mm-remote-video]"),
    localVideo: $("[data-mm-local-video]"),
    placeholder: $("[data-mm-stage-placeholder]"),
    stageMessage: $("[data-mm-stage-message]"),
    stageHint: $("[data-mm-stage-hint]"),
    remoteTag: $("[data-mm-remote-tag]"),
    remoteMuted: $("[data-mm-remote-muted]"),
    unmuteRemote: $("[data-mm-unmute-remote]"),
    selfOff: $("[data-mm-self-off]"),
    join: $("[data-mm-join]"),
    end: $("[data-mm-end]"),
    endConfirm: $("[data-mm-end-confirm]"),
    leave: $("[data-mm-leave]"),
    mediaNote: $("[data-mm-media-note]"),
    ended: $("[data-mm-ended]"),
    endedTitle: $("[data-mm-ended-title]"),
    endedText: $("[data-mm-ended-text]"),
    rejoin: $("[data-mm-rejoin]"),
    people: $("[data-mm-people]"),
    tiles: $("[data-mm-tiles]"),
    chatLog: $("[data-mm-chat-log]"),
    chatEmpty: $("[data-mm-chat-empty]"),
    chatForm: $("[data-mm-chat-form]"),
    chatInput: $("[data-mm-chat-input]"),
    chatSend: $("[data-mm-chat-send]"),
    typing: $("[data-mm-typing]"),
    connection: document.querySelector("[data-mm-connection]"),
    connectionText: document.querySelector("[data-mm-connection-text]"),
  };

  var state = {
    call: "prejoin", // prejoin, connecting, waiting, admitted, left, ended, refused
    me: null,
    participants: {},
    iceServers: [],
    socket: null,
    retries: 0,
    retryTimer: null,
    lastError: null,
    peers: {}, // participant id → { pc, offerer, pendingCandidates }
    earlyCandidates: {},
    localStream: null,
    media: { audio: true, video: true },
    statsTimer: null,
    lastStats: null,
    typingSentAt: 0,
    typingTimer: null,
    chatIds: {},
  };

  window.mmConsultation = {
    state: state,
    get pc() {
      // The connection to the other party (the patient for the doctor, the doctor otherwise).
      var entry = primaryPeer();
      return entry ? entry.pc : null;
    },
    peer: function (id) {
      return state.peers[id] ? state.peers[id].pc : null;
    },
  };

  // --- Small helpers ------------------------------------------------------------------------

  var setData = function (name, value) {
    root.setAttribute("data-" + name, value);
  };

  var template = function (name) {
    var node = root.querySelector("template[data-mm-template='" + name + "']");
    return node ? node.content.cloneNode(true) : document.createDocumentFragment();
  };

  var make = function (tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  };

  var initials = function (name) {
    return (name || "")
      .replace(/^(Dr|Prof|Mr|Mrs|Ms)\.?\s+/i, "")
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map(function (part) {
        return part.charAt(0).toUpperCase();
      })
      .join("");
  };

  var clock = function (iso) {
    var date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  };

  var round = function (value, digits) {
    if (typeof value !== "number" || !isFinite(value) || value < 0) {
      return null;
    }
    var factor = Math.pow(10, digits || 0);
    return Math.round(value * factor) / factor;
  };

  var send = function (frame) {
    var socket = state.socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  };

  var peer = function () {
    // The other party on the main stage: the patient for the doctor, the doctor for everyone
    // else (a guest appears in a tile of their own).
    var found = null;
    Object.keys(state.participants).forEach(function (id) {
      if (state.participants[id].role === (role === "doctor" ? "patient" : "doctor")) {
        found = state.participants[id];
      }
    });
    return found;
  };

  // --- What the page shows ------------------------------------------------------------------

  var setCall = function (call) {
    state.call = call;
    setData("call-state", call);
    var inCall = call === "waiting" || call === "admitted" || call === "connecting";
    el.join.hidden = call !== "prejoin";
    [el.end, el.leave].forEach(function (button) {
      if (button) {
        button.hidden = !inCall;
      }
    });
    if (!inCall && el.endConfirm) {
      el.endConfirm.hidden = true;
    }
    var chatOpen = call === "admitted";
    var over = call === "ended" || call === "left" || call === "refused";
    el.chatInput.disabled = !chatOpen;
    el.chatSend.disabled = !chatOpen;
    el.chatInput.placeholder = chatOpen ? gettext("Write a message") : over ? gettext("The chat is closed") : gettext("Available once you are in the call");
    if (over) {
      // Nobody is in the call any more, as far as this page can tell.
      Object.keys(state.participants).forEach(function (id) {
        state.participants[id].state = "left";
      });
      renderPeople();
    }
    renderStage();
    renderConnection();
  };

  var setSocket = function (socketState) {
    setData("socket-state", socketState);
    renderConnection();
  };

  var setPeer = function (peerState) {
    setData("peer-state", peerState);
    renderConnection();
    renderStage();
  };

  var renderConnection = function () {
    if (!el.connection) {
      return;
    }
    var socketState = root.getAttribute("data-socket-state");
    var peerState = root.getAttribute("data-peer-state");
    var text = gettext("Not connected");
    var tone = "";
    if (state.call === "ended" || state.call === "left" || state.call === "refused") {
      text = gettext("Not in the call");
    } else if (socketState === "reconnecting" && state.unavailable) {
      text = gettext("The live connection service is unavailable right now, retrying…");
      tone = "is-warn";
    } else if (socketState === "reconnecting") {
      text = gettext("Connection lost, reconnecting…");
      tone = "is-warn";
    } else if (socketState === "connecting") {
      text = gettext("Connecting…");
      tone = "is-warn";
    } else if (socketState === "open" && peerState === "connected") {
      text = interpolate(gettext("Connected to %(name)s"), { name: otherName }, true);
      tone = "is-ok";
    } else if (socketState === "open" && (peerState === "connecting" || peerState === "new" && primaryPeer())) {
      text = gettext("Connecting the video…");
      tone = "is-warn";
    } else if (socketState === "open" && (peerState === "disconnected" || peerState === "failed")) {
      text = gettext("Video interrupted, reconnecting…");
      tone = "is-warn";
    } else if (socketState === "open") {
      text = state.call === "waiting" ? gettext("In the waiting room") : gettext("In the consultation room");
      tone = "is-ok";
    }
    el.connection.className = "mm-call-connection " + tone;
    el.connectionText.textContent = text;
  };

  var stageText = function () {
    var other = peer();
    var otherState = other ? other.state : "absent";
    var peerState = root.getAttribute("data-peer-state");
    var named = { name: otherName };
    switch (state.call) {
      case "prejoin":
        return [gettext("Check your picture, then join when you are ready."), interpolate(role === "doctor" ? gettext("%(name)s waits until you let them in.") : gettext("%(name)s will let you in from the waiting room."), named, true)];
      case "connecting":
        return [gettext("Connecting to the consultation room…"), ""];
      case "waiting":
        return [
          interpolate(gettext("Waiting for %(name)s to let you in"), named, true),
          role === "guest" ? gettext("Please stay on this page. You join the call as soon as the doctor is ready.") : gettext("Please stay on this page. You join the call as soon as your doctor is ready."),
        ];
      case "admitted":
        if (otherState === "waiting") {
          return [interpolate(gettext("%(name)s is in the waiting room"), named, true), gettext("Let them in from “In the room” when you are ready.")];
        }
        if (otherState === "reconnecting") {
          return [interpolate(gettext("%(name)s’s connection dropped"), named, true), gettext("They usually come back within a few seconds.")];
        }
        if (otherState !== "admitted") {
          return [interpolate(gettext("Waiting for %(name)s to join"), named, true), role === "doctor" ? gettext("They are let in when you admit them.") : gettext("You are in the room; the call starts when they arrive.")];
        }
        if (peerState === "connected") {
          return [interpolate(gettext("%(name)s has turned their camera off"), named, true), ""];
        }
        return [gettext("Connecting the video…"), ""];
      default:
        return ["", ""];
    }
  };

  var renderStage = function () {
    var other = peer();
    var texts = stageText();
    var remotePlaying = root.getAttribute("data-remote-video") === "playing" && root.getAttribute("data-peer-state") === "connected";
    var remoteCameraOn = !other || !other.media || other.media.video !== false;
    el.placeholder.hidden = state.call === "admitted" && remotePlaying && remoteCameraOn;
    if (el.stageMessage.textContent !== texts[0]) {
      el.stageMessage.textContent = texts[0];
    }
    el.stageHint.textContent = texts[1];
    el.remoteTag.hidden = !(state.call === "admitted" && remotePlaying);
    el.remoteMuted.hidden = !(other && other.media && other.media.audio === false);
  };

  var STATE_LABELS = {
    admitted: gettext("In the call"),
    waiting: gettext("In the waiting room"),
    reconnecting: gettext("Reconnecting…"),
    left: gettext("Left"),
    absent: gettext("Not here yet"),
  };

  var renderPeople = function () {
    var me = state.me && state.me.id;
    var list = Object.keys(state.participants)
      .map(function (id) {
        return state.participants[id];
      })
      .sort(function (a, b) {
        return a.role === b.role ? 0 : a.role === "doctor" ? -1 : 1;
      });
    el.people.textContent = "";
    if (!list.length) {
      el.people.appendChild(make("li", "mm-people-empty text-body-secondary", gettext("Nobody has joined yet.")));
      return;
    }
    list.forEach(function (person) {
      var item = make("li", "mm-person mm-person-" + person.state);
      item.setAttribute("data-participant", person.id);
      item.setAttribute("data-state", person.state);
      var avatar = make("span", "mm-avatar mm-avatar-sm", initials(person.name));
      avatar.setAttribute("aria-hidden", "true");
      item.appendChild(avatar);
      var text = make("div", "mm-person-text");
      var name = make("p", "mm-person-name", person.name);
      if (person.id === me) {
        name.appendChild(make("span", "mm-person-you", " " + gettext("(you)")));
      }
      text.appendChild(name);
      var meta = make("p", "mm-person-meta");
      meta.appendChild(make("span", "mm-person-role", person.role === "doctor" ? gettext("Doctor") : person.role === "patient" ? gettext("Patient") : person.relationship || gettext("Guest")));
      meta.appendChild(make("span", "mm-person-state", STATE_LABELS[person.state] || person.state));
      text.appendChild(meta);
      item.appendChild(text);
      var icons = make("span", "mm-person-media");
      if (person.media && person.media.audio === false) {
        icons.appendChild(template("mic-off"));
        icons.appendChild(make("span", "visually-hidden", gettext("microphone off")));
      }
      if (person.media && person.media.video === false) {
        icons.appendChild(template("video-off"));
        icons.appendChild(make("span", "visually-hidden", gettext("camera off")));
      }
      item.appendChild(icons);
      if (role === "doctor" && person.state === "waiting" && state.call === "admitted") {
        var admit = make("button", "btn btn-primary btn-sm mm-admit");
        admit.type = "button";
        admit.appendChild(template("admit-icon"));
        admit.appendChild(document.createTextNode(" " + gettext("Admit")));
        admit.setAttribute("aria-label", interpolate(gettext("Admit %(name)s"), { name: person.name }, true));
        admit.addEventListener("click", function () {
          admit.disabled = true;
          admit.lastChild.textContent = " " + gettext("Admitting…");
          send({ type: "admit", participant: person.id });
        });
        item.appendChild(admit);
      }
      el.people.appendChild(item);
    });
  };

  var showEnded = function (title, text, canRejoin) {
    el.endedTitle.textContent = title;
    el.endedText.textContent = text;
    el.rejoin.hidden = !canRejoin;
    el.ended.hidden = false;
    root.querySelector(".mm-stage-card").hidden = true;
    el.ended.focus();
  };

  // --- Chat ---------------------------------------------------------------------------------

  var addChat = function (message) {
    if (state.chatIds[message.id]) {
      return;
    }
    state.chatIds[message.id] = true;
    if (el.chatEmpty && el.chatEmpty.parentNode) {
      el.chatEmpty.remove();
    }
    var mine = state.me && message.from === state.me.id;
    var item = make("li", "mm-chat-message" + (mine ? " is-mine" : ""));
    var head = make("p", "mm-chat-head");
    head.appendChild(make("span", "mm-chat-name", mine ? gettext("You") : message.name));
    var time = make("time", "mm-chat-time", clock(message.sent_at));
    time.setAttribute("datetime", message.sent_at);
    head.appendChild(time);
    item.appendChild(head);
    item.appendChild(make("p", "mm-chat-body", message.body));
    el.chatLog.appendChild(item);
    el.chatLog.scrollTop = el.chatLog.scrollHeight;
    if (!mine) {
      el.typing.textContent = "";
    }
  };

  var setChatHistory = function (messages) {
    (messages || []).forEach(addChat);
  };

  el.chatForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = el.chatInput.value.trim();
    if (!body || state.call !== "admitted") {
      return;
    }
    if (send({ type: "chat", body: body })) {
      el.chatInput.value = "";
      state.typingSentAt = 0;
    }
  });

  el.chatInput.addEventListener("keydown", function (event) {
    // Enter sends, Shift+Enter starts a new line (as in most chat apps).
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      el.chatForm.requestSubmit();
    }
  });

  el.chatInput.addEventListener("input", function () {
    var now = Date.now();
    if (state.call === "admitted" && el.chatInput.value && now - state.typingSentAt > TYPING_EVERY_MS) {
      state.typingSentAt = now;
      send({ type: "typing" });
    }
  });

  var showTyping = function (from) {
    var person = state.participants[from];
    el.typing.textContent = interpolate(gettext("%(name)s is typing…"), { name: person ? person.name : otherName }, true);
    window.clearTimeout(state.typingTimer);
    state.typingTimer = window.setTimeout(function () {
      el.typing.textContent = "";
    }, 4000);
  };

  // --- Camera and microphone ----------------------------------------------------------------

  var mediaProblem = function (error) {
    var name = error && error.name;
    var text = gettext("We could not use your camera or microphone. You can still chat; try the camera and microphone test.");
    if (name === "NotAllowedError" || name === "SecurityError") {
      text = gettext("Your browser blocked the camera and microphone. Allow them for this site (the camera icon in the address bar), then reload the page.");
    } else if (name === "NotFoundError" || name === "OverconstrainedError") {
      text = gettext("No camera or microphone was found. Connect one, then reload the page.");
    } else if (name === "NotReadableError") {
      text = gettext("Your camera or microphone is in use by another app. Close it, then reload the page.");
    } else if (name === "NoMediaDevices") {
      text = gettext("This browser cannot use a camera here. Use a recent Chrome, Edge, Firefox or Safari.");
    }
    el.mediaNote.textContent = text;
    el.mediaNote.classList.add("is-problem");
    el.mediaNote.setAttribute("role", "alert");
  };

  var refreshToggles = function () {
    root.querySelectorAll("[data-mm-toggle]").forEach(function (button) {
      var kind = button.getAttribute("data-mm-toggle");
      var track = state.localStream && state.localStream.getTracks().filter(function (t) {
        return t.kind === kind;
      })[0];
      var on = Boolean(track) && state.media[kind];
      button.disabled = !track;
      button.setAttribute("data-on", on ? "true" : "false");
      button.querySelector("[data-mm-label]").textContent = kind === "audio" ? (on ? gettext("Mute") : gettext("Unmute")) : on ? gettext("Stop video") : gettext("Start video");
      button.setAttribute("aria-label", kind === "audio" ? (on ? gettext("Mute your microphone") : gettext("Unmute your microphone")) : on ? gettext("Turn your camera off") : gettext("Turn your camera on"));
    });
    el.selfOff.hidden = Boolean(state.localStream && state.media.video && state.localStream.getVideoTracks().length);
  };

  var startPreview = function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      state.media = { audio: false, video: false };
      mediaProblem({ name: "NoMediaDevices" });
      refreshToggles();
      el.join.disabled = false;
      return;
    }
    navigator.mediaDevices
      .getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true }, video: { width: { ideal: 1280 }, height: { ideal: 720 } } })
      .catch(function (error) {
        // No camera (or a blocked one) should not keep someone out of their consultation.
        return navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
          mediaProblem(error);
          return stream;
        });
      })
      .then(function (stream) {
        state.localStream = stream;
        el.localVideo.srcObject = stream;
        state.media = { audio: stream.getAudioTracks().length > 0, video: stream.getVideoTracks().length > 0 };
      })
      .catch(function (error) {
        state.media = { audio: false, video: false };
        mediaProblem(error);
      })
      .then(function () {
        refreshToggles();
        el.join.disabled = false;
      });
  };

  root.querySelectorAll("[data-mm-toggle]").forEach(function (button) {
    button.addEventListener("click", function () {
      var kind = button.getAttribute("data-mm-toggle");
      if (!state.localStream) {
        return;
      }
      state.media[kind] = !state.media[kind];
      state.localStream.getTracks().forEach(function (track) {
        if (track.kind === kind) {
          track.enabled = state.media[kind];
        }
      });
      refreshToggles();
      sendMedia();
    });
  });

  var sendMedia = function () {
    if (state.call === "admitted") {
      send({ type: "media", audio: state.media.audio, video: state.media.video });
    }
  };

  var stopLocalMedia = function () {
    if (state.localStream) {
      state.localStream.getTracks().forEach(function (track) {
        track.stop();
      });
    }
  };

  // --- WebRTC ---------------------------------------------------------------------------------

  var stopStats = function () {
    window.clearInterval(state.statsTimer);
    state.statsTimer = null;
    state.lastStats = null;
  };

  // One RTCPeerConnection per other person (a mesh: with a guest, three people make three
  // pairs). WebRTC frames are addressed with "to"; whoever was in the room first makes the offer.
  var primaryRole = role === "doctor" ? "patient" : "doctor";

  var isPrimary = function (id) {
    var person = state.participants[id];
    return Boolean(person && person.role === primaryRole);
  };

  var primaryPeer = function () {
    var found = null;
    Object.keys(state.peers).forEach(function (id) {
      if (isPrimary(id)) {
        found = state.peers[id];
      }
    });
    return found;
  };

  var tileFor = function (id, create) {
    var tile = el.tiles.querySelector("[data-participant='" + id + "']");
    if (!tile && create) {
      var person = state.participants[id] || {};
      tile = make("div", "mm-guest-tile");
      tile.setAttribute("data-participant", id);
      tile.setAttribute("data-peer-state", "new");
      tile.setAttribute("data-remote-video", "none");
      var video = make("video", "mm-guest-video");
      video.autoplay = true;
      video.playsInline = true;
      video.setAttribute("aria-label", person.name ? interpolate(gettext("Video of %(name)s"), { name: person.name }, true) : gettext("Video of a guest"));
      tile.appendChild(video);
      tile.appendChild(make("span", "mm-tile-tag", person.name || gettext("Guest")));
      el.tiles.appendChild(tile);
    }
    return tile;
  };

  var videoFor = function (id) {
    return isPrimary(id) ? el.remoteVideo : tileFor(id, true).querySelector("video");
  };

  var closePeer = function (id) {
    var entry = state.peers[id];
    if (entry) {
      delete state.peers[id];
      entry.pc.onicecandidate = entry.pc.ontrack = entry.pc.onconnectionstatechange = null;
      entry.pc.close();
    }
    delete state.earlyCandidates[id];
    if (isPrimary(id) || !state.participants[id]) {
      stopStats();
      el.remoteVideo.srcObject = null;
      setData("remote-video", "none");
      setPeer("new");
    }
    var tile = tileFor(id, false);
    if (tile) {
      tile.remove();
    }
  };

  var closeAllPeers = function () {
    Object.keys(state.peers).forEach(closePeer);
    stopStats();
    setPeer("new");
  };

  var playVideo = function (video) {
    var playing = video.play();
    if (playing && playing.catch) {
      playing.catch(function () {
        // Autoplay with sound needs a click on some browsers: play muted and offer the sound.
        video.muted = true;
        el.unmuteRemote.hidden = false;
        video.play().catch(function () {});
      });
    }
  };

  el.unmuteRemote.addEventListener("click", function () {
    [el.remoteVideo].concat(Array.prototype.slice.call(el.tiles.querySelectorAll("video"))).forEach(function (video) {
      video.muted = false;
      video.play().catch(function () {});
    });
    el.unmuteRemote.hidden = true;
  });

  var watchFrames = function (id, video) {
    var mark = function () {
      if (video.srcObject && video.videoWidth > 0) {
        if (video === el.remoteVideo) {
          setData("remote-video", "playing");
          renderStage();
        } else if (video.parentNode) {
          video.parentNode.setAttribute("data-remote-video", "playing");
        }
      }
    };
    if (video.requestVideoFrameCallback) {
      video.requestVideoFrameCallback(mark);
    } else {
      video.addEventListener("playing", mark, { once: true });
    }
  };

  var newPeer = function (id, offerer) {
    closePeer(id);
    var pc = new RTCPeerConnection({ iceServers: state.iceServers || [] });
    var entry = { id: id, pc: pc, offerer: offerer, pendingCandidates: state.earlyCandidates[id] || [] };
    delete state.earlyCandidates[id];
    state.peers[id] = entry;
    if (state.localStream) {
      state.localStream.getTracks().forEach(function (track) {
        pc.addTrack(track, state.localStream);
      });
    }
    ["audio", "video"].forEach(function (kind) {
      var sending = state.localStream && state.localStream.getTracks().some(function (t) {
        return t.kind === kind;
      });
      if (!sending) {
        pc.addTransceiver(kind, { direction: "recvonly" });
      }
    });
    pc.onicecandidate = function (event) {
      if (event.candidate) {
        send({ type: "ice", to: id, candidate: event.candidate.toJSON() });
      }
    };
    pc.ontrack = function (event) {
      var video = videoFor(id);
      var stream = event.streams[0] || new MediaStream([event.track]);
      if (video.srcObject !== stream) {
        video.srcObject = stream;
        playVideo(video);
      }
      if (event.track.kind === "video") {
        watchFrames(id, video);
      }
    };
    pc.onconnectionstatechange = function () {
      if (state.peers[id] !== entry) {
        return;
      }
      var tile = tileFor(id, false);
      if (tile) {
        tile.setAttribute("data-peer-state", pc.connectionState);
      }
      if (isPrimary(id)) {
        setPeer(pc.connectionState);
        if (pc.connectionState === "connected" && !state.statsTimer) {
          state.statsTimer = window.setInterval(sampleStats, STATS_EVERY_MS);
        }
      }
      if (pc.connectionState === "failed") {
        // A new offer with fresh ICE: the offerer of this pair makes it, the other asks for it.
        if (entry.offerer) {
          makeOffer(id);
        } else {
          send({ type: "renegotiate", to: id });
        }
      }
    };
    if (isPrimary(id)) {
      setPeer(pc.connectionState);
    }
    return entry;
  };

  var warn = function (what, error) {
    // A warning, not an error: signaling races (a candidate for a connection already replaced)
    // are expected and harmless.
    if (window.console && console.warn) {
      console.warn("Consultation: " + what, error && error.message ? error.message : error);
    }
  };

  var connected = function (id) {
    var entry = state.peers[id];
    return Boolean(entry && entry.pc.connectionState === "connected");
  };

  var makeOffer = function (id) {
    var pc = newPeer(id, true).pc;
    pc.createOffer()
      .then(function (offer) {
        return pc.setLocalDescription(offer);
      })
      .then(function () {
        send({ type: "offer", to: id, sdp: pc.localDescription.sdp });
      })
      .catch(function (error) {
        warn("could not make an offer", error);
      });
  };

  var flushCandidates = function (entry) {
    var queued = entry.pendingCandidates;
    entry.pendingCandidates = [];
    queued.forEach(function (candidate) {
      entry.pc.addIceCandidate(candidate).catch(function (error) {
        warn("ignored a candidate", error);
      });
    });
  };

  var onOffer = function (frame) {
    var entry = newPeer(frame.from, false);
    var pc = entry.pc;
    pc.setRemoteDescription({ type: "offer", sdp: frame.sdp })
      .then(function () {
        flushCandidates(entry);
        return pc.createAnswer();
      })
      .then(function (answer) {
        return pc.setLocalDescription(answer);
      })
      .then(function () {
        send({ type: "answer", to: frame.from, sdp: pc.localDescription.sdp });
      })
      .catch(function (error) {
        warn("could not answer", error);
      });
  };

  var onAnswer = function (frame) {
    var entry = state.peers[frame.from];
    if (!entry || entry.pc.signalingState !== "have-local-offer") {
      return;
    }
    entry.pc
      .setRemoteDescription({ type: "answer", sdp: frame.sdp })
      .then(function () {
        flushCandidates(entry);
      })
      .catch(function (error) {
        warn("could not use the answer", error);
      });
  };

  var onCandidate = function (frame) {
    var entry = state.peers[frame.from];
    if (entry && entry.pc.remoteDescription) {
      entry.pc.addIceCandidate(frame.candidate).catch(function (error) {
        warn("ignored a candidate", error);
      });
    } else if (entry) {
      entry.pendingCandidates.push(frame.candidate);
    } else {
      (state.earlyCandidates[frame.from] = state.earlyCandidates[frame.from] || []).push(frame.candidate);
    }
  };

  // A summary of getStats() every 5 s: the quality evidence kept with the consultation.
  var sampleStats = function () {
    var entry = primaryPeer();
    var pc = entry && entry.pc;
    if (!pc || state.call !== "admitted") {
      return;
    }
    pc.getStats()
      .then(function (report) {
        var rtt = null;
        var remoteRtt = null;
        var lost = 0;
        var received = 0;
        var bytes = 0;
        var jitter = null;
        var fps = null;
        report.forEach(function (s) {
          if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && typeof s.currentRoundTripTime === "number") {
            rtt = s.currentRoundTripTime * 1000;
          } else if (s.type === "remote-inbound-rtp" && typeof s.roundTripTime === "number") {
            remoteRtt = s.roundTripTime * 1000;
          } else if (s.type === "inbound-rtp") {
            lost += Math.max(0, s.packetsLost || 0);
            received += s.packetsReceived || 0;
            bytes += s.bytesReceived || 0;
            if (s.kind === "video" && typeof s.framesPerSecond === "number") {
              fps = s.framesPerSecond;
            }
            if (typeof s.jitter === "number" && (s.kind === "audio" || jitter === null)) {
              jitter = s.jitter * 1000;
            }
          }
        });
        var now = performance.now();
        var last = state.lastStats;
        var loss = null;
        var kbps = null;
        if (last) {
          var newLost = Math.max(0, lost - last.lost);
          var newReceived = Math.max(0, received - last.received);
          loss = newLost + newReceived > 0 ? newLost / (newLost + newReceived) : 0;
          kbps = ((bytes - last.bytes) * 8) / (now - last.at); // bits per ms = kbit/s
        } else if (lost + received > 0) {
          loss = lost / (lost + received);
        }
        state.lastStats = { lost: lost, received: received, bytes: bytes, at: now };
        send({
          type: "stats",
          rtt_ms: round(rtt !== null ? rtt : remoteRtt, 1),
          packet_loss: round(loss, 4),
          jitter_ms: round(jitter, 1),
          bitrate_kbps: round(kbps, 1),
          fps: round(fps, 1),
        });
      })
      .catch(function (error) {
        warn("could not read the call statistics", error);
      });
  };

  // --- The room's socket ----------------------------------------------------------------------

  var upsert = function (participant) {
    var known = state.participants[participant.id] || {};
    state.participants[participant.id] = Object.assign(known, participant);
  };

  var becomeAdmitted = function (history) {
    setCall("admitted");
    setChatHistory(history);
    sendMedia();
    renderPeople();
  };

  // A guest does not consent to recording (the doctor and the patient do), but is told when it runs.
  var showRecordingToGuest = function (recording) {
    if (role !== "guest" || !recording) {
      return;
    }
    setData("recorded", recording.active ? "true" : "false");
    el.mediaNote.textContent = recording.active
      ? gettext("This consultation is being recorded: the doctor and the patient agreed to it.")
      : gettext("Your camera and microphone are only used during the consultation.");
  };

  var handlers = {
    recording: showRecordingToGuest,
    welcome: function (frame) {
      state.retries = 0;
      state.me = frame.you;
      state.iceServers = frame.ice_servers || [];
      state.participants = {};
      (frame.participants || []).forEach(upsert);
      showRecordingToGuest(frame.recording);
      if (frame.state === "admitted") {
        becomeAdmitted(frame.chat);
      } else {
        setCall("waiting");
        renderPeople();
      }
    },
    admitted: function (frame) {
      if (state.me) {
        upsert({ id: state.me.id, state: "admitted" });
      }
      becomeAdmitted(frame.chat);
      showRecordingToGuest(frame.recording);
    },
    presence: function (frame) {
      // Other scripts of the room (inviting a guest) follow who comes and goes.
      root.dispatchEvent(new CustomEvent("mm:presence", { bubbles: true, detail: frame.participant }));
      var before = state.participants[frame.participant.id];
      var wasIn = before && before.state === "admitted";
      upsert(frame.participant);
      if (wasIn && frame.participant.state === "left" && state.peers[frame.participant.id] && !connected(frame.participant.id)) {
        closePeer(frame.participant.id);
      }
      renderPeople();
      renderStage();
    },
    peer_ready: function (frame) {
      // Someone admitted and connected: the people already in the call offer to them; they ask
      // for an offer from anyone they have no working connection with (after a page reload the
      // others may still hold a connection to the old page).
      var id = frame.participant;
      if (state.participants[id]) {
        upsert({ id: id, state: "admitted" });
        renderPeople();
        renderStage();
      }
      if (state.me && id === state.me.id) {
        Object.keys(state.participants).forEach(function (other) {
          if (other !== id && state.participants[other].state === "admitted" && !connected(other)) {
            send({ type: "renegotiate", to: other });
          }
        });
      } else if (!connected(id)) {
        makeOffer(id);
      }
    },
    offer: onOffer,
    answer: onAnswer,
    ice: function (frame) {
      onCandidate(frame);
    },
    renegotiate: function (frame) {
      var entry = state.peers[frame.from];
      if (!entry || entry.pc.signalingState !== "have-local-offer") {
        makeOffer(frame.from); // an offer already on its way answers the request
      }
    },
    media: function (frame) {
      upsert({ id: frame.from, media: { audio: frame.audio, video: frame.video } });
      renderPeople();
      renderStage();
    },
    chat: addChat,
    typing: function (frame) {
      showTyping(frame.from);
    },
    hangup: function (frame) {
      if (state.participants[frame.from]) {
        upsert({ id: frame.from, state: "left" });
      }
      closePeer(frame.from);
      renderPeople();
    },
    ended: function (frame) {
      setCall("ended");
      closeAllPeers();
      stopLocalMedia();
      var byMe = state.me && frame.by === state.me.id;
      showEnded(
        gettext("The consultation has ended"),
        byMe
          ? gettext("You ended the consultation. The appointment is marked completed; add your notes on the appointment page.")
          : interpolate(gettext("%(name)s ended the consultation. Notes and follow-ups appear on the appointment page."), { name: otherName }, true),
        false
      );
    },
    pong: function () {},
    error: function (frame) {
      state.lastError = frame;
      if (frame.code === "WS_BAD_MESSAGE") {
        warn("the server refused a message", frame.message);
      }
    },
  };

  // Why the server refused the socket, in the page's language: the server words its refusals in
  // English (with details such as the appointment's state); other languages get these by code.
  var REFUSALS = {
    WS_UNAUTHENTICATED: gettext("Sign in to join the consultation."),
    WS_FORBIDDEN: gettext("Only the people invited to this consultation can join it."),
    WS_NOT_FOUND: gettext("There is no such consultation room."),
    WS_NOT_ACTIVE: gettext("This appointment can no longer be joined."),
    WS_OUTSIDE_WINDOW: gettext("The consultation room is open from 15 minutes before the appointment until shortly after it ends."),
    WS_RATE_LIMITED: gettext("Too many messages: the connection is closed."),
  };

  var refusalText = function (error) {
    if (!error) return gettext("The consultation room cannot be joined now.");
    var english = (document.documentElement.lang || "en").slice(0, 2) === "en";
    return (!english && REFUSALS[error.code]) || error.message || gettext("The consultation room cannot be joined now.");
  };

  var refused = function (code) {
    setCall("refused");
    closeAllPeers();
    stopLocalMedia();
    var message = refusalText(state.lastError);
    showEnded(code === 4410 ? gettext("The consultation room is closed") : gettext("You cannot join right now"), message, false);
  };

  var scheduleReconnect = function () {
    setSocket("reconnecting");
    var delay = Math.min(1000 * Math.pow(2, state.retries), MAX_BACKOFF_MS) * (0.75 + Math.random() * 0.5);
    state.retries += 1;
    window.clearTimeout(state.retryTimer);
    state.retryTimer = window.setTimeout(connect, delay);
  };

  var connect = function () {
    window.clearTimeout(state.retryTimer);
    state.lastError = null;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + root.getAttribute("data-socket-path"));
    state.socket = socket;
    setSocket(state.retries ? "reconnecting" : "connecting");
    socket.onopen = function () {
      if (state.socket === socket) {
        setSocket("open");
      }
    };
    socket.onmessage = function (event) {
      if (state.socket !== socket) {
        return;
      }
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (frame.type === "welcome") {
        state.unavailable = false;
      }
      var handler = handlers[frame.type];
      if (handler) {
        handler(frame);
      }
    };
    socket.onclose = function (event) {
      if (state.socket !== socket) {
        return;
      }
      state.socket = null;
      if (state.call === "ended" || state.call === "left" || event.code === 4000) {
        setSocket("closed");
        return;
      }
      if (event.code >= 4400 && event.code < 4500 && event.code !== 4429) {
        setSocket("closed");
        refused(event.code);
        return;
      }
      // 4503: the server is up but its live-connection service (Redis) is not: say so and retry.
      state.unavailable = event.code === 4503;
      scheduleReconnect(); // a dropped network, a restarted server: come back by yourself
    };
  };

  window.addEventListener("online", function () {
    if (root.getAttribute("data-socket-state") === "reconnecting") {
      connect();
    }
  });

  // --- Buttons ----------------------------------------------------------------------------------

  el.join.addEventListener("click", function () {
    el.join.disabled = true;
    setCall("connecting");
    connect();
  });

  if (el.leave) {
    el.leave.addEventListener("click", function () {
      send({ type: "hangup" });
      setCall("left");
      closeAllPeers();
      stopLocalMedia();
      showEnded(gettext("You left the call"), interpolate(gettext("%(name)s has been told. You can rejoin while the room is open."), { name: otherName }, true), true);
    });
  }

  if (el.end) {
    el.end.addEventListener("click", function () {
      el.endConfirm.hidden = false;
      el.endConfirm.querySelector("[data-mm-end-confirm-yes]").focus();
    });
    el.endConfirm.querySelector("[data-mm-end-confirm-no]").addEventListener("click", function () {
      el.endConfirm.hidden = true;
      el.end.focus();
    });
    el.endConfirm.querySelector("[data-mm-end-confirm-yes]").addEventListener("click", function (event) {
      event.currentTarget.disabled = true;
      send({ type: "end" }); // the server answers "ended" to everyone, this page included
    });
  }

  window.addEventListener("pagehide", function () {
    stopLocalMedia();
  });

  // --- Recording hook (static/js/consultation-recording.js) -----------------------------------
  // Recording with consent lives in its own ES module; this block is its only hook into the room:
  // it passes on the frames the module needs and a few read-only accessors.
  var recordingModule = root.getAttribute("data-recording-module");
  if (recordingModule) {
    var recordingListener = null;
    var recordingBacklog = [];
    ["welcome", "admitted", "recording", "hangup", "ended"].forEach(function (type) {
      var original = handlers[type];
      handlers[type] = function (frame) {
        if (original) {
          original(frame);
        }
        if (recordingListener) {
          recordingListener(frame);
        } else {
          recordingBacklog.push(frame);
        }
      };
    });
    import(recordingModule)
      .then(function (module) {
        module.attach({
          root: root,
          role: role,
          send: send,
          me: function () {
            return state.me;
          },
          localStream: function () {
            return state.localStream;
          },
          remoteStream: function () {
            return el.remoteVideo.srcObject;
          },
          localVideo: el.localVideo,
          remoteVideo: el.remoteVideo,
          onFrame: function (listener) {
            recordingListener = listener;
            recordingBacklog.splice(0).forEach(listener);
          },
        });
      })
      .catch(function (error) {
        warn("recording is not available", error);
      });
  }

  setCall("prejoin");
  startPreview();
})();
