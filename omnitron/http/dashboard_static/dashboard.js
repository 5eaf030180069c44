// The omnitron dashboard: reads /api/* and follows /api/events (Server-Sent Events). No framework, no build
// step, nothing from outside this daemon. It changes nothing: every request is a GET.
"use strict";

const KEEP_S = 600;  // the charts show the last ten minutes
const series = {};   // "app:N" -> [[wall, cpu, rss], ...]
let uptime = {};     // "app:N" -> 24 hourly ratios (null: not observed)
let selected = null;
let lastStatus = null;

const $ = (id) => document.getElementById(id);

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function duration(s) {
  if (!s) return "–";
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function bytes(n) {
  if (!n) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// CPU: from 0 to the peak, but at least `floor` (a trickle is not a full-height line); memory (`relative`):
// from the lowest to the highest sample, flat in the middle when it hardly moves (as `omnitron monit` draws).
function sparkline(points, { floor = 0, relative = false } = {}) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 90 20");
  svg.setAttribute("preserveAspectRatio", "none");
  if (points.length > 1) {
    const low = relative ? Math.min(...points) : 0;
    const top = Math.max(...points, floor);
    const flat = top - low <= (relative ? 0.01 * top : 0);
    const step = 90 / (points.length - 1);
    const y = (v) => (flat ? (relative ? 10 : 19) : 19 - ((v - low) / (top - low)) * 18).toFixed(1);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(" "));
    svg.append(line);
  }
  return svg;
}

function uptimeBar(key) {
  const bar = el("span", { class: "bar", title: "uptime per hour, oldest first" });
  for (const ratio of uptime[key] || Array(24).fill(null)) {
    const cls = ratio === null ? "" : ratio >= 0.999 ? "u-full" : ratio > 0 ? "u-part" : "u-down";
    bar.append(el("i", { class: cls, title: ratio === null ? "no data" : `${(ratio * 100).toFixed(1)}% up` }));
  }
  return bar;
}

function record(status) {
  for (const app of status.apps) {
    if (app.sampled_at === null) continue;
    const ring = (series[app.key] ||= []);
    if (!ring.length || ring[ring.length - 1][0] < app.sampled_at) ring.push([app.sampled_at, app.cpu_percent, app.memory_rss]);
    const cutoff = app.sampled_at - KEEP_S;
    while (ring.length && ring[0][0] < cutoff) ring.shift();
  }
}

function render(status) {
  lastStatus = status;
  const d = status.daemon;
  $("daemon").textContent = `pid ${d.pid} · v${d.version} · up ${duration(d.uptime_s)} · ${d.config || ""}`;
  const ready = $("ready");
  ready.textContent = d.shutting_down ? "shutting down" : d.ready ? "ready" : "not ready";
  ready.className = `badge ${d.ready && !d.shutting_down ? "s-running" : "s-backoff"}`;
  const body = document.querySelector("#instances tbody");
  const rows = status.apps.map((a) => {
    const ring = series[a.key] || [];
    const health = a.healthy === null ? ["none", "–"] : a.healthy ? ["yes", "healthy"] : ["no", "unhealthy"];
    const tr = el("tr", { "data-key": a.key, "data-state": a.state },
      el("td", {}, a.key),
      el("td", { class: `state s-${a.state}` }, a.state),
      el("td", { class: `h-${health[0]}` }, health[1]),
      el("td", {}, a.pid === null ? "–" : String(a.pid)),
      el("td", { class: "restarts" }, String(a.restarts)),
      el("td", {}, duration(a.uptime_s)),
      el("td", {}, sparkline(a.pid === null ? [] : ring.map((s) => s[1]), { floor: 5 }), `${a.cpu_percent.toFixed(1)}%`),
      el("td", {}, sparkline(a.pid === null ? [] : ring.map((s) => s[2]), { relative: true }), bytes(a.memory_rss)),
      el("td", {}, uptimeBar(a.key)),
      el("td", { class: "why" }, a.reason || ""));
    if (a.key === selected) tr.classList.add("selected");
    tr.addEventListener("click", () => select(a.key));
    return tr;
  });
  body.replaceChildren(...rows);
  $("empty").hidden = rows.length > 0;
}

function addEvent(e) {
  const when = new Date((e.ts ?? e.at) * 1000).toISOString().slice(11, 19);
  const who = e.kind.startsWith("daemon") ? "daemon" : `${e.app}:${e.instance}`;
  const extra = [e.pid && `pid ${e.pid}`, e.exit_code !== null && e.exit_code !== undefined && `code ${e.exit_code}`,
                 e.signal && `signal ${e.signal}`, e.reason].filter(Boolean).join(" · ");
  const list = $("events");
  list.prepend(el("li", { class: `k-${e.kind}`, "data-kind": e.kind, "data-key": who },
                  `${when} ${who} ${e.kind}${extra ? " — " + extra : ""}`));
  while (list.children.length > 300) list.lastChild.remove();
}

async function refreshOutput() {
  if (!selected) return;
  const [app, instance] = selected.split(":");
  try {
    const doc = await getJSON(`api/output?app=${encodeURIComponent(app)}&instance=${instance}&n=100`);
    const pre = $("output");
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.replaceChildren(...doc.lines.map((l) => el("span", { class: l.stream }, `${l.ts.slice(11, 23)} ${l.line}\n`)));
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  } catch (err) {
    $("output").textContent = String(err);
  }
}

function select(key) {
  selected = key;
  $("output-of").textContent = key;
  if (lastStatus) render(lastStatus);
  refreshOutput();
}

async function refreshUptime() {
  try { uptime = (await getJSON("api/uptime")).instances; } catch (err) { /* the next round tries again */ }
}

async function start() {
  try {
    Object.assign(series, await getJSON("api/usage"));
  } catch (err) { /* the stream still brings samples */ }
  await refreshUptime();
  setInterval(refreshUptime, 60000);
  const stream = new EventSource("api/events");
  stream.addEventListener("open", () => { $("link").textContent = "live"; $("link").className = "link up"; });
  stream.addEventListener("error", () => { $("link").textContent = "reconnecting…"; $("link").className = "link down"; });
  stream.addEventListener("status", (m) => {
    const status = JSON.parse(m.data);
    record(status);
    render(status);
    if (!selected && status.apps.length) select(status.apps[0].key); else refreshOutput();
  });
  stream.addEventListener("event", (m) => addEvent(JSON.parse(m.data)));
}

start();
