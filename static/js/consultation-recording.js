// Recording with consent in the video room (docs/signaling.md "Recording", docs/api.md).
//
// Loaded by consultation.js (its "Recording hook" block) as an ES module. The doctor and the
// patient each turn "Record this consultation" on or off (a "recording_consent" frame); the server
// keeps every change and tells the room its state ("recording" frames). When both have agreed,
// the doctor's browser records: the two videos drawn on a canvas (patient large, doctor in the
// corner) and both voices mixed with Web Audio, through MediaRecorder in slices of a few seconds,
// each uploaded in order to the API, which stores it encrypted. Either turning Record off stops it.
//
// State for styling and tests: [data-mm-recording][data-state] = off | waiting | asked | starting
// | recording | saved | failed.

const TIMESLICE_MS = 3000;
const FRAME_RATE = 15;
const WIDTH = 1280;
const HEIGHT = 720;
const UPLOAD_ATTEMPTS = 4;
const TYPES = ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm", "video/mp4"];

// Words come from Django's JavaScript catalogue (djangojs, /jsi18n/, loaded by base.html).
const { gettext, interpolate } = window;

const wait = (ms) => new Promise((resolve) => window.setTimeout(resolve, ms));

// The two videos on one canvas and the two voices in one track: what MediaRecorder records.
function composite(room) {
  const canvas = document.createElement("canvas");
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  const g = canvas.getContext("2d");
  const fit = (video, x, y, w, h) => {
    if (!video || !video.videoWidth || !video.srcObject) {
      return false;
    }
    const scale = Math.min(w / video.videoWidth, h / video.videoHeight);
    const dw = video.videoWidth * scale;
    const dh = video.videoHeight * scale;
    g.drawImage(video, x + (w - dw) / 2, y + (h - dh) / 2, dw, dh);
    return true;
  };
  const draw = () => {
    g.fillStyle = "#0f172a";
    g.fillRect(0, 0, WIDTH, HEIGHT);
    fit(room.remoteVideo, 0, 0, WIDTH, HEIGHT);
    const w = WIDTH / 4;
    const h = HEIGHT / 4;
    g.fillStyle = "#1e293b";
    g.fillRect(WIDTH - w - 24, HEIGHT - h - 24, w, h);
    fit(room.localVideo, WIDTH - w - 24, HEIGHT - h - 24, w, h);
  };
  draw();
  // A timer, not requestAnimationFrame: it keeps drawing (slower) when the tab is in the background.
  const timer = window.setInterval(draw, 1000 / FRAME_RATE);
  const stream = canvas.captureStream(FRAME_RATE);
  const AudioContextClass = window.AudioContext || window.webkitAudioContext;
  const audio = new AudioContextClass();
  const mix = audio.createMediaStreamDestination();
  [room.localStream(), room.remoteStream()].forEach((source) => {
    if (source && source.getAudioTracks().length) {
      audio.createMediaStreamSource(new MediaStream(source.getAudioTracks())).connect(mix);
    }
  });
  mix.stream.getAudioTracks().forEach((track) => stream.addTrack(track));
  audio.resume().catch(() => {});
  return {
    stream,
    close() {
      window.clearInterval(timer);
      stream.getTracks().forEach((track) => track.stop());
      audio.close().catch(() => {});
    },
  };
}

export function attach(room) {
  const panel = room.root.querySelector("[data-mm-recording]");
  if (!panel) {
    return;
  }
  const el = {
    consent: panel.querySelector("[data-mm-record-consent]"),
    status: panel.querySelector("[data-mm-record-status]"),
    badge: panel.querySelector("[data-mm-record-badge]"),
  };
  const stage = room.root.querySelector("[data-mm-stage]");
  if (stage && el.badge) {
    stage.appendChild(el.badge); // shown over the video while recording
  }
  const role = room.role;
  const other = role === "doctor" ? "patient" : "doctor";
  const base = panel.getAttribute("data-recordings-url");
  const csrf = (panel.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  const records = panel.getAttribute("data-records") === "true";

  let state = { consents: { doctor: false, patient: false }, active: null, started_by: null };
  let inCall = false;
  let recorder = null; // the recording this page is making: { id, media, mix, seq, uploads, stopped, refused }
  let starting = false;
  let busy = false;
  let pending = null; // the answer this page sent, until the server's state comes back
  let outcome = ""; // "saved" or "failed" after this page stopped a recording
  let failure = "";

  const request = (method, url, body, type) =>
    window.fetch(url, {
      method,
      credentials: "same-origin",
      headers: Object.assign({ "X-CSRFToken": csrf, Accept: "application/json" }, type ? { "Content-Type": type } : {}),
      body,
    });

  const problem = async (response) => {
    try {
      return (await response.json()).error.message;
    } catch (error) {
      return interpolate(gettext("The server did not accept it (%(status)s)."), { status: response.status }, true);
    }
  };

  const render = () => {
    const mine = state.consents[role];
    const theirs = state.consents[other];
    let view = "off";
    const doctorIsOther = other === "doctor";
    let text = doctorIsOther
      ? gettext("Recording is off. It starts only when you and the doctor both turn it on.")
      : gettext("Recording is off. It starts only when you and the patient both turn it on.");
    if (state.active) {
      view = "recording";
      text = gettext("Recording ●  Either of you can stop it at any time by turning Record off.");
    } else if (mine && theirs) {
      view = "starting";
      text = gettext("You both agreed. Starting the recording…");
    } else if (mine) {
      view = "waiting";
      text = doctorIsOther ? gettext("Waiting for the doctor's consent") : gettext("Waiting for the patient's consent");
    } else if (outcome === "saved") {
      view = "saved";
      text = doctorIsOther
        ? gettext("Recording stopped and saved. You and the doctor can download it from the appointment page.")
        : gettext("Recording stopped and saved. You and the patient can download it from the appointment page.");
    } else if (outcome === "failed") {
      view = "failed";
      text = interpolate(gettext("The recording could not be saved: %(reason)s"), { reason: failure }, true);
    } else if (theirs) {
      view = "asked";
      text = doctorIsOther
        ? gettext("The doctor would like to record this consultation. Turn on Record if you agree.")
        : gettext("The patient would like to record this consultation. Turn on Record if you agree.");
    }
    panel.setAttribute("data-state", view);
    el.status.textContent = text;
    el.consent.checked = pending === null ? mine : pending;
    el.consent.disabled = !inCall || busy;
    if (el.badge) {
      el.badge.hidden = !state.active;
    }
  };

  // --- Uploading, in order, each slice once (the server ignores a repeated seq) ---------------

  const upload = async (rec, seq, blob) => {
    for (let attempt = 1; attempt <= UPLOAD_ATTEMPTS && !rec.refused; attempt += 1) {
      let response = null;
      try {
        response = await request("PUT", `${base}${rec.id}/chunks/${seq}/`, blob, rec.media.mimeType || "application/octet-stream");
      } catch (error) {
        response = null; // the network: try again
      }
      if (response && response.ok) {
        return;
      }
      if (response && response.status >= 400 && response.status < 500) {
        // Refused for good (consent withdrawn, too large…): stop recording what cannot be kept.
        rec.refused = true;
        if (response.status !== 409) {
          outcome = "failed";
          failure = await problem(response);
        }
        stopLocal();
        return;
      }
      await wait(500 * 2 ** attempt);
    }
  };

  const stopLocal = async () => {
    const rec = recorder;
    if (!rec) {
      return;
    }
    recorder = null;
    if (rec.media.state !== "inactive") {
      rec.media.stop(); // fires a last dataavailable, then stop
    }
    await rec.stopped;
    await rec.uploads;
    rec.mix.close();
    try {
      const response = await request("POST", `${base}${rec.id}/finish/`);
      if (response.ok && outcome !== "failed") {
        outcome = "saved";
      }
    } catch (error) {
      // The server finishes or discards it by itself (the retention task).
    }
    render();
  };

  const start = async () => {
    starting = true;
    outcome = "";
    try {
      const mimeType = window.MediaRecorder ? TYPES.find((type) => window.MediaRecorder.isTypeSupported(type)) : null;
      if (!mimeType) {
        outcome = "failed";
        failure = gettext("this browser cannot record video. Use a recent Chrome, Edge or Firefox.");
        return;
      }
      const response = await request("POST", base, JSON.stringify({ mime_type: mimeType }), "application/json");
      if (!response.ok) {
        if (response.status !== 409) {
          outcome = "failed";
          failure = await problem(response);
        }
        return;
      }
      const body = await response.json();
      const mix = composite(room);
      const media = new window.MediaRecorder(mix.stream, { mimeType, videoBitsPerSecond: 1_000_000, audioBitsPerSecond: 64_000 });
      const rec = { id: body.id, media, mix, seq: 0, uploads: Promise.resolve(), refused: false, stopped: null };
      rec.stopped = new Promise((resolve) => media.addEventListener("stop", resolve, { once: true }));
      media.addEventListener("dataavailable", (event) => {
        if (event.data && event.data.size > 0) {
          const seq = rec.seq;
          rec.seq += 1;
          rec.uploads = rec.uploads.then(() => upload(rec, seq, event.data));
        }
      });
      media.start(TIMESLICE_MS);
      recorder = rec;
    } catch (error) {
      outcome = "failed";
      failure = (error && error.message) || gettext("the recorder did not start.");
    } finally {
      starting = false;
      render();
    }
  };

  // The doctor's page records once both have agreed and nothing is recording.
  const maybeStart = () => {
    const mine = pending === null ? state.consents[role] : pending;
    if (!records || !inCall || starting || recorder || !mine || !state.consents[other]) {
      return;
    }
    const me = room.me();
    if (state.active && me && state.started_by === me.id) {
      // Left over from a page that is gone (a reload): close it; the next state starts afresh.
      starting = true;
      request("POST", `${base}${state.active}/finish/`)
        .catch(() => {})
        .then(() => {
          starting = false;
        });
      return;
    }
    if (!state.active) {
      start();
    }
  };

  const apply = (next) => {
    state = { consents: next.consents, active: next.active, started_by: next.started_by };
    if (pending === state.consents[role]) {
      pending = null; // the server has our answer (a state sent before it arrived keeps it pending)
    }
    if (recorder && state.active !== recorder.id) {
      stopLocal(); // stopped by the server: a withdrawal or someone leaving
    }
    render();
    maybeStart();
  };

  room.onFrame((frame) => {
    if (frame.type === "welcome" || frame.type === "admitted") {
      inCall = frame.type === "admitted" || frame.state === "admitted";
      if (frame.recording) {
        apply(frame.recording);
      } else {
        render();
      }
    } else if (frame.type === "recording") {
      apply(frame);
    } else if (frame.type === "hangup" || frame.type === "ended") {
      inCall = frame.type !== "ended";
      stopLocal();
      render();
    }
  });

  // Leaving from this page (Leave, a refusal): stop and keep what was recorded.
  new MutationObserver(() => {
    const call = room.root.getAttribute("data-call-state");
    if (call === "left" || call === "ended" || call === "refused") {
      inCall = false;
      stopLocal();
      render();
    }
  }).observe(room.root, { attributes: true, attributeFilter: ["data-call-state"] });

  el.consent.addEventListener("change", async () => {
    const consent = el.consent.checked;
    busy = true;
    pending = consent;
    render();
    if (!consent && recorder) {
      // The recording participant stops first, so what was recorded with consent is kept whole;
      // the other side's withdrawal stops it at once on the server.
      await stopLocal();
    }
    if (!room.send({ type: "recording_consent", consent })) {
      pending = null; // not connected: nothing changed
    }
    busy = false;
    render();
  });

  render();
}
