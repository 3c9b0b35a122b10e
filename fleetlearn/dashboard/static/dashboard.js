// The live page of a fleetlearn deployment: each server-sent event is a snapshot (JSON, see
// fleetlearn/dashboard/snapshot.py) drawn here without a reload. Plain JavaScript, no library:
// the charts are inline SVG. Every string from the snapshot goes in as text, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf"];
const W = 600, H = 220, LEFT = 52, RIGHT = 10, TOP = 10, BOTTOM = 24;

const $ = (id) => document.getElementById(id);

function fmt(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en", {maximumFractionDigits: digits,
                                             minimumFractionDigits: digits});
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 120 ? `${fmt(value, 1)} s` : `${fmt(value / 60, 1)} min`;
}

function setText(id, value) { $(id).textContent = value; }

function setStatus(el, kind, words) {
  el.className = `status ${kind}`;
  el.textContent = words;
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function tickLabel(v) {
  const a = Math.abs(v);
  return a !== 0 && (a < 0.01 || a >= 1e5) ? v.toExponential(1) : fmt(v, a < 10 ? 2 : 0);
}

// lines: [{name, points: [[x, y], ...]}]; y may be null (left out)
function drawChart(svg, legend, lines, stepped) {  // stepped: integers (versions)
  svg.replaceChildren();
  const all = lines.flatMap((l) => l.points.filter((p) => p[1] !== null && p[1] !== undefined));
  if (!all.length) {
    svg.appendChild(svgEl("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, "no data yet"));
    if (legend) legend.replaceChildren();
    return;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const px = (x) => LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
  const py = (y) => H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM);
  svg.appendChild(svgEl("line", {class: "axis", x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM}));
  svg.appendChild(svgEl("line", {class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM}));
  for (let i = 0; i <= 3; i++) {
    const y = y0 + (y1 - y0) * i / 3, x = x0 + (x1 - x0) * i / 3;
    svg.appendChild(svgEl("text", {x: LEFT - 4, y: py(y) + 4, "text-anchor": "end"},
                          stepped ? fmt(y, 0) : tickLabel(y)));
    const anchor = i === 0 ? "start" : i === 3 ? "end" : "middle";
    svg.appendChild(svgEl("text", {x: px(x), y: H - 6, "text-anchor": anchor},
                          `${fmt(x, x1 - x0 < 10 ? 1 : 0)} s`));
  }
  if (legend) legend.replaceChildren();
  lines.forEach((line, i) => {
    const color = line.name === "federated" ? "#111" : COLORS[i % COLORS.length];
    const pts = [];
    let last = null;
    for (const [x, y] of line.points) {
      if (y === null || y === undefined) continue;
      if (stepped && last !== null) pts.push(`${px(x)},${py(last)}`);
      pts.push(`${px(x)},${py(y)}`);
      last = y;
    }
    const poly = svgEl("polyline", {points: pts.join(" "), stroke: color,
                                    "data-line": line.name});
    if (line.name === "federated") poly.setAttribute("stroke-width", "3");
    svg.appendChild(poly);
    if (legend) {
      const li = document.createElement("li");
      li.textContent = line.name;
      li.style.color = color;
      legend.appendChild(li);
    }
  });
}

function renderModel(s) {
  const m = s.model;
  setText("model-version", m.version === null ? "–" : String(m.version));
  setText("model-age", seconds(m.age));
  setText("model-samples", fmt(m.samples));
  setText("model-weight-error", fmt(m.weight_error, 4));
  drawChart($("chart-version"), null, [{name: "version", points: m.versions}], true);
}

function renderCurves(s) {
  const names = Object.keys(s.curves).sort((a, b) =>
    (a === "federated") - (b === "federated") || a.localeCompare(b));
  setText("error-title", `prequential ${s.metrics.error_name} (lower is better)`);
  setText("quality-title", `prequential ${s.metrics.quality_name} (higher is better)`);
  drawChart($("chart-error"), $("legend-error"),
            names.map((n) => ({name: n, points: s.curves[n].map((p) => [p[0], p[1]])})));
  drawChart($("chart-quality"), $("legend-quality"),
            names.map((n) => ({name: n, points: s.curves[n].map((p) => [p[0], p[2]])})));
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
    tr.appendChild(td);
  }
  return tr;
}

// a process up started: its pid, and how it ended (a negative code: killed by that signal)
function process(n) {
  if (n.pid === null || n.pid === undefined) return "–";
  if (n.exit_code === null || n.exit_code === undefined) return String(n.pid);
  return n.exit_code < 0 ? `${n.pid}, killed (signal ${-n.exit_code})`
                         : `${n.pid}, exited (${n.exit_code})`;
}

function renderNodes(s) {
  const body = $("nodes").tBodies[0];
  body.replaceChildren(...s.nodes.map((n) => {
    const state = n.online === true ? "online" : n.online === false ? "offline" : "unknown";
    const badge = document.createElement("span");
    setStatus(badge, state, state);
    const tr = row([n.name, n.kind || "–", badge, n.version === null ? "–" : String(n.version),
                    n.last_report === null ? "–" : `${fmt(n.last_report, 1)} s ago`,
                    process(n)]);
    tr.dataset.node = n.name;
    tr.dataset.online = state;
    if (n.exit_code !== null && n.exit_code !== undefined) tr.dataset.exit = String(n.exit_code);
    return tr;
  }));
}

function renderRates(s) {
  for (const name of ["published", "learned", "rejected", "predictions"]) {
    setText(`rate-${name}`, fmt(s.rates[name], 1));
  }
}

function renderDeadLetters(s) {
  const d = s.deadletters;
  setText("deadletter-total", `(${fmt(d.total)} in all)`);
  setText("deadletter-reasons", Object.entries(d.by_reason).map(([r, n]) => `${r}: ${n}`).join(", "));
  $("deadletters").tBodies[0].replaceChildren(...d.recent.map((l) => {
    const when = l.ts ? new Date(l.ts * 1000).toLocaleTimeString() : "–";
    const tr = row([when, l.node || "–", l.reason, l.detail || ""]);
    tr.lastChild.className = "detail";
    tr.lastChild.title = l.detail || "";
    return tr;
  }));
}

function render(s) {
  renderModel(s);
  renderCurves(s);
  renderNodes(s);
  renderRates(s);
  renderDeadLetters(s);
  const at = new Date(s.ts * 1000).toLocaleTimeString();
  if (s.ended) setStatus($("connection"), "ended", s.ended);
  else if (!s.broker_connected) setStatus($("connection"), "offline", `broker lost · ${at}`);
  else setStatus($("connection"), "live", `live · ${at}`);
}

function connect() {
  const source = new EventSource("/events");
  source.onmessage = (event) => render(JSON.parse(event.data));
  source.addEventListener("end", () => source.close());  // the last snapshot came before it
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED) {
      setStatus($("connection"), "unknown", "reconnecting…");
    }
  };
}

connect();
