// The web timeline: reads the view from the URL's fragment, the data from
// /api/v1/ (with the token kept in sessionStorage, sent as X-Nomad-Token),
// and wires the chart, the side panel, zoom, pan and search together.
"use strict";

const TOKEN_KEY = "nomad-chronicle-token";
const view = { from: null, to: null, by: "job", obj: null, at: null, filter: "", selected: null };
let data = null;
let chart = null;
let refetch = null;

const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

function el(name, attrs, text) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["X-Nomad-Token"] = token;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    throw new AuthError(token ? "The token was refused" : "This archive needs a token");
  }
  const body = await response.json().catch(() => ({ Error: `the answer was not JSON (${response.status})` }));
  if (!response.ok) {
    const e = new Error(body.Error || response.statusText);
    e.status = response.status;
    throw e;
  }
  return body;
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const num = (k) => (params.get(k) && !isNaN(Number(params.get(k))) ? Number(params.get(k)) : null);
  view.from = num("from");
  view.to = num("to");
  view.at = num("at");
  view.by = params.get("by") === "node" ? "node" : "job";
  view.obj = params.get("obj");
  view.filter = (params.get("q") || "").toLowerCase();
}

function writeHash() {
  const parts = [];
  if (view.from != null) parts.push("from=" + Math.round(view.from));
  if (view.to != null) parts.push("to=" + Math.round(view.to));
  parts.push("by=" + view.by);
  if (view.obj) parts.push("obj=" + view.obj.split("/").map(encodeURIComponent).join("/"));
  if (view.at != null) parts.push("at=" + view.at);
  if (view.filter) parts.push("q=" + encodeURIComponent(view.filter));
  history.replaceState(null, "", "#" + parts.join("&"));
}

function showError(message) {
  let box = $("error");
  if (!box) {
    box = el("div", { id: "error", class: "error", role: "alert" });
    document.body.insertBefore(box, document.querySelector("main"));
  }
  box.textContent = message;
  document.body.dataset.state = "error";
}

function clearError() {
  const box = $("error");
  if (box) box.remove();
}

function showLogin(message) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  data = null;
  $("timeline").replaceChildren();
  $("panel").hidden = true;
  $("status").textContent = "";
  $("login").hidden = false;
  $("login-message").textContent = `${message}. Enter the token serve was started with; it is kept for this tab only.`;
  $("login-message").dataset.reason = token ? "refused" : "missing";
  document.body.dataset.state = "login";
  $("token").focus();
}

// Runs `work`, sending a refused token to the login prompt and any other
// failure to the error box.
async function guarded(work) {
  try {
    await work();
  } catch (e) {
    if (e instanceof AuthError) showLogin(e.message);
    else showError(e.message);
  }
}

function timelineUrl() {
  const p = new URLSearchParams({ by: view.by, width: chart.axisWidth() });
  if (view.from != null) p.set("from", Math.round(view.from));
  if (view.to != null) p.set("to", Math.round(view.to));
  return "/api/v1/timeline?" + p;
}

// Unix nanoseconds (beside each time of the answer) as Unix milliseconds;
// a double keeps them to well under a millisecond.
const ms = (ns) => (ns == null ? null : Math.round(ns / 1e6));

// The answer of /api/v1/timeline as the chart draws it.
function fromApi(doc) {
  return {
    from: ms(doc.FromNs),
    to: ms(doc.ToNs),
    bucketStart: ms(doc.BucketStartNs),
    bucketMs: doc.BucketMs,
    counted: doc.Counted,
    truncated: doc.Truncated,
    lanes: doc.Lanes.map((l) => ({ id: l.ID, label: l.Label, group: l.Group })),
    bars: doc.Bars.map((b) => ({
      alloc: b.ID, lane: b.Lane, job: b.JobID, group: b.TaskGroup, node: b.NodeName || b.NodeID,
      start: ms(b.StartNs), end: ms(b.EndNs), status: b.ClientStatus,
    })),
    markers: doc.Markers.map((m) => ({ lane: m.Lane, at: ms(m.TimeNs), kind: m.Kind, label: m.Label })),
    bands: doc.Bands.map((b) => ({ lane: b.Lane, kind: b.Kind, from: ms(b.FromNs), to: ms(b.ToNs), label: b.Label })),
    density: doc.Density.map((d) => ({ lane: d.Lane, counts: d.Counts })),
  };
}

async function loadTimeline() {
  document.body.dataset.state = "loading";
  data = fromApi(await api(timelineUrl()));
  view.from = data.from;
  view.to = data.to;
  clearError();
  draw();
  writeHash();
  document.body.dataset.state = "ready";
}

function draw() {
  if (!data) return;
  chart.draw(data, view);
  $("window").textContent = `${new Date(view.from).toISOString()} → ${new Date(view.to).toISOString()}`;
  const more = data.counted ? `, ${data.counted} more counted in grey (each shorter than a pixel here: zoom in to see them)` : "";
  const cut = data.truncated ? " (window too long: the answer stopped early)" : "";
  $("status").textContent = `${data.lanes.length} lanes, ${data.bars.length} allocations drawn${more}${cut}`;
  for (const b of document.querySelectorAll(".switch button")) b.classList.toggle("active", b.dataset.by === view.by);
}

function panel(title) {
  $("panel").hidden = false;
  $("panel-title").textContent = title;
  const body = $("panel-body");
  body.replaceChildren();
  return body;
}

function table(headers, rows) {
  const t = el("table");
  const head = el("tr");
  headers.forEach((h) => head.appendChild(el("th", {}, h)));
  t.appendChild(head);
  rows.forEach((row) => t.appendChild(row));
  return t;
}

async function openObject(obj) {
  const [kind, ...rest] = obj.split("/");
  const id = rest.join("/");
  const doc = await api(`/api/v1/object/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`);
  view.obj = `${kind}/${doc.ID}`;
  view.selected = kind === "alloc" ? doc.ID : null;
  writeHash();
  draw();
  const body = panel(`${doc.Subject} ${doc.ID}`);
  body.id = "panel-body";
  body.dataset.object = view.obj;
  const rows = doc.Timeline.map((entry) => {
    const task = entry.Object.startsWith("Task ");
    const tr = el("tr", { class: task ? "entry task-event" : "entry" });
    // RFC 3339 with nanoseconds, shown to the millisecond.
    tr.appendChild(el("td", {}, entry.Time.replace(/(\.\d{3})\d{6}/, "$1")));
    tr.appendChild(el("td", {}, `${entry.Topic} ${entry.Name || entry.Key.slice(0, 8)}`));
    tr.appendChild(el("td", {}, entry.Summary));
    return tr;
  });
  body.appendChild(table(["time", "object", "change"], rows));
  if (doc.Gaps.length) body.appendChild(el("p", {}, `${doc.Gaps.length} recorded gap(s) overlap this history`));
  if (doc.Truncated) body.appendChild(el("p", {}, "stopped after the first events; the CLI's --limit reads more"));
}

async function openSnapshot(at) {
  view.at = at;
  writeHash();
  draw();
  const snap = await api(`/api/v1/snapshot?at=${at}`);
  const body = panel(`cluster at ${new Date(at).toISOString()}`);
  body.dataset.snapshot = String(at);
  for (const [section, label] of [["Nodes", "nodes"], ["Jobs", "jobs"], ["Allocations", "allocations"]]) {
    const objects = snap[section] || [];
    body.appendChild(el("h3", {}, `${objects.length} ${label}`));
    const rows = objects.map((o) => {
      const tr = el("tr", { class: "snapshot-row" });
      const object = o.Object || {};
      tr.appendChild(el("td", {}, object.Name || o.Key));
      tr.appendChild(el("td", {}, object.ClientStatus || object.Status || ""));
      tr.appendChild(el("td", {}, o.Namespace || ""));
      if (section === "Allocations") tr.addEventListener("click", () => guarded(() => openObject("alloc/" + o.Key)));
      return tr;
    });
    body.appendChild(table(["name", "status", "namespace"], rows));
  }
  if (snap.TerminalAllocationsLeftOut) {
    body.appendChild(el("p", {}, `${snap.TerminalAllocationsLeftOut} older terminal allocations left out`));
  }
}

// An ID prefix, a job or a node name: lanes whose name matches are kept;
// otherwise the first object kind that knows the prefix is opened.
async function search(text) {
  const wanted = text.trim().toLowerCase();
  view.filter = "";
  if (wanted && data && data.lanes.some((l) => l.label.toLowerCase().includes(wanted) || l.id.toLowerCase().includes(wanted))) {
    view.filter = wanted;
    writeHash();
    draw();
    return;
  }
  writeHash();
  draw();
  if (!wanted) return;
  for (const kind of ["alloc", "job", "node", "eval", "deployment"]) {
    try {
      await openObject(`${kind}/${text.trim()}`);
      return;
    } catch (e) {
      if (e instanceof AuthError || e.status !== 404) throw e;
    }
  }
  throw new Error(`nothing in the archive is called \`${text.trim()}\``);
}

function scheduleRefetch() {
  clearTimeout(refetch);
  refetch = setTimeout(() => guarded(loadTimeline), 250);
}

function zoom(event) {
  if (!data) return;
  event.preventDefault();
  const box = $("timeline").getBoundingClientRect();
  const pivot = chart.timeAt(event.clientX - box.left);
  const factor = Math.exp(event.deltaY * 0.002);
  const span = Math.max((view.to - view.from) * factor, 1000);
  const share = (pivot - view.from) / (view.to - view.from);
  view.from = pivot - span * share;
  view.to = view.from + span;
  draw();
  writeHash();
  scheduleRefetch();
}

function pan() {
  let start = null;
  const svg = $("timeline");
  svg.addEventListener("mousedown", (e) => {
    if (e.target.id === "axis" || e.target.classList.contains("bar")) return;
    start = { x: e.clientX, from: view.from, to: view.to };
  });
  window.addEventListener("mousemove", (e) => {
    if (!start || !data) return;
    const per = (start.to - start.from) / (chart.width() - window.LABEL_W);
    const shift = -(e.clientX - start.x) * per;
    view.from = start.from + shift;
    view.to = start.to + shift;
    draw();
  });
  window.addEventListener("mouseup", (e) => {
    if (start && Math.abs(e.clientX - start.x) > 2) {
      writeHash();
      scheduleRefetch();
    }
    start = null;
  });
}

async function start() {
  $("login").hidden = true;
  const clusters = await api("/api/v1/clusters");
  $("cluster").textContent = `cluster ${clusters.Served}`;
  await loadTimeline();
  if (view.obj) await openObject(view.obj);
  else if (view.at != null) await openSnapshot(view.at);
}

function wire() {
  chart = new window.Chart($("timeline"), {
    onBar: (bar) => guarded(() => openObject("alloc/" + bar.alloc)),
    onAxis: (at) => guarded(() => openSnapshot(at)),
  });
  $("timeline").addEventListener("wheel", zoom, { passive: false });
  pan();
  for (const b of document.querySelectorAll(".switch button")) {
    b.addEventListener("click", () => { view.by = b.dataset.by; guarded(loadTimeline); });
  }
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); guarded(() => search($("search").value)); });
  $("panel-close").addEventListener("click", () => {
    $("panel").hidden = true;
    view.obj = null;
    view.at = null;
    view.selected = null;
    writeHash();
    draw();
  });
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    guarded(start);
  });
  window.addEventListener("resize", draw);
  // A link followed or a fragment edited by hand (the page's own changes
  // replace the fragment without this event).
  window.addEventListener("hashchange", () => {
    readHash();
    $("panel").hidden = true;
    guarded(start);
  });
}

// A failure nothing else caught is shown, never left in the console alone.
window.addEventListener("error", (e) => showError(`the page failed: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => showError(`the page failed: ${e.reason}`));

readHash();
wire();
guarded(start);
