// The dispatch console: login with an API token, live hits over Server-Sent Events read with fetch() (so that the
// request carries the token, the purpose and the case reference), resumption from the last event id, outcomes,
// the reads' evidence images (plate crop first, the others on demand).
"use strict";

(function () {
  const PURPOSE = "dispatch";
  const STREAM = "/v1/live/hits";
  const STALE_MS = 40000; // the server sends a keepalive every 15 s: silence this long means the line is dead
  const MAX_CARDS = 200;
  const OUTCOME_TEXT = {
    intercepted: "Intercepted",
    not_found: "Not found",
    false_read: "False read",
    other: "Other",
  };
  const IMAGE_TEXT = { plate: "plate crop", overview: "overview", vehicle: "vehicle" };

  const state = {
    token: sessionStorage.getItem("anpr.token") || "",
    caseRef: sessionStorage.getItem("anpr.case") || "",
    muted: localStorage.getItem("anpr.muted") === "1",
    lastEventId: null,
    live: false,
    hits: new Map(), // hit_id -> card element
    outcomes: new Map(), // hit_id -> latest outcome
    repeats: new Set(),
    abort: null,
    running: false,
    audio: null,
  };

  const $ = (id) => document.getElementById(id);

  function headers(extra) {
    return Object.assign(
      {
        Authorization: "Bearer " + state.token,
        "X-Purpose": PURPOSE,
        "X-Case-Reference": state.caseRef,
      },
      extra || {},
    );
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // -- login -------------------------------------------------------------------------------------------------

  async function login(event) {
    event.preventDefault();
    state.token = $("login-token").value.trim();
    state.caseRef = $("login-case").value.trim();
    unlockAudio();
    const ok = await start();
    if (!ok) return;
    sessionStorage.setItem("anpr.token", state.token);
    sessionStorage.setItem("anpr.case", state.caseRef);
  }

  async function start() {
    let me;
    try {
      const resp = await fetch("/v1/me", { headers: headers(), cache: "no-store" });
      if (!resp.ok) {
        showLogin(resp.status === 401 ? "Token not accepted." : "Login failed (" + resp.status + ").");
        return false;
      }
      me = await resp.json();
    } catch (err) {
      showLogin("The service cannot be reached.");
      return false;
    }
    if (me.role !== "dispatcher" && me.role !== "investigator") {
      showLogin("Role " + me.role + " has no access to live hits.");
      return false;
    }
    $("login").hidden = true;
    $("console").hidden = false;
    $("who").textContent = me.name + " (" + me.role + ") · " + state.caseRef;
    renderMute();
    loadMap();
    state.running = true;
    streamLoop();
    return true;
  }

  function showLogin(message) {
    state.running = false;
    if (state.abort) state.abort.abort();
    $("console").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("login-case").value = state.caseRef;
  }

  async function logout() {
    // The token is revoked on the server before the page forgets it: a copy left behind (another tab, a
    // screenshot, a shared workstation) is then worth nothing. It is forgotten even if the call fails.
    state.running = false;
    if (state.abort) state.abort.abort();
    if (state.token) {
      try {
        await fetch("/v1/session/logout", {
          method: "POST",
          headers: { Authorization: "Bearer " + state.token },
          cache: "no-store",
        });
      } catch (err) {
        // unreachable service: the token still ends at its expiry, or with `anpr-stream users revoke`
      }
    }
    sessionStorage.removeItem("anpr.token");
    sessionStorage.removeItem("anpr.case");
    state.token = "";
    showLogin("Logged out.");
    location.reload();
  }

  // -- map ---------------------------------------------------------------------------------------------------

  async function loadMap() {
    try {
      const resp = await fetch("/v1/live/map.svg", { headers: headers(), cache: "no-store" });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "image/svg+xml");
      const svg = doc.documentElement;
      if (svg.nodeName !== "svg") return;
      $("map").replaceChildren(document.importNode(svg, true));
    } catch (err) {
      // the console works without its map
    }
  }

  function flashCamera(cameraId) {
    const node = document.getElementById("cam-" + cameraId);
    if (!node) return;
    document.querySelectorAll(".map-camera.last").forEach((n) => n.classList.remove("last"));
    node.classList.remove("flash");
    void node.getBoundingClientRect(); // restart the animation
    node.classList.add("flash", "last");
  }

  // -- sound -------------------------------------------------------------------------------------------------

  function unlockAudio() {
    try {
      if (!state.audio) state.audio = new AudioContext();
      if (state.audio.state === "suspended") state.audio.resume();
    } catch (err) {
      state.audio = null;
    }
  }

  function beep() {
    const button = $("mute");
    if (state.muted) return;
    button.dataset.beeps = String(Number(button.dataset.beeps || "0") + 1);
    if (!state.audio) return;
    const now = state.audio.currentTime;
    for (const start of [0, 0.22]) {
      const osc = state.audio.createOscillator();
      const gain = state.audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, now + start);
      gain.gain.exponentialRampToValueAtTime(0.001, now + start + 0.18);
      osc.connect(gain).connect(state.audio.destination);
      osc.start(now + start);
      osc.stop(now + start + 0.2);
    }
  }

  function renderMute() {
    const button = $("mute");
    button.textContent = state.muted ? "Sound off" : "Sound on";
    button.setAttribute("aria-pressed", state.muted ? "true" : "false");
  }

  function toggleMute() {
    state.muted = !state.muted;
    localStorage.setItem("anpr.muted", state.muted ? "1" : "0");
    unlockAudio();
    renderMute();
  }

  // -- the stream --------------------------------------------------------------------------------------------

  function setStatus(name, text) {
    const node = $("status");
    node.dataset.state = name;
    node.textContent = text || name;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function streamLoop() {
    let delay = 500;
    while (state.running) {
      const ctrl = new AbortController();
      state.abort = ctrl;
      let watchdog = null;
      const kick = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ctrl.abort(), STALE_MS);
      };
      try {
        setStatus(state.lastEventId ? "reconnecting" : "connecting");
        const extra = state.lastEventId ? { "Last-Event-ID": state.lastEventId } : {};
        kick();
        const resp = await fetch(STREAM, { headers: headers(extra), signal: ctrl.signal, cache: "no-store" });
        if (resp.status === 401) {
          showLogin("Token no longer accepted.");
          return;
        }
        if (!resp.ok) {
          let reason = String(resp.status);
          try {
            reason = (await resp.json()).detail || reason;
          } catch (err) {
            // not JSON
          }
          throw new Error(reason);
        }
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          kick();
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            if (handleBlock(block)) delay = 500;
          }
        }
      } catch (err) {
        if (!state.running) return;
        if (err && err.name !== "AbortError") $("status").title = String(err.message || err);
      } finally {
        clearTimeout(watchdog);
      }
      state.live = false;
      setStatus("reconnecting", "reconnecting…");
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }

  // One SSE block: returns true for the `ready` event.
  function handleBlock(block) {
    let event = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return false;
    try {
      const body = JSON.parse(data.join("\n"));
      if (event === "hit") onHit(body, id !== null);
      else if (event === "outcome") applyOutcome(body);
    } catch (err) {
      // one event the page cannot show must not stall the stream (a reconnect would replay it for ever)
      console.error("dispatch console: event not shown", event, err);
    }
    if (id !== null) state.lastEventId = id; // only once handled: a cut mid-event replays it
    if (event === "ready") {
      state.live = true;
      setStatus("live", "live");
      $("status").title = "";
      return true;
    }
    return false;
  }

  // -- hits --------------------------------------------------------------------------------------------------

  function onHit(hit, fresh) {
    if (hit.outcome) applyOutcome(Object.assign({ hit_id: hit.hit_id }, hit.outcome));
    if (hit.suppressed) {
      // a repeat of a hit already dispatched: counted, never alerted
      state.repeats.add(hit.hit_id);
      $("repeats-count").textContent = String(state.repeats.size);
      lastSeen(hit, fresh);
      return;
    }
    if (state.hits.has(hit.hit_id)) return; // delivered twice (replay, backlog and live): shown once
    const card = renderCard(hit);
    state.hits.set(hit.hit_id, card);
    insertByTime(card);
    const known = state.outcomes.get(hit.hit_id);
    if (known) renderOutcome(card, known);
    $("empty").hidden = true;
    if (fresh) {
      card.classList.add("new");
      flashCamera(hit.camera ? hit.camera.camera_id : "");
      if (Number(hit.priority) === 1) beep();
    }
    while (state.hits.size > MAX_CARDS) {
      const [oldest] = state.hits.keys();
      state.hits.get(oldest).remove();
      state.hits.delete(oldest);
    }
  }

  // A repeat moves no card but tells where the vehicle is now: the alert it repeats (same entry, the newest card
  // observed before it) shows the latest sighting, and the map flashes that camera.
  function lastSeen(hit, fresh) {
    const read = hit.read || {};
    const camera = hit.camera || {};
    const entryId = hit.entry_ref || hit.entry_id || (hit.entry || {}).entry_id || "";
    const at = new Date(read.observed_at);
    if (!entryId || Number.isNaN(at.getTime())) return;
    const iso = at.toISOString();
    let target = null;
    for (const card of $("hits").querySelectorAll(".hit-card")) {
      if (card.dataset.entry === entryId && card.dataset.observed <= iso) {
        target = card; // cards are newest first: the first one found is the alert this repeats
        break;
      }
    }
    if (!target || (target.dataset.lastSeen && target.dataset.lastSeen >= iso)) return;
    target.dataset.lastSeen = iso;
    const line = target.querySelector(".last-seen");
    const where = [camera.name || read.camera_id || camera.camera_id, camera.road, camera.direction || read.direction];
    line.textContent =
      "last seen " + at.toLocaleTimeString("en-GB", { hour12: false }) + " · " + where.filter(Boolean).join(" · ");
    line.hidden = false;
    if (fresh) flashCamera(camera.camera_id || read.camera_id || "");
  }

  function insertByTime(card) {
    const list = $("hits");
    const at = card.dataset.observed;
    for (const other of list.querySelectorAll(".hit-card")) {
      if (other.dataset.observed < at) {
        list.insertBefore(card, other);
        return;
      }
    }
    list.appendChild(card);
  }

  function plateNode(text, marks, className) {
    const node = el("span", "plate " + className);
    for (let i = 0; i < text.length; i++) {
      const ch = el(marks && marks[i] ? "mark" : "span", null, text[i]);
      node.appendChild(ch);
    }
    return node;
  }

  function renderCard(hit) {
    const entry = hit.entry || {};
    const read = hit.read || {};
    const camera = hit.camera || {};
    const covert = Boolean(entry.covert) && !hit.list;
    const priority = Number(hit.priority) || 0; // null for covert entries: no priority colour
    const card = el("article", "hit-card priority-" + (priority ? Math.min(Math.max(priority, 1), 4) : "none"));
    card.dataset.hitId = hit.hit_id;
    const observed = new Date(read.observed_at);
    if (Number.isNaN(observed.getTime())) observed.setTime(Date.now());
    card.dataset.observed = observed.toISOString();
    card.dataset.entry = hit.entry_ref || hit.entry_id || entry.entry_id || "";
    if (covert) card.classList.add("covert");

    const head = el("div", "card-head");
    head.appendChild(el("span", "priority", "P" + (priority || "?")));
    head.appendChild(el("span", "action", String(hit.action || "").toUpperCase()));
    head.appendChild(el("span", "list", covert ? "covert list" : hit.list || ""));
    card.appendChild(head);
    if (entry.instruction) card.appendChild(el("p", "instruction", entry.instruction));

    const plates = el("div", "plates");
    const readText = read.plate || read.plate_normalised || "";
    const kind = hit.match || "";
    const comparable = entry.plate && (kind === "ocr" || kind === "fuzzy");
    const marks = comparable ? window.Plates.alignPlates(readText, entry.plate) : null;
    const readBox = el("div", "plate-box");
    readBox.appendChild(el("span", "plate-label", "read"));
    readBox.appendChild(plateNode(readText, marks && marks.read, "plate-read"));
    plates.appendChild(readBox);
    if (entry.plate) {
      const listBox = el("div", "plate-box");
      listBox.appendChild(el("span", "plate-label", kind === "pattern" ? "pattern" : "on list"));
      listBox.appendChild(plateNode(entry.plate, marks && marks.listed, "plate-listed"));
      plates.appendChild(listBox);
    }
    const matchText = kind + (kind === "fuzzy" || hit.distance ? " · distance " + hit.distance : "");
    plates.appendChild(el("span", "match match-" + kind, matchText));
    card.appendChild(plates);
    const kinds = imageKinds(hit, covert);
    if (kinds.length) card.appendChild(evidenceNode(hit.hit_id, kinds));

    const where = el("div", "where");
    where.appendChild(el("span", "camera", camera.name || read.camera_id || camera.camera_id));
    const road = camera.road ? camera.road : "unknown road";
    const direction = camera.direction || read.direction || "?";
    where.appendChild(el("span", "road", road + " · " + direction));
    if (entry.reference) where.appendChild(el("span", "reference", entry.reference));
    card.appendChild(where);

    const when = el("div", "when");
    when.appendChild(el("time", "observed", observed.toLocaleTimeString("en-GB", { hour12: false })));
    const age = el("span", "age", "");
    age.dataset.at = String(observed.getTime());
    when.appendChild(age);
    card.appendChild(when);
    updateAge(age);
    const seen = el("p", "last-seen");
    seen.hidden = true;
    card.appendChild(seen);

    card.appendChild(ackForm(hit.hit_id));
    card.appendChild(el("p", "outcome"));
    return card;
  }

  // -- evidence images ---------------------------------------------------------------------------------------
  // An <img src> cannot send the token: each image is fetched with it (and audited), shown through an object URL
  // (CSP img-src blob:), and fetched only once its card is on screen. Covert hits' images are for cleared users:
  // a card without the list's details asks for none.

  const onScreen =
    "IntersectionObserver" in window
      ? new IntersectionObserver((entries) => {
          for (const entry of entries) {
            if (!entry.isIntersecting) continue;
            onScreen.unobserve(entry.target);
            const img = entry.target.querySelector("img");
            if (img) loadImage(img);
          }
        })
      : null;

  function imageKinds(hit, covert) {
    const images = (hit.read || {}).images;
    if (covert || !images || typeof images !== "object") return [];
    return Object.keys(IMAGE_TEXT).filter((kind) => typeof images[kind] === "string");
  }

  function imageNode(hitId, kind) {
    const img = el("img", "evidence-" + kind);
    img.alt = IMAGE_TEXT[kind] + " of the read";
    img.dataset.hitId = hitId;
    img.dataset.kind = kind;
    return img;
  }

  function evidenceNode(hitId, kinds) {
    const box = el("div", "evidence");
    const first = imageNode(hitId, kinds[0]);
    box.appendChild(first);
    const rest = kinds.slice(1);
    if (rest.length) {
      const names = rest.map((kind) => IMAGE_TEXT[kind]).join(" and ");
      const more = el("button", "evidence-more", "Show " + names);
      more.type = "button";
      more.setAttribute("aria-expanded", "false");
      const extra = el("div", "evidence-extra");
      extra.id = "evidence-" + hitId;
      extra.hidden = true;
      more.setAttribute("aria-controls", extra.id);
      for (const kind of rest) extra.appendChild(imageNode(hitId, kind));
      more.addEventListener("click", () => {
        const open = extra.hidden;
        extra.hidden = !open;
        more.setAttribute("aria-expanded", open ? "true" : "false");
        more.textContent = (open ? "Hide " : "Show ") + names;
        if (open) extra.querySelectorAll("img").forEach(loadImage);
      });
      box.appendChild(more);
      box.appendChild(extra);
    }
    if (onScreen) onScreen.observe(box);
    else loadImage(first);
    return box;
  }

  async function loadImage(img) {
    if (img.dataset.state) return; // loading, shown or failed: asked once
    img.dataset.state = "loading";
    const path = "/v1/hits/" + encodeURIComponent(img.dataset.hitId) + "/images/" + img.dataset.kind;
    try {
      const resp = await fetch(path, { headers: headers(), cache: "no-store" });
      if (!resp.ok) {
        const body = await resp.json().catch(() => ({}));
        throw new Error(typeof body.detail === "string" ? body.detail : "not available (" + resp.status + ")");
      }
      const url = URL.createObjectURL(await resp.blob());
      img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
      img.addEventListener("error", () => URL.revokeObjectURL(url), { once: true });
      img.src = url;
      img.dataset.state = "shown";
    } catch (err) {
      img.dataset.state = "failed";
      const note = el("span", "evidence-missing", IMAGE_TEXT[img.dataset.kind] + ": " + String(err.message || err));
      img.replaceWith(note);
    }
  }

  function ackForm(hitId) {
    const form = el("div", "ack");
    const note = el("input", "note");
    note.placeholder = "note (required for other)";
    note.maxLength = 2000;
    for (const [value, label] of Object.entries(OUTCOME_TEXT)) {
      const button = el("button", "ack-" + value, label);
      button.type = "button";
      button.dataset.outcome = value;
      button.addEventListener("click", () => acknowledge(hitId, value, note, form));
      form.appendChild(button);
    }
    form.appendChild(note);
    form.appendChild(el("span", "ack-error"));
    return form;
  }

  async function acknowledge(hitId, outcome, noteInput, form) {
    const error = form.querySelector(".ack-error");
    const note = noteInput.value.trim();
    if (outcome === "other" && !note) {
      error.textContent = "Other needs a note.";
      noteInput.focus();
      return;
    }
    error.textContent = "";
    form.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      const resp = await fetch("/v1/hits/" + encodeURIComponent(hitId) + "/ack", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ outcome, note: note || null }),
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(typeof body.detail === "string" ? body.detail : "refused (" + resp.status + ")");
      applyOutcome(body);
    } catch (err) {
      error.textContent = String(err.message || err);
    } finally {
      form.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
  }

  function applyOutcome(outcome) {
    const known = state.outcomes.get(outcome.hit_id);
    if (known && known.recorded_at > outcome.recorded_at) return;
    state.outcomes.set(outcome.hit_id, outcome);
    const card = state.hits.get(outcome.hit_id);
    if (card) renderOutcome(card, outcome);
  }

  function renderOutcome(card, outcome) {
    card.classList.add("acked");
    card.classList.remove("new");
    card.dataset.outcome = outcome.outcome;
    const at = new Date(outcome.recorded_at).toLocaleTimeString("en-GB", { hour12: false });
    const text = (OUTCOME_TEXT[outcome.outcome] || outcome.outcome) + " · " + outcome.recorded_by + " " + at;
    card.querySelector(".outcome").textContent = text + (outcome.note ? " · " + outcome.note : "");
  }

  function updateAge(node) {
    const seconds = Math.max(0, Math.round((Date.now() - Number(node.dataset.at)) / 1000));
    let text;
    if (seconds < 60) text = seconds + " s ago";
    else if (seconds < 3600) text = Math.floor(seconds / 60) + " min ago";
    else text = Math.floor(seconds / 3600) + " h " + (Math.floor(seconds / 60) % 60) + " min ago";
    node.textContent = text;
  }

  // -- wiring ------------------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("mute").addEventListener("click", toggleMute);
    $("logout").addEventListener("click", logout);
    setInterval(() => document.querySelectorAll(".age").forEach(updateAge), 1000);
    if (state.token && state.caseRef) start();
    else showLogin("");
  });
})();
