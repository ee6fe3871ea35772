// The investigator's pages: plate search, a camera's passages, the vehicle page (timeline, route on the zone map,
// hits and outcomes, co-travel with the shared passages side by side, exports) and the retroactive check of a new
// watchlist entry followed by its publication. Every request goes through WS.api (purpose, case, authorisation).
"use strict";

(function () {
  const WS = window.WS;
  const { $, el, api, refused, table, plateLink, link, when, toIso, query, busy } = WS;
  const INVESTIGATOR = ["investigator"];

  function cameraCell(id) {
    const c = WS.camera(id);
    return link(c ? c.name : id, "#camera" + query({ id }), "camera-link");
  }

  function passageColumns(extra, span) {
    return [
      ["Time", (p) => when(p.observed_at)],
      ["Camera", (p) => cameraCell(p.camera_id)],
      ["Plate read", (p) => p.plate_read],
      ["Plate", (p) => plateLink(p.plate, span)],
      ["Country", (p) => p.country || ""],
      ["Confidence", (p) => (p.confidence === null || p.confidence === undefined ? "" : p.confidence.toFixed(2))],
      ...(extra || []),
    ];
  }

  // A paged list: `load(cursor)` returns the body; rows are appended page after page.
  function pager(results, more, windowNode, columns, key, load, asked) {
    let rows = [];
    async function page(cursor) {
      if (!cursor) busy(results, "Searching…");
      more.hidden = true;
      let body;
      try {
        body = await load(cursor);
      } catch (err) {
        results.replaceChildren();
        windowNode.textContent = "";
        refused(err, () => page(cursor));
        return;
      }
      rows = cursor ? rows.concat(body[key]) : body[key];
      windowNode.textContent = WS.windowText(body, asked) + " " + rows.length + " passage" +
        (rows.length === 1 ? "" : "s") + (body.next_cursor ? " shown, more on the next page." : ".");
      results.replaceChildren(table(columns, rows, "No passages in this window."));
      more.hidden = !body.next_cursor;
      more.onclick = () => page(body.next_cursor);
    }
    page(null);
  }

  // -- plate search ----------------------------------------------------------------------------------------

  const searchForm = () => $("search-form");

  function showFuzzy() {
    const fuzzy = searchForm().elements.mode.value === "fuzzy";
    for (const node of searchForm().querySelectorAll(".fuzzy-only")) node.hidden = !fuzzy;
  }

  WS.views.search = {
    roles: INVESTIGATOR,
    show(params) {
      WS.fillForm(searchForm(), params);
      showFuzzy();
      if (!params.get("plate")) {
        $("search-results").replaceChildren();
        $("search-window").textContent = "";
        $("search-more").hidden = true;
        searchForm().elements.plate.focus();
        return;
      }
      const asked = {
        plate: params.get("plate"), mode: params.get("mode") || "exact",
        distance: params.get("mode") === "fuzzy" ? params.get("distance") || "1" : "",
        since: params.get("since") || "", until: params.get("until") || "", camera: params.getAll("camera"),
      };
      const extra = asked.mode === "fuzzy" ? [["Edits", (p) => p.distance]] : [];
      pager($("search-results"), $("search-more"), $("search-window"), passageColumns(extra, asked), "passages",
        (cursor) => api("/v1/plates/search", { params: { ...asked, limit: 100, cursor } }).then((r) => r.body),
        asked);
    },
  };

  // -- a camera's passages -----------------------------------------------------------------------------------

  WS.views.camera = {
    roles: INVESTIGATOR,
    show(params) {
      const form = $("camera-form");
      WS.fillForm(form, params);
      const id = params.get("id");
      if (!id) {
        $("camera-results").replaceChildren();
        $("camera-window").textContent = "";
        $("camera-more").hidden = true;
        return;
      }
      const asked = { since: params.get("since") || "", until: params.get("until") || "" };
      pager($("camera-results"), $("camera-more"), $("camera-window"), passageColumns([], asked), "passages",
        (cursor) => api("/v1/cameras/" + encodeURIComponent(id) + "/passages",
          { params: { ...asked, limit: 100, cursor } }).then((r) => r.body),
        asked);
    },
  };

  // -- the vehicle page ----------------------------------------------------------------------------------------

  const vehicle = { plate: "", params: {}, passages: [] };

  function routeParams() {
    return { since: vehicle.params.since, until: vehicle.params.until, ocr: vehicle.params.ocr ? "true" : "" };
  }

  async function loadRoute() {
    const { body } = await api("/v1/plates/" + encodeURIComponent(vehicle.plate) + "/route",
      { params: routeParams() });
    return body;
  }

  function renderTimeline(passages) {
    const lanes = [];
    for (const p of passages) if (!lanes.includes(p.camera_id)) lanes.push(p.camera_id);
    const name = (id) => {
      const c = WS.camera(id);
      return c ? c.name : id;
    };
    $("vehicle-timeline").replaceChildren(passages.length
      ? window.Charts.timeline("Passages of " + vehicle.plate + " by camera over time", passages, lanes, name)
      : el("p", "empty", "No passages in this window."));
  }

  async function renderMap() {
    const node = $("vehicle-map");
    busy(node, "Drawing the route…");
    try {
      const { body } = await api("/v1/plates/" + encodeURIComponent(vehicle.plate) + "/route",
        { params: { ...routeParams(), format: "svg" }, as: "text" });
      const doc = new DOMParser().parseFromString(body, "image/svg+xml");
      const svg = doc.documentElement;
      if (svg.nodeName !== "svg") throw new WS.ApiError(500, "the map is not an SVG drawing");
      node.replaceChildren(document.importNode(svg, true));
    } catch (err) {
      node.replaceChildren(el("p", "empty", "The map could not be drawn: " + err.detail));
    }
  }

  async function renderHits() {
    const node = $("vehicle-hits");
    busy(node);
    try {
      const { body } = await api("/v1/hits", { params: { plate: vehicle.plate, since: vehicle.params.since,
        until: vehicle.params.until, limit: 200 } });
      node.replaceChildren(table([
        ["Time", (h) => when((h.read || {}).observed_at)],
        ["Camera", (h) => cameraCell((h.read || {}).camera_id || (h.camera || {}).camera_id)],
        ["List", (h) => h.list || "covert list"],
        ["Action", (h) => h.action || ""],
        ["Match", (h) => (h.match || "") + (h.distance ? " · " + h.distance : "")],
        ["Dispatched", (h) => (h.dispatched ? "yes" : h.suppressed ? "repeat" : "no")],
        ["Outcome", (h) => (h.outcome ? h.outcome.outcome.replace("_", " ") + (h.outcome.note ? ": " +
          h.outcome.note : "") + " (" + h.outcome.recorded_by + ")" : "none yet")],
      ], body.hits, "No hits of this plate in the window.", "hits"));
    } catch (err) {
      node.replaceChildren(el("p", "refused-inline", "Hits not shown: " + err.detail));
    }
  }

  function renderPassages(passages) {
    $("vehicle-passages").replaceChildren(table([
      ["Time", (p) => when(p.observed_at)],
      ["Camera", (p) => cameraCell(p.camera_id)],
      ["Road", (p) => [p.road, p.direction].filter(Boolean).join(" · ")],
      ["Plate read", (p) => p.plate_read],
      ["Confidence", (p) => p.confidence.toFixed(2)],
      ["Where", (p) => (p.lat === null ? p.note || "" : p.lat.toFixed(5) + ", " + p.lon.toFixed(5) +
        (p.mobile ? " (read position)" : ""))],
    ], passages, "No passages in this window.", "passages"));
  }

  async function exportRoute(format) {
    const status = $("export-status");
    status.textContent = "Exporting…";
    try {
      const { body, headers } = await api("/v1/plates/" + encodeURIComponent(vehicle.plate) + "/route",
        { params: { ...routeParams(), format }, as: "blob" });
      const name = "route-" + vehicle.plate + (format === "csv" ? ".csv" : ".geojson");
      WS.download(body, name);
      status.textContent = "Saved " + name + (headers.get("X-Route-Truncated") === "true"
        ? " (truncated: narrow the window)" : "") + ".";
    } catch (err) {
      status.textContent = "";
      refused(err, () => exportRoute(format));
    }
  }

  function renderShared(row) {
    const node = $("cotravel-shared");
    const title = el("h4", null, "Shared passages: " + vehicle.plate + " and " + row.plate);
    const shared = row.shared.slice().sort((a, b) => (a.target_observed_at < b.target_observed_at ? -1 : 1));
    node.replaceChildren(title, table([
      ["Camera", (s) => cameraCell(s.camera_id)],
      [vehicle.plate, (s) => when(s.target_observed_at)],
      [row.plate, (s) => when(s.observed_at)],
      ["Apart", (s) => Math.round(Math.abs(new Date(s.observed_at) - new Date(s.target_observed_at)) / 1000) + " s" +
        (s.distance_m === null ? "" : " · " + s.distance_m + " m")],
    ], shared, "No shared passages.", "shared"));
  }

  async function cotravel(event) {
    if (event) event.preventDefault();
    const form = $("cotravel-form");
    const node = $("cotravel-results");
    $("cotravel-shared").replaceChildren();
    busy(node, "Looking for vehicles seen with it…");
    try {
      const values = WS.formValues(form);
      const { body } = await api("/v1/plates/" + encodeURIComponent(vehicle.plate) + "/cotravel",
        { params: { ...routeParams(), window_seconds: values.window_seconds, min_cameras: values.min_cameras } });
      let rank = 0;
      const ranked = body.cotravellers.map((r) => ({ ...r, rank: ++rank }));
      const summary = el("p", "window", body.target_passages + " passages of " + vehicle.plate + " compared; " +
        ranked.length + " vehicle" + (ranked.length === 1 ? "" : "s") + " seen with it at " + body.min_cameras +
        "+ cameras within ±" + body.window_seconds + " s.");
      node.replaceChildren(summary, table([
        ["#", (r) => r.rank],
        ["Plate", (r) => plateLink(r.plate, vehicle.params)],
        ["Cameras shared", (r) => r.cameras],
        ["Passages together", (r) => r.copassages],
        ["", (r) => {
          const b = el("button", "compare", "Side by side");
          b.type = "button";
          b.dataset.plate = r.plate;
          b.addEventListener("click", () => renderShared(r));
          return b;
        }],
      ], ranked, "No vehicle was seen with it at enough cameras.", "cotravel"));
    } catch (err) {
      node.replaceChildren();
      refused(err, () => cotravel());
    }
  }

  WS.views.vehicle = {
    roles: INVESTIGATOR,
    async show(params) {
      const form = $("vehicle-form");
      WS.fillForm(form, params);
      const plate = params.get("plate") || "";
      $("vehicle-title").textContent = plate ? "Vehicle " + plate : "Vehicle";
      $("vehicle-body").hidden = true;
      $("vehicle-window").textContent = "";
      if (!plate) return;
      vehicle.plate = plate;
      vehicle.params = { since: params.get("since") || "", until: params.get("until") || "",
        ocr: params.get("ocr") === "true" };
      $("vehicle-window").textContent = "Loading…";
      let body;
      try {
        body = await loadRoute();
      } catch (err) {
        $("vehicle-window").textContent = "";
        refused(err, () => WS.views.vehicle.show(params));
        return;
      }
      vehicle.plate = body.plate;
      vehicle.passages = body.passages;
      $("vehicle-title").textContent = "Vehicle " + body.plate;
      const first = body.passages[0];
      const last = body.passages[body.passages.length - 1];
      const cameras = new Set(body.passages.map((p) => p.camera_id)).size;
      $("vehicle-window").textContent = WS.windowText(body, vehicle.params) + " " + body.passages.length +
        " passages at " + cameras + " camera" + (cameras === 1 ? "" : "s") +
        (first ? "; first " + when(first.observed_at) + ", last " + when(last.observed_at) : "") +
        (body.truncated ? " (truncated: narrow the window)." : ".");
      $("vehicle-body").hidden = false;
      $("cotravel-results").replaceChildren();
      $("cotravel-shared").replaceChildren();
      renderTimeline(body.passages);
      renderPassages(body.passages);
      renderMap();
      renderHits();
    },
  };

  // -- retroactive check and publication -------------------------------------------------------------------

  const retro = { checked: null }; // the entry (JSON text) last checked: publication is of that entry

  function entryOf(values) {
    return {
      entry_id: values.entry_id, list: values.list, plate: values.plate, country: values.country || null,
      priority: Number(values.priority), action: values.action, reference: values.reference || "",
      covert: Boolean(values.covert), valid_from: null, valid_until: null,
    };
  }

  async function checkRetro(event) {
    if (event) event.preventDefault();
    const values = WS.formValues($("retro-form"));
    const entry = entryOf(values);
    const node = $("retro-results");
    $("retro-publish").hidden = true;
    $("retro-published").textContent = "";
    retro.checked = null;
    busy(node, "Checking stored passages…");
    let body;
    try {
      body = (await api("/v1/watchlist/retroactive", { method: "POST", body: entry,
        params: { lookback_days: values.lookback_days } })).body;
    } catch (err) {
      node.replaceChildren();
      $("retro-window").textContent = "";
      refused(err, () => checkRetro());
      return;
    }
    retro.checked = JSON.stringify(entry);
    $("retro-window").textContent = WS.windowText(body) + " " + body.count + " past passage" +
      (body.count === 1 ? "" : "s") + " of " + body.plates.length + " plate" + (body.plates.length === 1 ? "" : "s") +
      " match " + body.entry.plate + (body.truncated ? " (more not shown)." : ".");
    node.replaceChildren(table(passageColumns([["Match", (h) => h.match_kind + (h.distance ? " · " + h.distance
      : "")]]), body.hits, "No stored passage matches this entry."));
    $("retro-publish").hidden = false;
  }

  async function publish() {
    const status = $("retro-published");
    const entry = entryOf(WS.formValues($("retro-form")));
    if (JSON.stringify(entry) !== retro.checked) {
      status.textContent = "The entry changed since it was checked: check it again first.";
      return;
    }
    status.textContent = "Publishing…";
    try {
      const { body } = await api("/v1/watchlist/entries", { method: "POST", body: entry });
      status.textContent = "Published " + body.entry.entry_id + " (" + body.entry.plate + ") to " + body.topic +
        ": the workers alert on it from now on.";
    } catch (err) {
      status.textContent = "";
      refused(err, publish);
    }
  }

  WS.views.retro = {
    roles: INVESTIGATOR,
    show() {
      const form = $("retro-form");
      if (!form.elements.entry_id.value) {
        form.elements.entry_id.value = "WS-" + new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "");
      }
      $("retro-covert-label").hidden = !(WS.state.me && WS.state.me.covert);
      form.elements.plate.focus();
    },
  };

  document.addEventListener("DOMContentLoaded", () => {
    searchForm().elements.mode.addEventListener("change", showFuzzy);
    searchForm().addEventListener("submit", (event) => {
      event.preventDefault();
      const v = WS.formValues(searchForm());
      WS.go("search", { plate: v.plate, mode: v.mode, distance: v.mode === "fuzzy" ? v.distance : "",
        since: toIso(v.since), until: toIso(v.until), camera: v.camera });
    });
    $("camera-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const v = WS.formValues($("camera-form"));
      WS.go("camera", { id: v.id, since: toIso(v.since), until: toIso(v.until) });
    });
    $("vehicle-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const v = WS.formValues($("vehicle-form"));
      WS.go("vehicle", { plate: v.plate, since: toIso(v.since), until: toIso(v.until), ocr: v.ocr ? "true" : "" });
    });
    $("cotravel-form").addEventListener("submit", cotravel);
    $("export-csv").addEventListener("click", () => exportRoute("csv"));
    $("export-geojson").addEventListener("click", () => exportRoute("geojson"));
    $("retro-form").addEventListener("submit", checkRetro);
    $("retro-publish-button").addEventListener("click", publish);
  });
})();
