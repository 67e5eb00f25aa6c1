// The operator's page: one EventSource feed, plain DOM updates, a canvas plot. No build step.
"use strict";

const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037"];
const run = { uid: null, points: [], tcTable: [], info: null };
let lastRunsRefresh = 0;
let lastSamplesRefresh = 0;
let lastHistoryUid = null;
let listedSamples = "";
let selectedSample = null;

function el(id) { return document.getElementById(id); }

function text(value, digits) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number") {
    const abs = Math.abs(value);
    if (digits !== undefined) return value.toFixed(digits);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(3);
    return value.toPrecision(6).replace(/\.?0+$/, "");
  }
  return String(value);
}

function minutes(seconds) { return seconds === null || seconds === undefined ? "-" : (seconds / 60).toFixed(1) + " min"; }

function renderStation(station) {
  const body = el("station").tBodies[0];
  if (!station || !station.readings) {
    body.innerHTML = "<tr><td>no station" + (station && station.error ? ": " + station.error : "") + "</td></tr>";
    return;
  }
  for (const [key, reading] of Object.entries(station.readings)) {
    let row = el("reading-" + key);
    if (!row) {
      row = body.insertRow();
      row.id = "reading-" + key;
      row.insertCell().textContent = reading.label;
      row.insertCell().className = "value";
      row.insertCell().className = "units";
      row.title = reading.pv;
    }
    row.className = reading.connected ? reading.severity : "INVALID";
    row.cells[1].textContent = reading.connected ? text(reading.value) : "not connected";
    row.cells[2].textContent = reading.units || "";
  }
  const alarms = el("alarms");
  alarms.innerHTML = "";
  for (const alarm of station.alarms) {
    const div = document.createElement("div");
    div.className = "alarm " + alarm.severity;
    div.textContent = alarm.severity + ": " + alarm.message;
    alarms.appendChild(div);
  }
  if (!station.alarms.length) {
    alarms.innerHTML = '<div class="alarm NO_ALARM">no alarms</div>';
  }
  const sample = station.readings.sample || {};
  const warm = station.readings.warm_time || {};
  const limit = station.warm_limit;
  const source = station.warm_limit_source || {};
  let against = "";
  if (source.source === "ledger") {
    against = " of the " + minutes(limit) + " " + source.sample_id + " tolerates (sample ledger)";
  } else if (source.source === "kind") {
    against = " of the " + minutes(limit) + " a " + source.kind + " tolerates (" + source.note + ")";
  } else {
    against = (limit ? " of " + minutes(limit) + " (--warm-limit" : " (not checked") +
      (source.note ? ": " + source.note : "") + ")";
  }
  const line = el("warm");
  line.textContent = "Mounted: " + text(sample.value) + "; warm " + minutes(warm.value) + against;
  line.dataset.limitSource = source.source || "";
}

function curveKey(bias) { return bias === null ? "signal" : (1000 * bias).toFixed(0) + " mA"; }

function drawCurves() {
  const canvas = el("curves");
  const context = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, margin = { left: 70, right: 10, top: 10, bottom: 40 };
  context.clearRect(0, 0, width, height);
  const curves = new Map();
  let tMin = Infinity, tMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  for (const [bias, temperature, signal] of run.points) {
    if (signal === null || !isFinite(signal)) continue;
    const key = curveKey(bias);
    if (!curves.has(key)) curves.set(key, []);
    curves.get(key).push([temperature, signal]);
    tMin = Math.min(tMin, temperature); tMax = Math.max(tMax, temperature);
    yMin = Math.min(yMin, signal); yMax = Math.max(yMax, signal);
  }
  context.strokeStyle = "#888"; context.fillStyle = "#333"; context.font = "12px sans-serif";
  context.strokeRect(margin.left, margin.top, width - margin.left - margin.right, height - margin.top - margin.bottom);
  const legend = el("legend");
  legend.innerHTML = "";
  if (!curves.size) { context.fillText("no points yet", margin.left + 10, margin.top + 20); return; }
  if (tMax === tMin) tMax = tMin + 1;
  if (yMax === yMin) yMax = yMin + 1;
  const x = t => margin.left + (t - tMin) / (tMax - tMin) * (width - margin.left - margin.right);
  const y = v => height - margin.bottom - (v - yMin) / (yMax - yMin) * (height - margin.top - margin.bottom);
  context.fillText(text(tMin, 2) + " K", margin.left, height - margin.bottom + 15);
  context.fillText(text(tMax, 2) + " K", width - margin.right - 50, height - margin.bottom + 15);
  context.fillText("sample temperature", width / 2 - 50, height - 8);
  context.fillText(text(yMax), 2, margin.top + 10);
  context.fillText(text(yMin), 2, height - margin.bottom);
  let index = 0;
  for (const [key, points] of curves) {
    const colour = COLOURS[index++ % COLOURS.length];
    context.strokeStyle = colour;
    context.beginPath();
    points.forEach(([t, v], i) => (i ? context.lineTo(x(t), y(v)) : context.moveTo(x(t), y(v))));
    context.stroke();
    const span = document.createElement("span");
    span.style.color = colour;
    span.textContent = key + " (" + points.length + ")";
    legend.appendChild(span);
  }
}

function renderTcTable(table, rows) {
  table.tHead.innerHTML = "<tr><th>Bias</th><th>Onset</th><th>Midpoint</th><th>Width</th></tr>";
  const body = table.tBodies[0];
  body.innerHTML = "";
  for (const row of rows || []) {
    const tr = body.insertRow();
    tr.insertCell().textContent = row.bias === undefined || row.bias === null ? "chi'" : curveKey(row.bias);
    if (row.found === false) {
      const cell = tr.insertCell();
      cell.colSpan = 3;
      cell.textContent = "no transition (" + (row.reason || "?") + ")";
      continue;
    }
    for (const name of ["onset", "midpoint", "width"]) {
      const error = row[name + "_error"];
      tr.insertCell().textContent = text(row[name], 3) + (error ? " ± " + text(error, 3) : "") + " K";
    }
  }
}

async function fetchJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  return { status: response.status, body: body };
}

async function refetchRun() {
  const { body } = await fetchJson("/api/run?since=0");
  applyRun(body, true);
}

function applyRun(snapshot, whole) {
  if (!snapshot || !snapshot.uid) return;
  if (snapshot.uid !== run.uid) {
    if (!whole && snapshot.since !== 0) { refetchRun(); return; }
    run.uid = snapshot.uid; run.points = [];
  }
  if (snapshot.since === run.points.length) {
    run.points = run.points.concat(snapshot.points);
  } else if (snapshot.since < run.points.length) {
    run.points = run.points.slice(0, snapshot.since).concat(snapshot.points);
  } else {
    refetchRun(); return;
  }
  run.info = snapshot;
  const sample = snapshot.sample || {};
  el("run-title").textContent = (snapshot.plan_name || "run") + ", scan " + text(snapshot.scan_id) +
    ", " + (sample.name || "?") + (sample.contacts ? " (" + sample.contacts + ")" : "") +
    ": " + snapshot.state + ", " + snapshot.count + " points";
  el("run-title").dataset.state = snapshot.state;
  const progress = snapshot.progress || {};
  const fraction = progress.fraction;
  el("progress-bar").style.width = fraction === null || fraction === undefined ? "0" : (100 * fraction).toFixed(1) + "%";
  el("progress-text").textContent = fraction === null || fraction === undefined ? "" :
    (100 * fraction).toFixed(0) + "% of " + text(snapshot.ramp.start) + " to " + text(snapshot.ramp.stop) +
    " K" + (progress.eta_seconds !== null && progress.eta_seconds !== undefined ? ", ETA " + minutes(progress.eta_seconds) : "");
  renderTcTable(el("live-tc"), snapshot.tc_table);
  drawCurves();
}

function itemText(item) {
  const args = Object.entries(item.kwargs || {}).map(([k, v]) => k + "=" + JSON.stringify(v)).join(", ");
  return item.name + "(" + args + ")";
}

function renderQueue(queue) {
  if (!queue) { el("queue-status").textContent = "no RE manager configured"; return; }
  const status = queue.status || {};
  el("queue-status").textContent = queue.connected ?
    "manager " + status.manager_state + ", environment " + (status.worker_environment_exists ? "open" : "closed") +
    (status.queue_stop_pending ? ", stop pending" : "") : queue.error;
  const running = el("running-item");
  running.textContent = queue.running ? itemText(queue.running) : "-";
  running.dataset.uid = queue.running ? queue.running.item_uid : "";
  const queued = el("queued");
  queued.innerHTML = "";
  for (const item of queue.queue || []) {
    const li = document.createElement("li");
    li.dataset.uid = item.item_uid;
    li.textContent = itemText(item) + " [" + (item.user || "?") + "]";
    queued.appendChild(li);
  }
  const history = el("history");
  history.innerHTML = "";
  for (const item of (queue.history || []).slice(0, 20)) {
    const li = document.createElement("li");
    li.dataset.uid = item.item_uid;
    li.dataset.exitStatus = item.exit_status || "";
    li.className = item.exit_status === "completed" ? "ok" : "refused";
    li.textContent = itemText(item) + ": " + (item.exit_status || "?") +
      (item.run_uids && item.run_uids.length ? ", run " + item.run_uids.map(u => u.slice(0, 8)).join(", ") : "") +
      (item.msg ? " (" + item.msg + ")" : "");
    history.appendChild(li);
  }
  const newest = (queue.history || [])[0];
  if (newest && newest.item_uid !== lastHistoryUid) {
    lastHistoryUid = newest.item_uid;
    refreshRuns();
    refreshSamples();
  }
}

async function refreshRuns() {
  lastRunsRefresh = Date.now();
  const { body } = await fetchJson("/api/runs");
  el("runs-error").textContent = body.error || "";
  const tbody = el("runs").tBodies[0];
  tbody.innerHTML = "";
  for (const entry of body.runs) {
    const tr = tbody.insertRow();
    tr.dataset.uid = entry.uid;
    tr.insertCell().textContent = text(entry.scan_id);
    tr.insertCell().textContent = entry.plan_name || "?";
    tr.insertCell().textContent = (entry.sample && (entry.sample.name || entry.sample.id)) || "-";
    tr.insertCell().textContent = entry.time ? new Date(entry.time * 1000).toLocaleString() : "-";
    tr.insertCell().textContent = entry.exit_status || "running";
    const tcCell = tr.insertCell();
    if (entry.tc_table && entry.tc_table.length) {
      const table = document.createElement("table");
      table.className = "tc";
      table.createTHead(); table.createTBody();
      renderTcTable(table, entry.tc_table);
      tcCell.appendChild(table);
    } else { tcCell.textContent = "-"; }
    const links = tr.insertCell();
    for (const [path, label] of [["figure", "figure"], ["export?format=csv", "CSV"],
                                 ["export?format=hdf5", "NeXus"]]) {
      const a = document.createElement("a");
      a.href = "/api/runs/" + entry.uid + "/" + path;
      a.textContent = label;
      links.appendChild(a);
      links.appendChild(document.createTextNode(" "));
    }
  }
}

function utc(iso) { return iso ? iso.replace("T", " ").replace("+00:00", "") : "-"; }

async function refreshSamples() {
  lastSamplesRefresh = Date.now();
  const { body } = await fetchJson("/api/samples");
  const listed = JSON.stringify(body);
  if (listed !== listedSamples) { listedSamples = listed; renderSamples(body); }
  if (selectedSample !== null) showHistory(selectedSample);
}

function renderSamples(body) {
  el("samples-status").textContent = body.error ||
    (body.samples.length ? "" : "no samples in the ledger yet (" + body.path + ")");
  const tbody = el("samples").tBodies[0];
  tbody.innerHTML = "";
  for (const sample of body.samples.slice().reverse()) {
    const tr = tbody.insertRow();
    tr.dataset.sampleId = sample.sample_id;
    tr.className = "sample" + (sample.current ? " current" : "") + (sample.flagged ? " flagged" : "") +
      (sample.sample_id === selectedSample ? " selected" : "");
    tr.title = "show " + sample.sample_id + "'s history";
    tr.insertCell().textContent = sample.sample_id + (sample.current ? " (mounted)" : "");
    tr.insertCell().textContent = sample.kind || "?";
    tr.insertCell().textContent = utc(sample.mounted_iso);
    const warm = tr.insertCell();
    warm.className = "warm-time " + sample.warm_severity;
    warm.textContent = minutes(sample.warm_seconds) + " / " +
      (sample.warm_tolerance === null ? "any" : minutes(sample.warm_tolerance));
    tr.insertCell().textContent = String(sample.exposures);
    tr.insertCell().textContent = String(sample.runs);
    const flag = tr.insertCell();
    flag.className = sample.flagged ? "flag-count" : "";
    flag.textContent = sample.flagged ? "\u2691 " + sample.flagged : "-";
    tr.onclick = () => showHistory(sample.sample_id);
  }
}

function warmPair(item) {
  return minutes(item.warm_seconds_before) + " \u2192 " + minutes(item.warm_seconds_after);
}

async function showHistory(sampleId) {
  selectedSample = sampleId;
  for (const row of document.querySelectorAll("#samples tbody tr")) {
    row.classList.toggle("selected", row.dataset.sampleId === sampleId);
  }
  const { status, body } = await fetchJson("/api/samples/" + encodeURIComponent(sampleId));
  if (selectedSample !== sampleId) return;
  const panel = el("sample-history-panel");
  panel.hidden = false;
  panel.dataset.sampleId = sampleId;
  const tbody = el("sample-history").tBodies[0];
  tbody.innerHTML = "";
  if (status !== 200) { el("sample-history-title").textContent = body.error; return; }
  const mount = body.history.find(item => item.entry === "mount") || {};
  el("sample-history-title").textContent = "History of " + sampleId + ": " + (mount.kind || "?") +
    (mount.preparation ? ", " + mount.preparation : "");
  for (const item of body.history) {
    const tr = tbody.insertRow();
    tr.dataset.entry = item.entry;
    tr.dataset.runUid = item.run_uid || "";
    tr.className = "entry " + item.entry + (item.flag ? " flagged" : "");
    tr.insertCell().textContent = utc(item.started_iso || item.time_iso);
    tr.insertCell().textContent = item.entry === "exposure" && item.minutes ?
      "exposure, " + text(item.minutes) + " min" : item.entry;
    if (item.entry === "mount") {
      const cell = tr.insertCell();
      cell.colSpan = 4;
      cell.textContent = (item.insert || "?") + " insert, " + (item.contacts || "?") + " contacts" +
        (item.warm_tolerance ? ", tolerates " + minutes(item.warm_tolerance) + " warm" : "") +
        (item.note ? " (" + item.note + ")" : "");
      continue;
    }
    tr.insertCell().textContent = (item.plan_name || "?") + ", scan " + text(item.scan_id) + ", " +
      String(item.run_uid || "").slice(0, 8);
    tr.insertCell().textContent = warmPair(item);
    tr.insertCell().textContent = item.exit_status || "?";
    const tcCell = tr.insertCell();
    if (item.tc_table && item.tc_table.length) {
      const table = document.createElement("table");
      table.className = "tc";
      table.createTHead(); table.createTBody();
      renderTcTable(table, item.tc_table);
      tcCell.appendChild(table);
    } else { tcCell.textContent = "-"; }
    if (item.flag) {
      const reason = tbody.insertRow();
      reason.className = "flag-reason";
      reason.dataset.runUid = item.run_uid || "";
      const cell = reason.insertCell();
      cell.colSpan = 6;
      cell.textContent = "\u2691 flagged: " + item.flag;
    }
  }
}

async function queueAction(action, payload) {
  const result = el("action-result");
  const { status, body } = await fetchJson("/api/queue/" + action, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": el("api-key").value },
    body: JSON.stringify(payload || {}),
  });
  result.className = status === 200 ? "ok" : "refused";
  result.dataset.status = String(status);
  result.textContent = status === 200 ? action + ": done" : action + " refused (" + status + "): " + body.error;
}

function onUpdate(update) {
  el("connection").textContent = "live";
  el("connection").className = "badge NO_ALARM";
  el("updated").textContent = "updated " + new Date(update.time * 1000).toLocaleTimeString();
  renderStation(update.station);
  renderQueue(update.queue);
  if (update.run) applyRun(update.run, false);
  if (Date.now() - lastRunsRefresh > 10000) refreshRuns();
  if (Date.now() - lastSamplesRefresh > 5000) refreshSamples();
}

async function main() {
  el("queue-add").onclick = () => {
    let kwargs;
    try { kwargs = JSON.parse(el("plan-kwargs").value || "{}"); } catch (error) {
      el("action-result").className = "refused";
      el("action-result").textContent = "the arguments are not JSON: " + error.message;
      return;
    }
    queueAction("add", { plan: el("plan-name").value, kwargs: kwargs });
  };
  el("queue-start").onclick = () => queueAction("start");
  el("queue-stop").onclick = () => queueAction("stop");
  const { body } = await fetchJson("/api/state");
  if (body.run) applyRun(body.run, true);
  renderStation(body.station);
  renderQueue(body.queue);
  refreshRuns();
  refreshSamples();
  const source = new EventSource("/api/events");
  source.onmessage = message => onUpdate(JSON.parse(message.data));
  source.onerror = () => {
    el("connection").textContent = "reconnecting";
    el("connection").className = "badge INVALID";
  };
}

main();
