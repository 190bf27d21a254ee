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

// The hatchings of the bands across every lane: a recorded gap, pruned history.
function hatches() {
  const defs = svgEl("defs");
  for (const [id, angle] of [["hatch-gap", 45], ["hatch-pruned", -45]]) {
    const pattern = svgEl("pattern", { id, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: `rotate(${angle})` });
    pattern.appendChild(svgEl("line", { class: id, x1: 0, y1: 0, x2: 0, y2: 6 }));
    defs.appendChild(pattern);
  }
  return defs;
}

class Chart {
  constructor(svg, handlers) {
    this.svg = svg;
    this.handlers = handlers;
  }

  width() {
    return Math.max(this.svg.parentElement.clientWidth, LABEL_W + 200);
  }

  // The pixels of the time axis: what the API fits its answer to (it
  // takes at most 8,000).
  axisWidth() {
    return Math.min(Math.round(this.width() - LABEL_W), 8000);
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
    svg.replaceChildren(hatches());
    svg.setAttribute("width", this.width());
    svg.setAttribute("height", height);
    this.drawRows(rows);
    this.drawBands(data.bands, laneY, height);
    this.drawDensity(data, laneY);
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
      titled(rect, `${bar.job}.${bar.group} on ${bar.node}\n${bar.alloc}\n${bar.status}\n${isoTime(bar.start)} → ${bar.end == null ? "…" : isoTime(bar.end)}`);
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
      const rect = svgEl("rect", { class: "band band-" + b.kind, x: x1, y, width: Math.max(x2 - x1, 2), height: h, "data-kind": b.kind });
      this.svg.appendChild(titled(rect, b.label));
      // A band across every lane says what it is where there is room.
      if (b.lane == null && x2 - x1 > 60) {
        const label = svgEl("text", { class: "band-label", x: x1 + 4, y: AXIS_H + 12, "data-kind": b.kind }, b.label);
        this.svg.appendChild(label);
      }
    }
  }

  // Allocations counted instead of drawn: a grey cell per lane and time
  // bucket, darker for more, placed by time so they follow a pan. The
  // buckets are fixed in time (the first may start before the window).
  drawDensity(data, laneY) {
    for (const d of data.density || []) {
      const y = laneY.get(d.lane);
      if (y === undefined) continue;
      const max = Math.max(...d.counts, 1);
      d.counts.forEach((n, i) => {
        if (!n) return;
        const from = Math.max(data.bucketStart + i * data.bucketMs, data.from);
        const to = Math.min(data.bucketStart + (i + 1) * data.bucketMs, data.to);
        const x1 = this.clampX(from);
        const x2 = this.clampX(to);
        if (x2 <= x1) return;
        const rect = svgEl("rect", {
          class: "density", x: x1, y: y + 3, width: Math.max(x2 - x1, 1), height: LANE_H - 6,
          opacity: 0.25 + 0.75 * (n / max), "data-lane": d.lane, "data-count": n,
        });
        this.svg.appendChild(titled(rect, `${n} allocation${n === 1 ? "" : "s"} placed ${isoTime(from)} – ${isoTime(to)}, each shorter than a pixel here`));
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
