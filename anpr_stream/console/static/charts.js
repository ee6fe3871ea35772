// Charts as inline SVG, drawn from data already on the page (no library, nothing fetched): horizontal bars (stacked
// parts, an optional limit marker per row) and a timeline of passages with one lane per camera.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function frame(width, height, label) {
    const svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, class: "chart-svg", role: "img",
      "aria-label": label, width: "100%" });
    svg.appendChild(svgEl("title", {}, label));
    return svg;
  }

  // rows: [{label, parts: [{value, cls, name}], limit?: number, limitLabel?: string, note?: string}]
  function bars(label, rows, options) {
    const opts = options || {};
    const width = 640;
    const labelWidth = opts.labelWidth || 170;
    const rowHeight = 22;
    const top = 22;
    const height = top + rows.length * rowHeight + 8;
    const svg = frame(width, height, label);
    const max = Math.max(opts.unitMax || 1,
      ...rows.map((r) => Math.max(r.limit || 0, r.parts.reduce((s, p) => s + p.value, 0))));
    const scale = (width - labelWidth - 100) / max; // room for the value after the longest bar
    const legend = new Map();
    rows.forEach((row, i) => {
      const y = top + i * rowHeight;
      const g = svgEl("g", { class: "bar-row" });
      g.appendChild(svgEl("text", { x: labelWidth - 6, y: y + 14, "text-anchor": "end", class: "bar-label" },
        row.label.length > 26 ? row.label.slice(0, 25) + "…" : row.label));
      let x = labelWidth;
      let total = 0;
      for (const part of row.parts) {
        legend.set(part.cls, part.name);
        if (!(part.value > 0)) continue;
        const w = Math.max(2, part.value * scale);
        const rect = svgEl("rect", { x, y: y + 3, width: w, height: rowHeight - 8, class: "bar " + part.cls });
        rect.appendChild(svgEl("title", {}, row.label + ": " + part.value + " " + part.name));
        g.appendChild(rect);
        x += w;
        total += part.value;
      }
      g.appendChild(svgEl("text", { x: x + 4, y: y + 14, class: "bar-value" }, row.note || total));
      if (row.limit) {
        const lx = labelWidth + row.limit * scale;
        const line = svgEl("line", { x1: lx, x2: lx, y1: y, y2: y + rowHeight - 2, class: "bar-limit" });
        line.appendChild(svgEl("title", {}, row.limitLabel || "limit " + row.limit));
        g.appendChild(line);
      }
      svg.appendChild(g);
    });
    let lx = labelWidth;
    for (const [cls, name] of legend) {
      svg.appendChild(svgEl("rect", { x: lx, y: 4, width: 10, height: 10, class: "bar " + cls }));
      svg.appendChild(svgEl("text", { x: lx + 14, y: 13, class: "bar-legend" }, name));
      lx += 24 + name.length * 7;
    }
    if (opts.limitName) {
      svg.appendChild(svgEl("line", { x1: lx, x2: lx, y1: 3, y2: 15, class: "bar-limit" }));
      svg.appendChild(svgEl("text", { x: lx + 6, y: 13, class: "bar-legend" }, opts.limitName));
    }
    return svg;
  }

  // passages: [{observed_at, camera_id, ...}]; lanes: camera ids in display order; name(id) -> label.
  function timeline(label, passages, lanes, name) {
    const width = 640;
    const labelWidth = 150;
    const laneHeight = 24;
    const top = 8;
    const height = top + lanes.length * laneHeight + 30;
    const svg = frame(width, height, label);
    const times = passages.map((p) => new Date(p.observed_at).getTime()).filter((t) => !Number.isNaN(t));
    if (!times.length) return svg;
    let start = Math.min(...times);
    let end = Math.max(...times);
    if (end - start < 60000) {
      start -= 30000;
      end += 30000;
    }
    const x = (t) => labelWidth + ((t - start) / (end - start)) * (width - labelWidth - 16);
    lanes.forEach((lane, i) => {
      const y = top + i * laneHeight + laneHeight / 2;
      svg.appendChild(svgEl("line", { x1: labelWidth, x2: width - 16, y1: y, y2: y, class: "lane" }));
      const label = name(lane);
      const text = svgEl("text", { x: labelWidth - 6, y: y + 4, "text-anchor": "end", class: "bar-label" },
        label.length > 22 ? label.slice(0, 21) + "…" : label);
      text.appendChild(svgEl("title", {}, label));
      svg.appendChild(text);
    });
    const axisY = top + lanes.length * laneHeight + 6;
    svg.appendChild(svgEl("line", { x1: labelWidth, x2: width - 16, y1: axisY, y2: axisY, class: "axis" }));
    for (let k = 0; k <= 4; k++) {
      const t = start + ((end - start) * k) / 4;
      const tx = x(t);
      svg.appendChild(svgEl("line", { x1: tx, x2: tx, y1: axisY, y2: axisY + 4, class: "axis" }));
      const text = new Date(t).toLocaleString("en-GB", { hour12: false, month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit" });
      svg.appendChild(svgEl("text", { x: tx, y: axisY + 16, "text-anchor": k === 0 ? "start" : k === 4 ? "end" :
        "middle", class: "bar-legend" }, text));
    }
    for (const p of passages) {
      const t = new Date(p.observed_at).getTime();
      const lane = lanes.indexOf(p.camera_id);
      if (Number.isNaN(t) || lane < 0) continue;
      const dot = svgEl("circle", { cx: x(t), cy: top + lane * laneHeight + laneHeight / 2, r: 5,
        class: "passage-dot" + (p.mobile ? " mobile" : "") });
      dot.appendChild(svgEl("title", {}, new Date(t).toLocaleString("en-GB", { hour12: false }) + " " + p.camera_id +
        " (" + p.plate_read + ")"));
      svg.appendChild(dot);
    }
    return svg;
  }

  window.Charts = { bars, timeline };
})();
