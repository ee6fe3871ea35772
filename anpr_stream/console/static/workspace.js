// The workspace's shell: sign-in with an API token and the case frame (purpose and case stated once, sent with every
// request), the authorisation cited for data in a restricted tier (picked from the registry when a request needs
// one), refusals shown with their reason, the views by location hash, tables and downloads. The views live in
// investigate.js and dpo.js and register themselves in WS.views.
"use strict";

(function () {
  const KEY = { token: "anpr.ws.token", purpose: "anpr.ws.purpose", caseRef: "anpr.ws.case", auth: "anpr.ws.auth" };
  const REQUIRED_TEXT = {
    judicial_with_prosecutor_decision: "the procureur des Konings' written, reasoned decision for this case",
    senior_authorisation: "a senior officer's authorisation for this case",
    prosecutor_every_query: "the prosecutor's approval of this query",
  };
  const ROLE_HOME = { investigator: "search", dpo: "dpo", admin: "dpo" };

  const state = {
    token: sessionStorage.getItem(KEY.token) || "",
    purpose: sessionStorage.getItem(KEY.purpose) || "",
    caseRef: sessionStorage.getItem(KEY.caseRef) || "",
    auth: JSON.parse(sessionStorage.getItem(KEY.auth) || "null"), // {id, reference, kind} or null
    me: null,
    cameras: [],
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  class ApiError extends Error {
    constructor(status, detail, required) {
      super(detail);
      this.status = status;
      this.detail = detail;
      this.required = required; // the authorisation kind a restricted tier needs (X-Authorisation-Required)
    }
  }

  function headers(extra) {
    const out = {
      Authorization: "Bearer " + state.token,
      "X-Purpose": state.purpose,
      "X-Case-Reference": state.caseRef,
    };
    if (state.auth) out["X-Authorisation-Id"] = String(state.auth.id);
    return Object.assign(out, extra || {});
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value === undefined || value === null || value === "") continue;
      for (const one of Array.isArray(value) ? value : [value]) search.append(key, String(one));
    }
    const text = search.toString();
    return text ? "?" + text : "";
  }

  async function detailOf(resp) {
    try {
      const body = await resp.json();
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) {
        return body.detail.map((e) => (e.loc || []).slice(1).join(".") + ": " + e.msg).join("; ");
      }
    } catch (err) {
      // not JSON
    }
    return "HTTP " + resp.status;
  }

  // Every request of the pages: token, purpose, case (and the authorisation cited); a refusal becomes an ApiError
  // with the service's reason. `as`: "json" (default), "text" or "blob".
  async function api(path, options) {
    const opts = options || {};
    const init = { method: opts.method || "GET", headers: headers(), cache: "no-store" };
    if (opts.body !== undefined) {
      init.body = JSON.stringify(opts.body);
      init.headers["Content-Type"] = "application/json";
    }
    let resp;
    try {
      resp = await fetch(path + query(opts.params), init);
    } catch (err) {
      throw new ApiError(0, "the service cannot be reached");
    }
    if (resp.status === 401) {
      const detail = await detailOf(resp);
      showSignin("Signed out: " + detail);
      throw new ApiError(401, detail);
    }
    if (!resp.ok) {
      throw new ApiError(resp.status, await detailOf(resp), resp.headers.get("X-Authorisation-Required"));
    }
    const as = opts.as || "json";
    const body = as === "blob" ? await resp.blob() : as === "text" ? await resp.text() : await resp.json();
    return { body, headers: resp.headers };
  }

  // -- refusals and the authorisation they need ------------------------------------------------------------

  function hideRefusal() {
    $("refusal").hidden = true;
  }

  // A refusal is always shown with its reason. One that needs an authorisation lists the registered, current
  // authorisations of that kind for the case in force; picking one cites it and runs the request again (`retry`).
  async function refused(err, retry) {
    if (err.status === 401) return;
    $("refusal").hidden = false;
    $("refusal-title").textContent =
      err.status === 0 ? "Service unreachable" : err.status === 403 ? "Refused" : "Not done (" + err.status + ")";
    $("refusal-reason").textContent = err.detail;
    const box = $("refusal-authorisations");
    box.hidden = !err.required;
    if (!err.required) return;
    $("refusal-needed").textContent =
      "This needs " + (REQUIRED_TEXT[err.required] || err.required) + " (" + err.required + "), registered for case " +
      state.caseRef + ". Cite one of the registered authorisations:";
    const list = $("refusal-choices");
    list.replaceChildren();
    const none = $("refusal-none");
    none.hidden = true;
    let found = [];
    try {
      const { body } = await api("/v1/authorisations", { params: { current: "true" } });
      found = body.authorisations.filter((a) => a.kind === err.required);
    } catch (listErr) {
      none.hidden = false;
      none.textContent = "The registry could not be read: " + listErr.detail;
      return;
    }
    if (!found.length) {
      none.hidden = false;
      none.textContent =
        "No current authorisation of this kind is registered for case " + state.caseRef +
        ". The zone's information manager registers the decision (anpr-stream authorisations register).";
      return;
    }
    for (const a of found) {
      const item = el("li", "choice");
      const scope = [
        a.plates ? "plates " + a.plates.join(", ") : null,
        a.cameras ? "cameras " + a.cameras.join(", ") : null,
        "data " + day(a.data_from) + " – " + day(a.data_until),
        "valid until " + when(a.valid_until),
        a.single_query ? "one query" : null,
      ].filter(Boolean);
      const button = el("button", "cite", "Cite #" + a.authorisation_id);
      button.type = "button";
      button.dataset.authorisationId = String(a.authorisation_id);
      button.addEventListener("click", () => {
        cite({ id: a.authorisation_id, reference: a.reference, kind: a.kind });
        hideRefusal();
        if (retry) retry();
      });
      item.append(button, el("span", "choice-ref", a.reference + " · " + a.issuing_authority + " · " + a.issued_by),
        el("span", "choice-scope", scope.join(" · ")));
      list.appendChild(item);
    }
  }

  function cite(auth) {
    state.auth = auth;
    if (auth) sessionStorage.setItem(KEY.auth, JSON.stringify(auth));
    else sessionStorage.removeItem(KEY.auth);
    renderFrame();
  }

  // -- sign-in and the case frame ----------------------------------------------------------------------------

  function showSignin(message) {
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("signin-purpose").value = state.purpose;
    $("signin-case").value = state.caseRef;
  }

  async function signin(event) {
    event.preventDefault();
    state.token = $("signin-token").value.trim();
    state.purpose = $("signin-purpose").value.trim();
    state.caseRef = $("signin-case").value.trim();
    cite(null);
    if (await start()) {
      sessionStorage.setItem(KEY.token, state.token);
      sessionStorage.setItem(KEY.purpose, state.purpose);
      sessionStorage.setItem(KEY.caseRef, state.caseRef);
      $("signin-token").value = "";
    }
  }

  async function start() {
    if (!state.token || !state.purpose || !state.caseRef) {
      showSignin("");
      return false;
    }
    try {
      state.me = (await api("/v1/me")).body;
    } catch (err) {
      if (err.status !== 401) showSignin(err.status === 0 ? err.detail : "Sign-in failed: " + err.detail);
      return false;
    }
    const role = state.me.role;
    $("signin").hidden = true;
    $("app").hidden = false;
    $("who").textContent = state.me.name + " (" + role + ")";
    for (const link of $("nav").querySelectorAll("[data-role]")) {
      link.hidden = !link.dataset.role.split(" ").includes(role);
    }
    renderFrame();
    if (role === "investigator") {
      try {
        state.cameras = (await api("/v1/cameras")).body.cameras;
      } catch (err) {
        refused(err);
      }
      fillCameras();
    }
    route();
    return true;
  }

  async function signout() {
    // Revoked on the server before the page forgets it (as in the dispatch console).
    if (state.token) {
      try {
        await fetch("/v1/session/logout", { method: "POST", headers: headers(), cache: "no-store" });
      } catch (err) {
        // the token still ends at its expiry, or with `anpr-stream users revoke`
      }
    }
    for (const key of Object.values(KEY)) sessionStorage.removeItem(key);
    state.token = "";
    state.auth = null;
    state.me = null; // no view runs once signed out (the hash change below would otherwise load one)
    location.hash = "";
    showSignin("Signed out.");
  }

  function renderFrame() {
    $("frame-purpose").textContent = state.purpose;
    $("frame-case").textContent = state.caseRef;
    $("frame-auth").textContent = state.auth
      ? "#" + state.auth.id + " (" + state.auth.reference + ")"
      : "none cited";
    $("frame-drop").hidden = !state.auth;
  }

  function changeCase(event) {
    event.preventDefault();
    const purpose = $("frame-purpose-input").value.trim();
    const caseRef = $("frame-case-input").value.trim();
    if (!purpose || !caseRef) return;
    state.purpose = purpose;
    state.caseRef = caseRef;
    sessionStorage.setItem(KEY.purpose, purpose);
    sessionStorage.setItem(KEY.caseRef, caseRef);
    cite(null); // an authorisation belongs to its case
    $("frame-form").hidden = true;
    hideRefusal();
    // What is on screen was asked for under the old case: leave it, and ask nothing until the user does (the home
    // page of an investigator runs no query by itself).
    for (const node of document.querySelectorAll(".results, #dpo-body")) node.replaceChildren();
    for (const node of document.querySelectorAll(".window")) node.textContent = "";
    $("vehicle-body").hidden = true;
    go(ROLE_HOME[state.me.role] || "search", {});
  }

  // -- views -------------------------------------------------------------------------------------------------

  const views = {}; // name -> {show(params)}

  function parseHash() {
    const raw = location.hash.replace(/^#/, "");
    const cut = raw.indexOf("?");
    const name = cut < 0 ? raw : raw.slice(0, cut);
    const params = new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1));
    return { name, params };
  }

  function go(name, params) {
    const text = query(params);
    const target = "#" + name + text;
    if (location.hash === target) route();
    else location.hash = target;
  }

  function route() {
    if (!state.me) return;
    const role = state.me.role;
    let { name, params } = parseHash();
    const allowed = Object.keys(views).filter((v) => views[v].roles.includes(role));
    if (!allowed.length) {
      name = "none";
      $("none-reason").textContent =
        "Role " + role + " has no pages here. " +
        (role === "dispatcher" ? "Live hits are in the dispatch console." : "Ask the zone's administrator.");
    } else if (!allowed.includes(name)) {
      name = ROLE_HOME[role] && allowed.includes(ROLE_HOME[role]) ? ROLE_HOME[role] : allowed[0];
      params = new URLSearchParams();
    }
    for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + name;
    for (const link of $("nav").querySelectorAll("a[data-view]")) {
      link.classList.toggle("current", link.dataset.view === name || (name === "vehicle" && link.dataset.view === "search"));
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    hideRefusal();
    if (views[name]) views[name].show(params);
  }

  function fillCameras() {
    for (const select of document.querySelectorAll("select.cameras")) {
      const keep = select.multiple ? [] : [el("option", null, "— choose —")];
      if (!select.multiple) keep[0].value = "";
      select.replaceChildren(...keep);
      for (const c of state.cameras) {
        const option = el("option", null, c.camera_id + " · " + c.name + (c.mobile ? " (mobile)" : ""));
        option.value = c.camera_id;
        select.appendChild(option);
      }
    }
  }

  function camera(id) {
    return state.cameras.find((c) => c.camera_id === id) || null;
  }

  // -- forms, times, tables, downloads ------------------------------------------------------------------------

  // datetime-local (the browser's local time) <-> RFC 3339 with an offset, as the API requires.
  function toIso(local) {
    if (!local) return "";
    const at = new Date(local);
    return Number.isNaN(at.getTime()) ? "" : at.toISOString();
  }

  function toLocal(iso) {
    if (!iso) return "";
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return "";
    const pad = (n) => String(n).padStart(2, "0");
    return at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) + "T" + pad(at.getHours()) +
      ":" + pad(at.getMinutes());
  }

  function when(iso) {
    if (!iso) return "";
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return String(iso);
    return at.toLocaleString("en-GB", { hour12: false, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function day(iso) {
    const at = new Date(iso);
    return Number.isNaN(at.getTime()) ? String(iso) : at.toLocaleDateString("en-GB");
  }

  function windowText(body, asked) {
    const since = body.since ? when(body.since) : "…";
    const until = body.until ? when(body.until) : "now";
    let text = "Window searched: " + since + " – " + until + ".";
    if (asked && asked.since && body.since && new Date(body.since) > new Date(asked.since)) {
      text += " Earlier data was left out (retention, open-access period, or what the cited authorisation covers).";
    }
    return text;
  }

  // A table from rows: columns are [header, cell(row) -> string | Node]. An empty result says so.
  function table(columns, rows, emptyText, className) {
    if (!rows.length) return el("p", "empty", emptyText || "Nothing found.");
    const node = el("table", "grid " + (className || ""));
    const head = node.createTHead().insertRow();
    for (const [title] of columns) {
      const th = el("th", null, title);
      th.scope = "col";
      head.appendChild(th);
    }
    const body = node.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const [, cell] of columns) {
        const td = tr.insertCell();
        const value = cell(row);
        if (value instanceof Node) td.appendChild(value);
        else td.textContent = value === null || value === undefined ? "" : String(value);
      }
    }
    return node;
  }

  function link(text, hash, className) {
    const a = el("a", className, text);
    a.href = hash;
    return a;
  }

  // A plate opens its vehicle page over the window the user was looking at (`span`: {since, until}).
  function plateLink(plate, span) {
    const { since, until } = span || {};
    return link(plate, "#vehicle" + query({ plate, since, until }), "plate-link");
  }

  function download(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = el("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function formValues(form) {
    const out = {};
    for (const field of form.elements) {
      if (!field.name) continue;
      if (field.type === "checkbox") out[field.name] = field.checked;
      else if (field.multiple) out[field.name] = Array.from(field.selectedOptions).map((o) => o.value);
      else out[field.name] = field.value.trim();
    }
    return out;
  }

  function fillForm(form, params) {
    for (const field of form.elements) {
      if (!field.name || !params.has(field.name)) continue;
      const values = params.getAll(field.name);
      if (field.type === "checkbox") field.checked = values[0] === "true";
      else if (field.multiple) {
        for (const option of field.options) option.selected = values.includes(option.value);
      } else if (field.type === "datetime-local") field.value = toLocal(values[0]);
      else field.value = values[0];
    }
  }

  function busy(node, text) {
    node.replaceChildren(el("p", "loading", text || "Loading…"));
  }

  window.WS = {
    state, api, refused, hideRefusal, views, go, el, $, table, link, plateLink, download, formValues, fillForm,
    toIso, toLocal, when, day, windowText, query, camera, busy, ApiError,
  };

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signin);
    $("signout").addEventListener("click", signout);
    $("refusal-close").addEventListener("click", hideRefusal);
    $("frame-drop").addEventListener("click", () => cite(null));
    $("frame-change").addEventListener("click", () => {
      $("frame-purpose-input").value = state.purpose;
      $("frame-case-input").value = state.caseRef;
      $("frame-form").hidden = false;
      $("frame-purpose-input").focus();
    });
    $("frame-cancel").addEventListener("click", () => ($("frame-form").hidden = true));
    $("frame-form").addEventListener("submit", changeCase);
    window.addEventListener("hashchange", route);
    start();
  });
})();
