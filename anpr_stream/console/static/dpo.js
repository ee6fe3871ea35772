// The data protection officer's page: GET /v1/dpo/report drawn as sections (retention compliance per data class,
// purges, topic retention, access per user, purpose and endpoint with denials, the audit chain and its signed
// checkpoints, restricted-tier requests with their authorisations), charts as inline SVG, exports as CSV and JSON.
"use strict";

(function () {
  const WS = window.WS;
  const { $, el, api, refused, table, when, toIso, busy } = WS;
  const Charts = window.Charts;
  const state = { asked: {} };

  function section(title, id) {
    const node = el("section", "dpo-section");
    node.id = id;
    const h = el("h3", null, title);
    h.id = id + "-title";
    node.setAttribute("aria-labelledby", h.id);
    node.appendChild(h);
    return node;
  }

  function badge(ok, text) {
    return el("span", "badge " + (ok ? "ok" : "bad"), text);
  }

  function list(items, className) {
    const ul = el("ul", className);
    for (const item of items) ul.appendChild(el("li", null, item));
    return ul;
  }

  function holdings(report) {
    const node = section("Retention compliance", "dpo-retention");
    const violations = [...report.violations];
    const check = report.retention_check;
    if (check) for (const v of check.violations) if (!violations.includes(v)) violations.push(v);
    node.appendChild(violations.length
      ? list(violations, "violations")
      : el("p", "compliant", "No data is held past the " + report.policy + " policy's horizons."));
    // Each class against its own horizon (100 %): a bar past the line is data kept longer than the policy allows.
    node.appendChild(Charts.bars("Age of the oldest record per data class, as a share of the policy's horizon",
      report.holdings.map((h) => ({
        label: h.data_class,
        parts: [{ value: Math.round((100 * (h.oldest_age_days || 0)) / h.horizon_days),
          cls: h.violation ? "bad" : h.past_horizon ? "warn" : "ok", name: "oldest record (% of horizon)" }],
        limit: 100, limitLabel: "horizon: " + h.horizon_days + " days",
        note: h.oldest_age_days === null ? "empty" : h.oldest_age_days + " of " + h.horizon_days + " days",
      })), { limitName: "horizon", unitMax: 100 }));
    node.appendChild(table([
      ["Data class", (h) => h.data_class],
      ["Records", (h) => h.rows],
      ["Oldest", (h) => (h.oldest ? when(h.oldest) : "—")],
      ["Age (days)", (h) => (h.oldest_age_days === null ? "—" : h.oldest_age_days)],
      ["Kept (days)", (h) => h.horizon_days],
      ["Partitions", (h) => (h.partitions === null || h.partitions === undefined ? "" : h.partitions +
        (h.detached_partitions ? " (" + h.detached_partitions + " detached)" : ""))],
      ["State", (h) => (h.violation ? badge(false, h.violation) : h.past_horizon ? badge(false, "purge due")
        : badge(true, "within policy"))],
    ], report.holdings, "Nothing held.", "holdings"));
    return node;
  }

  function purges(report) {
    const node = section("Purge history", "dpo-purges");
    node.appendChild(table([
      ["Ran", (p) => when(p.ran_at)],
      ["As of", (p) => when(p.as_of)],
      ["Policy", (p) => p.policy],
      ["Day partitions dropped", (p) => p.partitions_dropped + (p.dropped_partitions.length ? " (" +
        p.dropped_partitions.join(", ") + ")" : "")],
      ["Passages removed", (p) => p.passages_removed],
      ["Hits removed", (p) => p.hits_removed],
      ["Outcomes removed", (p) => p.outcomes_removed],
    ], report.purges, "No purge ran in this window.", "purges"));
    return node;
  }

  function topics(report) {
    const node = section("Topic retention", "dpo-topics");
    const check = report.retention_check;
    if (!check) {
      node.appendChild(el("p", "empty", "The topics were not checked."));
      return node;
    }
    if (check.kafka_error) node.appendChild(el("p", "refused-inline", "Kafka could not be checked: " +
      check.kafka_error));
    node.appendChild(table([
      ["Topic", (t) => t.topic],
      ["Carries", (t) => t.role],
      ["Cleanup", (t) => t.cleanup_policy || ""],
      ["Kept at most (days)", (t) => (t.bound_days === null || t.bound_days === undefined ? "unbounded"
        : Math.round(t.bound_days * 10) / 10)],
      ["Policy (days)", (t) => (t.horizon_days === null || t.horizon_days === undefined ? "" : t.horizon_days)],
      ["Oldest record", (t) => (t.oldest ? when(t.oldest) : "—")],
      ["State", (t) => (t.error ? badge(false, t.error) : t.violations.length ? badge(false, t.violations.join("; "))
        : badge(true, "within policy"))],
    ], check.topics, "No topics.", "topics"));
    return node;
  }

  // Requests per user, per purpose and per endpoint: allowed and denied, summed from the report's counts.
  function sums(requests, keyOf) {
    const out = new Map();
    for (const r of requests) {
      const key = keyOf(r) || "(none stated)";
      const sum = out.get(key) || { allowed: 0, denied: 0 };
      sum.allowed += r.allowed;
      sum.denied += r.denied;
      out.set(key, sum);
    }
    return [...out.entries()].sort((a, b) => b[1].allowed + b[1].denied - (a[1].allowed + a[1].denied));
  }

  function accessChart(title, entries) {
    return Charts.bars(title, entries.slice(0, 12).map(([label, s]) => ({
      label,
      parts: [{ value: s.allowed, cls: "ok", name: "allowed" }, { value: s.denied, cls: "bad", name: "denied" }],
      note: s.allowed + " / " + s.denied + " denied",
    })));
  }

  function access(report) {
    const node = section("Access", "dpo-access");
    const requests = report.requests;
    const total = requests.reduce((s, r) => s + r.allowed + r.denied, 0);
    node.appendChild(el("p", "window", total + " requests in the window, " + report.denied_total + " denied."));
    const grid = el("div", "chart-grid");
    for (const [title, keyOf, id] of [
      ["Requests per user", (r) => r.actor + " (" + r.role + ")", "dpo-chart-users"],
      ["Requests per purpose", (r) => r.purpose, "dpo-chart-purposes"],
      ["Requests per endpoint", (r) => r.endpoint, "dpo-chart-endpoints"],
    ]) {
      const box = el("figure", "chart");
      box.id = id;
      box.append(el("figcaption", null, title), accessChart(title + ": allowed and denied", sums(requests, keyOf)));
      grid.appendChild(box);
    }
    node.appendChild(grid);
    const details = el("details");
    details.appendChild(el("summary", null, "Every user, endpoint and purpose"));
    details.appendChild(table([
      ["User", (r) => r.actor],
      ["Role", (r) => r.role],
      ["Endpoint", (r) => r.endpoint],
      ["Purpose", (r) => r.purpose || ""],
      ["Allowed", (r) => r.allowed],
      ["Denied", (r) => r.denied],
      ["Rows returned", (r) => r.results],
    ], requests, "No requests.", "requests"));
    node.appendChild(details);
    return node;
  }

  function denials(report) {
    const node = section("Denied requests", "dpo-denied");
    node.appendChild(el("p", "window", report.denied_total + " denied in the window" +
      (report.denied_total > report.denied.length ? "; the newest " + report.denied.length + " shown." : ".")));
    node.appendChild(table([
      ["When", (d) => when(d.at)],
      ["User", (d) => d.actor + " (" + d.role + ")"],
      ["Endpoint", (d) => d.endpoint],
      ["Purpose", (d) => d.purpose || ""],
      ["Case", (d) => d.case_reference || ""],
      ["Reason", (d) => d.reason || ""],
    ], report.denied, "No request was denied in this window.", "denied"));
    return node;
  }

  function chain(report) {
    const node = section("Audit log", "dpo-chain");
    const c = report.audit_chain;
    const lines = el("div", "chain-status");
    lines.appendChild(badge(c.intact, c.intact ? "intact" : "NOT INTACT"));
    lines.appendChild(el("span", null, c.rows + " rows, the last #" + (c.last_id === null ? "—" : c.last_id) +
      "; verified " + when(report.generated_at) + "."));
    node.appendChild(lines);
    if (c.broken) node.appendChild(el("p", "violations", "First break: " + c.broken));
    const cp = c.last_checkpoint;
    if (c.checkpoints_verified) {
      node.appendChild(el("p", null, cp
        ? "Last signed checkpoint #" + cp.seq + " (" + cp.reason + ", key " + cp.key_id + ") issued " +
          when(cp.issued_at) + ": signs rows up to #" + cp.head_id + " (" + cp.total_rows + " rows); " +
          (c.unsigned_tail || 0) + " rows appended since, signed at the next checkpoint."
        : "No signed checkpoint yet."));
    } else if (c.checkpoints_verified === false && !c.note) {
      node.appendChild(el("p", "hint", "Signed checkpoints not verified here: run anpr-stream audit verify."));
    }
    if (c.findings && c.findings.length) node.appendChild(list(c.findings, "violations"));
    if (c.note) node.appendChild(el("p", "hint", c.note));
    return node;
  }

  function restricted(report) {
    const node = section("Restricted-tier requests and their authorisations", "dpo-restricted");
    const columns = [
      ["When", (r) => when(r.at)],
      ["User", (r) => r.actor],
      ["Endpoint", (r) => r.endpoint],
      ["Purpose", (r) => r.purpose || ""],
      ["Case", (r) => r.case_reference || ""],
      ["Authorisation", (r) => "#" + r.authorisation_id + " " + (r.kind || "(not registered)")],
      ["Decision", (r) => [r.reference, r.issuing_authority].filter(Boolean).join(" · ")],
      ["Answer", (r) => (r.allowed ? badge(true, "allowed · " + (r.result_count === null ? 0 : r.result_count) +
        " rows") : badge(false, "denied"))],
    ];
    node.appendChild(table(columns, report.restricted_requests, "No request reached a restricted tier.",
      "restricted"));
    if (report.revoked_requests.length) {
      node.appendChild(el("h4", null, "Requests relying on authorisations revoked since"));
      node.appendChild(table([...columns, ["Revoked", (r) => when(r.revoked_at) + " by " + r.revoked_by +
        (r.revocation_reason ? ": " + r.revocation_reason : "")]], report.revoked_requests, "", "revoked"));
    }
    if (report.unused_authorisations.length) {
      node.appendChild(el("h4", null, "Registered authorisations not relied on"));
      node.appendChild(table([
        ["#", (a) => a.authorisation_id],
        ["Kind", (a) => a.kind],
        ["Decision", (a) => a.reference + " · " + a.issuing_authority],
        ["Case", (a) => a.case_reference],
        ["Valid", (a) => when(a.valid_from) + " – " + when(a.valid_until)],
        ["Current", (a) => (a.current ? "yes" : "no")],
      ], report.unused_authorisations, "", "unused"));
    }
    return node;
  }

  function params() {
    return { since: state.asked.since, until: state.asked.until };
  }

  async function load() {
    const body = $("dpo-body");
    busy(body, "Building the report and verifying the audit chain…");
    let report;
    try {
      report = (await api("/v1/dpo/report", { params: params() })).body;
    } catch (err) {
      body.replaceChildren();
      refused(err, load);
      return;
    }
    $("dpo-window").textContent = "Policy " + report.policy + ". Requests and purges from " + when(report.since) +
      " to " + when(report.until) + "; generated " + when(report.generated_at) + ".";
    body.replaceChildren(holdings(report), purges(report), topics(report), access(report), denials(report),
      chain(report), restricted(report));
  }

  async function exportReport(format) {
    try {
      const { body } = await api("/v1/dpo/report", { params: { ...params(), format: format === "csv" ? "csv" : "" },
        as: "blob" });
      const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "");
      WS.download(body, "dpo-report-" + stamp + (format === "csv" ? ".csv" : ".json"));
    } catch (err) {
      refused(err, () => exportReport(format));
    }
  }

  WS.views.dpo = {
    roles: ["dpo", "admin"],
    show(hashParams) {
      WS.fillForm($("dpo-form"), hashParams);
      state.asked = { since: hashParams.get("since") || "", until: hashParams.get("until") || "" };
      load();
    },
  };

  document.addEventListener("DOMContentLoaded", () => {
    $("dpo-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const v = WS.formValues($("dpo-form"));
      WS.go("dpo", { since: toIso(v.since), until: toIso(v.until) });
    });
    $("dpo-export-csv").addEventListener("click", () => exportReport("csv"));
    $("dpo-export-json").addEventListener("click", () => exportReport("json"));
  });
})();
