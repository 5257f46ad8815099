// gridloop live view: draws the grid once, then recolours it from the server-sent frames.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const DEAD = "#9e9e9e";
// voltage (pu) stops and loading (%) stops: [value, colour]
const V_STOPS = [[0.90, "#b71c1c"], [0.95, "#fb8c00"], [0.98, "#c0ca33"], [1.00, "#43a047"], [1.02, "#00897b"],
  [1.05, "#1e88e5"], [1.10, "#6a1b9a"]];
const L_STOPS = [[0, "#b0bec5"], [50, "#43a047"], [80, "#fb8c00"], [100, "#d50000"]];

let drawing = null, chart = null, busEls = [], branchEls = [], switchEls = {}, hovered = -1;
const hist = [[], [], [], []];

function hex(c) { return [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16)); }
function scaleColour(stops, x) {
  if (x <= stops[0][0]) return stops[0][1];
  for (let i = 1; i < stops.length; i++) {
    if (x <= stops[i][0]) {
      const [x0, c0] = stops[i - 1], [x1, c1] = stops[i], t = (x - x0) / (x1 - x0);
      const a = hex(c0), b = hex(c1);
      return "#" + a.map((v, k) => Math.round(v + t * (b[k] - v)).toString(16).padStart(2, "0")).join("");
    }
  }
  return stops[stops.length - 1][1];
}
const voltageColour = vm => (vm > 0 ? scaleColour(V_STOPS, vm) : DEAD);
const loadingColour = l => scaleColour(L_STOPS, l);
function el(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function time(ms) { return ms == null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z"; }

function drawGrid(t) {
  const svg = document.getElementById("grid");
  const g = el("g", {}, svg), nodes = el("g", {}, svg);
  const r = Math.max(2, Math.min(7, 260 / Math.sqrt(t.buses.length + 1)));
  branchEls = t.branches.map((b, i) => {
    const a = t.buses[b.a], c = t.buses[b.b];
    return el("line", {x1: a.x, y1: a.y, x2: c.x, y2: c.y, class: "branch " + b.kind, "data-branch": i,
      stroke: "#b0bec5", "stroke-width": b.kind === "trafo" ? 5 : 2.5}, g);
  });
  busEls = t.buses.map((b, i) => {
    const meters = (t.meters_by_bus[i] || []).length;
    const c = el("circle", {cx: b.x, cy: b.y, r: meters ? r * 1.3 : r, class: "bus", "data-bus": i,
      "data-name": b.name, "data-meters": meters, fill: DEAD}, nodes);
    const title = el("title", {}, c);
    title.textContent = `${b.name} (${meters} meters)`;
    c.addEventListener("mouseenter", () => showBus(i));
    return c;
  });
  for (const s of t.switches) {  // a line's switch sits a little way along its line, as a small diamond
    const b = t.buses[s.bus], line = s.line >= 0 ? t.branches[s.line] : null;
    const o = line ? t.buses[line.a === s.bus ? line.b : line.a] : b;
    const x = b.x + 0.25 * (o.x - b.x), y = b.y + 0.25 * (o.y - b.y);
    const rect = el("rect", {class: "switch", "data-switch": s.device, transform: `rotate(45 ${x} ${y})`}, g);
    Object.assign(rect.dataset, {x, y, r});
    sizeSwitch(rect, false);
    switchEls[s.device] = rect;
  }
  const legend = document.getElementById("legend");
  legend.innerHTML = "<b>bus voltage (pu)</b>" + scale(V_STOPS, v => v.toFixed(2))
    + `<span class="scale"><i style="background:${DEAD}"></i>de-energised</span>`
    + "<b>line loading (%)</b>" + scale(L_STOPS, v => v)
    + '<span class="scale"><i style="background:#fff;border:1px solid #000"></i>switch closed'
    + '<i style="background:#c62828"></i>open</span>' + `<span>layout: ${t.layout}</span>`;
}
function sizeSwitch(rect, open) {  // closed: a small mark on the line; open: a big red diamond
  const h = (open ? 1.1 : 0.4) * rect.dataset.r, x = +rect.dataset.x, y = +rect.dataset.y;
  for (const [k, v] of Object.entries({x: x - h, y: y - h, width: 2 * h, height: 2 * h})) rect.setAttribute(k, v);
  rect.classList.toggle("open", open);
}
function scale(stops, fmt) {
  return '<span class="scale">' + stops.map(([v, c]) => `<i style="background:${c}" title="${fmt(v)}"></i>${fmt(v)}`)
    .join("") + "</span>";
}

async function showBus(i) {
  hovered = i;
  const box = document.getElementById("bus-info");
  const bus = drawing.topology.buses[i];
  const answer = await (await fetch(`/api/bus/${i}`)).json();
  if (hovered !== i) return;
  const rows = answer.meters.map(m => {
    const v = m.values, volts = Object.keys(v).filter(q => q.includes("voltage")).map(q => v[q]);
    const power = Object.keys(v).filter(q => q.includes("power")).map(q => v[q]);
    return `<tr><td>${m.id}</td><td>${volts.map(x => x == null ? "–" : x.toFixed(1)).join(" / ") || "–"}</td>`
      + `<td>${power.length ? power[0].toFixed(0) : "–"}</td><td>${m.ts ? time(m.ts).slice(11) : "–"}</td>`
      + `<td>${m.completeness == null ? "–" : (100 * m.completeness).toFixed(0) + " %"}</td></tr>`;
  }).join("");
  box.innerHTML = `<b>${bus.name}</b> · ${bus.vn_kv} kV · vm <span id="bus-vm">${busEls[i].dataset.vm || "–"}</span> pu`
    + (rows ? `<table><tr><th>meter</th><th>V</th><th>W</th><th>read</th><th>complete</th></tr>${rows}</table>`
            : "<p class='empty'>no meters at this bus</p>");
  box.hidden = false;
}

function makeChart() {
  const box = document.getElementById("chart");
  chart = new uPlot({
    width: Math.max(320, box.clientWidth), height: 200,
    series: [{}, {label: "V min (pu)", stroke: "#b71c1c", scale: "pu"}, {label: "V max (pu)", stroke: "#1e88e5", scale: "pu"},
      {label: "max loading (%)", stroke: "#fb8c00", scale: "%"}],
    axes: [{}, {scale: "pu"}, {scale: "%", side: 1, grid: {show: false}}],
  }, hist, box);
}
function addPoint(p) {
  if (!p || (hist[0].length && hist[0][hist[0].length - 1] >= p[0] / 1000)) return;  // the chart only moves on
  hist[0].push(p[0] / 1000); hist[1].push(p[1]); hist[2].push(p[2]); hist[3].push(p[3]);
}

function renderCommands(commands) {
  const box = document.getElementById("commands");
  if (!commands.length) return;
  const life = drawing.lifecycle, bad = drawing.final.filter(s => s !== life[life.length - 1]);
  box.innerHTML = commands.slice().reverse().map(c => {
    const when = Object.fromEntries(c.history.map(([s, ts]) => [s, ts]));
    const t0 = c.history.length ? c.history[0][1] : 0;
    const steps = life.map(s => `<span class="${s in when ? "done" : ""}" data-step="${s}">${s}`
      + (s in when ? ` +${when[s] - t0} ms` : "") + "</span>");
    if (bad.includes(c.status)) steps.push(`<span class="bad">${c.status}</span>`);
    return `<div class="command" data-id="${c.id}" data-status="${c.status}"><b>${c.name}</b> → ${c.device}`
      + ` <span class="status">${c.status}</span> <small>at sim ${time(c.sim_ms)} ${c.detail || ""}</small>`
      + `<div class="lifecycle">${steps.join("")}</div></div>`;
  }).join("");
}
function renderEvents(events) {
  if (!events.length) return;
  document.getElementById("events").innerHTML = events.slice(-50).reverse().map(e => {
    const rest = Object.entries(e).filter(([k]) => !["at_ms", "at_s", "kind"].includes(k))
      .map(([k, v]) => `${k} ${v}`).join(", ");
    return `<div class="event" data-kind="${e.kind}"><b>${e.kind}</b> at ${time(e.at_ms)} ${rest}</div>`;
  }).join("");
}

function apply(f) {
  window.gridloopFrames = (window.gridloopFrames || 0) + 1;  // frames taken in (the benchmark reads it)
  const step = document.getElementById("step");
  step.textContent = f.step; step.dataset.step = f.step;
  document.getElementById("sim-time").textContent = time(f.sim_ms);
  document.getElementById("lag").textContent = f.lag_s != null ? `${(1000 * f.lag_s).toFixed(0)} ms`
    : drawing.mode === "replay" ? "as recorded" : "n/a (not real time)";
  document.getElementById("max-lag").textContent = `${(1000 * f.max_lag_s).toFixed(0)} ms`;
  document.getElementById("late").textContent = f.late_steps;
  document.getElementById("reporting").textContent = f.meters.reporting;
  document.getElementById("completeness").textContent =
    f.meters.completeness == null ? "–" : `${(100 * f.meters.completeness).toFixed(1)} %`;
  f.vm.forEach((v, i) => { const c = busEls[i]; if (c) { c.setAttribute("fill", voltageColour(v)); c.dataset.vm = v.toFixed(4); } });
  f.loading.forEach((l, i) => { const b = branchEls[i]; if (b) { b.setAttribute("stroke", loadingColour(l)); b.dataset.loading = l; } });
  const open = new Set(f.open_switches || []);
  for (const d in switchEls) {
    if (switchEls[d].classList.contains("open") !== open.has(d)) sizeSwitch(switchEls[d], open.has(d));
  }
  renderCommands(f.commands);
  renderEvents(f.events);
  addPoint(f.point);
  if (chart) chart.setData(hist);
  const status = document.getElementById("status");
  status.textContent = f.finished ? "finished" : drawing.mode;
  status.className = "badge " + (f.finished ? "finished" : "live");
}

function commandForm() {
  const form = document.getElementById("command-form");
  form.hidden = false;
  document.getElementById("cmd-device").innerHTML = drawing.topology.switches.map(s => `<option>${s.device}</option>`).join("");
  document.getElementById("cmd-name").innerHTML = drawing.command_names.map(n => `<option>${n}</option>`).join("");
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const args = document.getElementById("cmd-args").value.trim();
    const r = await fetch("/api/commands", {method: "POST",
      headers: {"content-type": "application/json", "x-gridloop-view-key": document.getElementById("cmd-key").value},
      body: JSON.stringify({device: document.getElementById("cmd-device").value,
        name: document.getElementById("cmd-name").value, args: args ? JSON.parse(args) : {}})});
    const answer = await r.json();
    document.getElementById("cmd-result").textContent = r.ok ? `sent ${answer.id}` : answer.detail;
  });
}

async function main() {
  drawing = await (await fetch("/api/drawing")).json();
  document.getElementById("name").textContent = drawing.name;
  document.getElementById("mode").textContent = drawing.mode;
  document.getElementById("steps-total").textContent = drawing.steps_total;
  document.getElementById("meters-total").textContent = drawing.meters_total;
  drawGrid(drawing.topology);
  for (const p of (await (await fetch("/api/history")).json()).history) addPoint(p);
  makeChart();
  if (drawing.can_command) commandForm();
  const status = document.getElementById("status");
  const source = new EventSource("/events");
  source.onmessage = ev => apply(JSON.parse(ev.data));
  source.onerror = () => {
    if (status.textContent !== "finished") { status.textContent = "connection lost"; status.className = "badge lost"; }
    if (status.textContent === "finished") source.close();
  };
  document.getElementById("grid").addEventListener("mouseleave", () => {
    hovered = -1; document.getElementById("bus-info").hidden = true;
  });
}
main();
