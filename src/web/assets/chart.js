// The timeline chart: lanes, bars, markers and bands drawn as SVG for a
// time window; no state of its own beyond what it is given.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const LABEL_W = 220;
const AXIS_H = 28;
const LANE_H = 18;
const GROUP_H = 20;
const STEPS = [1e3, 5e3, 15e3, 3e4, 6e4, 3e5, 9e5, 18e5, 36e5, 108e5, 216e5, 432e5, 864e5, 6048e5, 2592e6, 7776e6, 31536e6];

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function titled(el, text) {
  el.appendChild(svgEl("title", {}, text));
  return el;
}

function isoTime(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

function tickLabel(ms, step) {
  const iso = new Date(ms).toISOString();
  if (step >= 864e5) return iso.slice(0, 10);
  if (step >= 6e4) return iso.slice(5, 10) + " " + iso.slice(11, 16);
  return iso.slice(11, 19);
}

// Each bar's track within its lane, so bars that overlap in time sit one
// above the other (past MAX_TRACKS they share the last one).
const MAX_TRACKS = 8;
const TRACK_H = 12;
function pack(bars, to) {
  const tracks = new Map();
  const ends = new Map();
  for (const bar of [...bars].sort((a, b) => a.start - b.start)) {
    const laneEnds = ends.get(bar.lane) || [];
    let track = laneEnds.findIndex((end) => end <= bar.start);
    if (track < 0) track = Math.min(laneEnds.length, MAX_TRACKS - 1);
    laneEnds[track] = Math.max(laneEnds[track] || 0, bar.end == null ? to : bar.end);
    ends.set(bar.lane, laneEnds);
    tracks.set(bar.alloc, track);
  }
  const heights = new Map([...ends].map(([lane, e]) => [lane, Math.max(LANE_H, e.length * TRACK_H + 6)]));
  return { tracks, heights };
}

// The rows to draw: a header per group, then its lanes, filtered by `filter`.
function rowsOf(data, filter, heights) {
  const wanted = (lane) => !filter || lane.label.toLowerCase().includes(filter) || lane.id.toLowerCase().includes(filter);
  const groups = new Map();
  for (const lane of data.lanes.filter(wanted)) {
    if (!groups.has(lane.group)) groups.set(lane.group, []);
    groups.get(lane.group).push(lane);
  }
  const rows = [];
  let y = AXIS_H;
  for (const [group, lanes] of [...groups.entries()].sort()) {
    rows.push({ group, y });
    y += GROUP_H;
    lanes.sort((a, b) => a.label.localeCompare(b.label));
    for (const lane of lanes) {
      const height = heights.get(lane.id) || LANE_H;
      rows.push({ lane, y, height });
      y += height;
    }
  }
  return { rows, height: y + 8 };
}

class Chart {
  constructor(svg, handlers) {
    this.svg = svg;
    this.handlers = handlers;
  }

  width() {
    return Math.max(this.svg.parentElement.clientWidth, LABEL_W + 200);
  }

  x(t) {
    const w = this.width() - LABEL_W;
    return LABEL_W + ((t - this.from) / (this.to - this.from)) * w;
  }

  timeAt(px) {
    const w = this.width() - LABEL_W;
    return this.from + ((px - LABEL_W) / w) * (this.to - this.from);
  }

  draw(data, view) {
    this.from = view.from;
    this.to = view.to;
    const { tracks, heights } = pack(data.bars, this.to);
    this.tracks = tracks;
    this.heights = heights;
    const { rows, height } = rowsOf(data, view.filter, heights);
    const laneY = new Map(rows.filter((r) => r.lane).map((r) => [r.lane.id, r.y]));
    const svg = this.svg;
    svg.replaceChildren();
    svg.setAttribute("width", this.width());
    svg.setAttribute("height", height);
    this.drawRows(rows);
    this.drawBands(data.bands, laneY, height);
    this.drawDensity(data.density, laneY);
    this.drawBars(data.bars, laneY, view.selected);
    this.drawMarkers(data.markers, laneY);
    this.drawAxis(height);
    if (view.at != null) {
      svg.appendChild(svgEl("line", { class: "cursor", x1: this.x(view.at), x2: this.x(view.at), y1: 0, y2: height }));
    }
  }

  drawRows(rows) {
    let odd = false;
    for (const row of rows) {
      if (row.group !== undefined) {
        this.svg.appendChild(svgEl("text", { class: "group-label", x: 6, y: row.y + 14 }, row.group));
        continue;
      }
      odd = !odd;
      this.svg.appendChild(svgEl("rect", { class: "lane-bg" + (odd ? " odd" : ""), x: 0, y: row.y, width: this.width(), height: row.height }));
      const label = svgEl("text", { class: "lane-label", x: 14, y: row.y + 13, "data-lane": row.lane.id }, row.lane.label);
      this.svg.appendChild(titled(label, row.lane.id));
    }
  }

  clampX(t) {
    return Math.min(Math.max(this.x(t), LABEL_W), this.width());
  }

  drawBars(bars, laneY, selected) {
    for (const bar of bars) {
      const y = laneY.get(bar.lane);
      if (y === undefined) continue;
      const x1 = this.clampX(bar.start);
      const x2 = this.clampX(bar.end == null ? this.to : bar.end);
      const status = ["pending", "running", "complete", "failed", "lost"].includes(bar.status) ? bar.status : "unknown";
      const rect = svgEl("rect", {
        class: "bar s-" + status + (bar.alloc === selected ? " selected" : ""),
        x: x1, y: y + 3 + (this.tracks.get(bar.alloc) || 0) * TRACK_H, width: Math.max(x2 - x1, 2), height: TRACK_H - 2,
        "data-alloc": bar.alloc, "data-lane": bar.lane, "data-status": bar.status,
      });
      titled(rect, `${bar.name || bar.alloc}\n${bar.alloc}\n${bar.status}\n${isoTime(bar.start)} → ${bar.end == null ? "…" : isoTime(bar.end)}`);
      rect.addEventListener("click", (e) => { e.stopPropagation(); this.handlers.onBar(bar); });
      this.svg.appendChild(rect);
    }
  }

  drawMarkers(markers, laneY) {
    for (const m of markers) {
      const y = laneY.get(m.lane);
      if (y === undefined || m.at < this.from || m.at > this.to) continue;
      const x = this.x(m.at);
      this.svg.appendChild(titled(svgEl("line", { class: "marker m-" + m.kind, x1: x, x2: x, y1: y, y2: y + (this.heights.get(m.lane) || LANE_H) }), `${m.label}\n${isoTime(m.at)}`));
    }
  }

  drawBands(bands, laneY, height) {
    for (const b of bands) {
      const y = b.lane == null ? AXIS_H : laneY.get(b.lane);
      if (y === undefined) continue;
      const x1 = this.clampX(b.from);
      const x2 = this.clampX(b.to == null ? this.to : b.to);
      const h = b.lane == null ? height - AXIS_H : this.heights.get(b.lane) || LANE_H;
      this.svg.appendChild(titled(svgEl("rect", { class: "band band-" + b.kind, x: x1, y, width: Math.max(x2 - x1, 2), height: h }), b.label));
    }
  }

  drawDensity(density, laneY) {
    for (const d of density || []) {
      const y = laneY.get(d.lane);
      if (y === undefined) continue;
      const max = Math.max(...d.counts, 1);
      const w = (this.width() - LABEL_W) / d.counts.length;
      d.counts.forEach((n, i) => {
        if (!n) return;
        const rect = svgEl("rect", { class: "density", x: LABEL_W + i * w, y: y + 3, width: Math.max(w, 1), height: LANE_H - 6, opacity: 0.2 + 0.8 * (n / max) });
        this.svg.appendChild(titled(rect, `${n} more allocations placed`));
      });
    }
  }

  drawAxis(height) {
    const axis = svgEl("rect", { id: "axis", class: "axis", x: LABEL_W, y: 0, width: this.width() - LABEL_W, height: AXIS_H });
    axis.addEventListener("click", (e) => {
      const box = this.svg.getBoundingClientRect();
      this.handlers.onAxis(Math.round(this.timeAt(e.clientX - box.left)));
    });
    this.svg.appendChild(titled(axis, "click for the cluster at that moment"));
    const span = this.to - this.from;
    const most = Math.max(Math.floor((this.width() - LABEL_W) / 110), 2);
    const step = STEPS.find((s) => span / s <= most) || STEPS[STEPS.length - 1];
    for (let t = Math.ceil(this.from / step) * step; t <= this.to; t += step) {
      const x = this.x(t);
      this.svg.appendChild(svgEl("line", { class: "tick", x1: x, x2: x, y1: AXIS_H - 6, y2: height }));
      this.svg.appendChild(svgEl("text", { class: "tick-label", x: x + 3, y: 14 }, tickLabel(t, step)));
    }
  }
}

window.Chart = Chart;
window.LABEL_W = LABEL_W;
