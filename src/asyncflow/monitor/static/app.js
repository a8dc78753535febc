// asyncflow's web view: one page fed by server-sent events (api/events), no build step, nothing fetched elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const rows = new Map(); // node name -> {tr, cells}
const graphNodes = new Map(); // node id ("n0") -> {g, box, bar, live, width}
const previews = new Map(); // node name -> {figure, img, caption}
let last = null; // the latest snapshot
let connected = false;

// -- formatting (as the terminal's table writes them) -------------------------------------------
function count(n) {
  if (n === null || n === undefined) return "—";
  if (n < 100000) return Math.round(n).toLocaleString("en-US");
  if (n < 1e6) return (n / 1e3).toFixed(0) + " k";
  return (n / 1e6).toFixed(1) + " M";
}

function rate(r) {
  if (r === null || r === undefined) return "—";
  if (r < 10) return r.toFixed(1);
  return count(r);
}

function age(s) {
  if (s === null || s === undefined) return "—";
  if (s < 1e-3) return (s * 1e6).toFixed(0) + " µs";
  if (s < 0.01) return (s * 1e3).toFixed(1) + " ms";
  if (s < 1) return (s * 1e3).toFixed(0) + " ms";
  if (s < 10) return s.toFixed(2) + " s";
  return s.toFixed(1) + " s";
}

const CAUSES = ["full", "stale", "order"];

function drops(total, byCause) {
  const causes = Object.entries(byCause || {}).filter(([, n]) => n > 0);
  causes.sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]));
  const text = count(total);
  if (!causes.length) return text;
  return text + " (" + causes.map(([cause, n]) => cause + " " + count(n)).join(", ") + ")";
}

function rank(cause) {
  const i = CAUSES.indexOf(cause);
  return i < 0 ? CAUSES.length : i;
}

function level(fraction) {
  return fraction >= 0.9 ? "high" : fraction >= 0.5 ? "mid" : "low";
}

function meter() {
  const span = document.createElement("span");
  span.className = "meter";
  span.innerHTML = '<span class="bar"><span></span></span><span class="num"></span>';
  return span;
}

function setMeter(cell, fraction, text) {
  const fill = cell.querySelector(".bar > span");
  const num = cell.querySelector(".num");
  if (fraction === null || fraction === undefined) {
    fill.style.width = "0";
    num.textContent = "—";
    return;
  }
  const f = Math.max(0, Math.min(1, fraction));
  fill.style.width = (f * 100).toFixed(1) + "%";
  fill.className = level(f);
  num.textContent = text;
}

// -- the table --------------------------------------------------------------------------------------
const COLUMNS = ["c-name", "c-state", "c-items", "c-rate", "c-queue", "c-busy", "c-drops", "c-age"];

function row(node) {
  let r = rows.get(node.name);
  if (r) return r;
  const tr = document.createElement("tr");
  tr.dataset.node = node.name;
  const cells = {};
  for (const cls of COLUMNS) {
    const td = document.createElement("td");
    td.className = cls;
    if (cls === "c-queue" || cls === "c-busy") td.appendChild(meter());
    tr.appendChild(td);
    cells[cls] = td;
  }
  const name = document.createElement("span");
  name.className = "label";
  name.textContent = node.label;
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = node.class;
  cells["c-name"].append(name, kind);
  document.querySelector("#nodes tbody").appendChild(tr);
  r = { tr, cells };
  rows.set(node.name, r);
  return r;
}

function renderRow(node, bottleneck) {
  const { tr, cells } = row(node);
  tr.classList.toggle("bottleneck", bottleneck);
  const state = cells["c-state"];
  state.textContent = node.state === "done" ? "✓ done" : node.state === "running" ? "running" : "waiting";
  state.className = "c-state " + node.state;
  cells["c-items"].textContent = count(node.items);
  cells["c-rate"].textContent = rate(node.items_per_second);
  if (node.queue_fill === null) {
    setMeter(cells["c-queue"], null, "");
  } else {
    setMeter(cells["c-queue"], node.queue_fill, count(node.queued) + "/" + count(node.capacity));
  }
  setMeter(cells["c-busy"], node.busy, Math.round(node.busy * 100) + " %");
  cells["c-drops"].textContent = drops(node.dropped, node.drops);
  cells["c-drops"].classList.toggle("some", node.dropped > 0);
  cells["c-age"].textContent = node.age_p50 === null ? "—" : age(node.age_p50) + " / " + age(node.age_p95);
}

// -- the graph ---------------------------------------------------------------------------------------
async function loadGraph() {
  try {
    const response = await fetch("graph.svg", { cache: "no-store" });
    const text = await response.text();
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.nodeName.toLowerCase() !== "svg") return;
    $("graph").replaceChildren(document.importNode(svg, true));
    for (const g of $("graph").querySelectorAll("g.node")) {
      const title = g.querySelector("title");
      if (!title) continue;
      const box = g.querySelector("rect.box") || g.querySelector("polygon, ellipse, path");
      const bar = g.querySelector("rect.busybar");
      const live = g.querySelector("text.live");
      const width = box && box.getBBox ? box.getBBox().width : 0;
      graphNodes.set(title.textContent.trim(), { g, box, bar, live, width });
    }
    if (last) render(last);
  } catch (err) {
    $("graph").textContent = "the graph could not be loaded: " + err;
  }
}

function renderGraph(node, bottleneck) {
  const entry = graphNodes.get(node.id);
  if (!entry) return;
  entry.g.classList.toggle("bottleneck", bottleneck);
  entry.g.classList.toggle("done", node.state === "done");
  entry.g.classList.toggle("waiting", node.state === "waiting");
  if (entry.live) {
    entry.live.textContent =
      node.state === "waiting" ? "…" : rate(node.items_per_second) + "/s · " + Math.round(node.busy * 100) + " % busy";
  }
  if (entry.bar) {
    const f = Math.max(0, Math.min(1, node.busy || 0));
    entry.bar.setAttribute("width", String(Math.max(0, (entry.width - 2) * f)));
    entry.bar.style.fill = f >= 0.9 ? "var(--high)" : f >= 0.5 ? "var(--mid)" : "var(--low)";
  }
}

// -- previews ------------------------------------------------------------------------------------------
function previewSource(name) {
  return "preview.mjpg?node=" + encodeURIComponent(name) + "&t=" + Date.now();
}

function renderPreview(p) {
  let entry = previews.get(p.node);
  if (!entry) {
    const figure = document.createElement("figure");
    figure.className = "preview panel";
    figure.dataset.node = p.node;
    const img = document.createElement("img");
    img.className = "preview";
    img.dataset.node = p.node;
    img.alt = "the newest frame of " + p.node;
    const caption = document.createElement("figcaption");
    figure.append(img, caption);
    $("previews").appendChild(figure);
    entry = { figure, img, caption, started: false };
    previews.set(p.node, entry);
  }
  if (!entry.started && p.seq > 0) {
    entry.img.src = previewSource(p.node);
    entry.started = true;
  }
  const parts = [p.node];
  if (p.seq > 0) {
    if (p.index !== null) parts.push("frame #" + p.index);
    parts.push(p.width + "×" + p.height);
    const over = last && !["running", "waiting"].includes(last.flow.state);
    parts.push(p.fps ? p.fps.toFixed(1) + " previews/s" : over ? "the last frame" : "no new frame");
  } else {
    parts.push("no frame yet");
  }
  entry.caption.textContent = parts.join(" · ");
}

function reloadPreviews() {
  // After a reconnection (the server restarted, or the stream was cut), open the streams again.
  for (const [name, entry] of previews) {
    if (entry.started) entry.img.src = previewSource(name);
  }
}

// -- the page --------------------------------------------------------------------------------------------
function render(s) {
  last = s;
  const flow = s.flow;
  $("flow-type").textContent = flow.type;
  const state = $("state");
  state.textContent = flow.state;
  state.className = "state " + flow.state;
  $("elapsed").textContent = flow.elapsed === null ? "" : flow.elapsed.toFixed(1) + " s";
  document.title = "asyncflow · " + flow.state + " · " + flow.graph;

  const report = s.report;
  const named = report.saturated ? report.bottleneck : null;
  for (const node of s.nodes) {
    renderRow(node, node.name === named);
    renderGraph(node, node.name === named);
  }

  const verdictPanel = $("verdict-panel");
  verdictPanel.className = "panel " + (report.too_short ? "short" : report.saturated ? "bottleneck" : "ok");
  $("verdict-label").textContent = report.label;
  const verdict = $("verdict");
  verdict.textContent = report.reason;
  if (flow.error) {
    const error = document.createElement("b");
    error.textContent = "The flow failed: " + flow.error + ". ";
    verdict.prepend(error);
  }
  const notes = $("notes");
  notes.replaceChildren(
    ...report.notes.map((note) => {
      const li = document.createElement("li");
      li.textContent = note;
      return li;
    }),
  );
  $("notes-box").hidden = report.notes.length === 0;

  for (const p of s.previews) renderPreview(p);

  const text = report.text;
  $("report-panel").hidden = !text;
  if (text) $("report").textContent = text;
}

function setConnection(text) {
  $("conn").textContent = text;
}

function connect() {
  const events = new EventSource("api/events");
  events.onopen = () => {
    if (!connected) reloadPreviews();
    connected = true;
    setConnection("live");
  };
  events.onmessage = (event) => {
    try {
      render(JSON.parse(event.data));
    } catch (err) {
      setConnection("bad update: " + err);
    }
  };
  events.onerror = () => {
    connected = false;
    const over = last && !["running", "waiting"].includes(last.flow.state);
    setConnection(over ? "the view has stopped serving: last figures shown" : "reconnecting…");
  };
}

loadGraph();
connect();
