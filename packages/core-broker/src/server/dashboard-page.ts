/**
 * The dashboard page served at `/dashboard`: one HTML file, plain JavaScript, the lag chart drawn
 * as inline SVG — nothing to build, nothing fetched from elsewhere (the CSP allows only this
 * origin). It polls `/dashboard/api/overview` every 2 s; lookups and the dead-letter browser call
 * their own endpoints (admin credentials when ACL is on; the browser asks for them).
 */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>RocketNest dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --fg:#1d2430; --muted:#6b7280; --line:#e5e7eb; --accent:#d9480f; --bg:#fafafa; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
  header { display:flex; align-items:baseline; gap:16px; padding:12px 20px; background:#1d2430; color:#fff; }
  header h1 { margin:0; font-size:18px; } header span { color:#cbd5e1; }
  main { display:grid; grid-template-columns: 1fr 1fr; gap:16px; padding:16px 20px; }
  section { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 14px; min-width:0; }
  section.wide { grid-column: 1 / -1; }
  h2 { margin:0 0 8px; font-size:15px; }
  table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--muted); font-weight:600; } td.n, th.n { text-align:right; }
  .muted { color:var(--muted); } .bad { color:#b91c1c; font-weight:600; }
  #lag-chart svg { width:100%; height:240px; display:block; }
  .legend span { display:inline-block; margin-right:12px; } .legend i { display:inline-block; width:10px; height:10px; margin-right:4px; border-radius:2px; }
  form { display:flex; gap:6px; flex-wrap:wrap; margin-bottom:8px; }
  input { padding:4px 6px; border:1px solid #cbd5e1; border-radius:4px; } button { padding:4px 10px; border:1px solid #cbd5e1; border-radius:4px; background:#fff; cursor:pointer; }
  #dlq-list td { word-break:break-all; }
  pre { white-space:pre-wrap; word-break:break-all; background:#f3f4f6; padding:8px; border-radius:4px; max-height:260px; overflow:auto; margin:0; }
</style>
</head>
<body>
<header><h1>RocketNest</h1><span id="broker">connecting…</span><span id="updated" class="muted"></span></header>
<main>
  <section class="wide"><h2>Consumer lag, last hour</h2><div id="lag-chart"></div><div id="lag-legend" class="legend"></div></section>
  <section><h2>Broker</h2><table id="cluster"><tbody></tbody></table></section>
  <section><h2>Consumer groups</h2>
    <table id="groups"><thead><tr><th>group</th><th>members</th><th class="n">lag</th><th>queues (topic/queue: consumer / broker offset)</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Topics</h2>
    <table id="topics"><thead><tr><th>topic</th><th class="n">queues r/w</th><th class="n">messages</th><th class="n">msg/s</th><th>queue offsets [min, max)</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Message lookup</h2>
    <form id="lookup"><input id="lookup-id" placeholder="message id"> <span class="muted">or</span>
      <input id="lookup-topic" placeholder="topic"><input id="lookup-key" placeholder="key"><button>Find</button></form>
    <pre id="lookup-result" class="muted">—</pre></section>
  <section><h2>Dead letters</h2>
    <form id="dlq"><input id="dlq-group" placeholder="consumer group" list="dlq-groups"><datalist id="dlq-groups"></datalist><button>Show</button></form>
    <table id="dlq-list"><thead><tr><th>msgId</th><th>from topic</th><th>tag</th><th class="n">attempts</th><th>body</th><th></th></tr></thead><tbody></tbody></table>
    <div id="dlq-status" class="muted"></div></section>
</main>
<script>
"use strict";
const COLORS = ["#d9480f", "#1971c2", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e03131", "#5c940d"];
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const fmt = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 }));
async function api(path, init) {
  const res = await fetch(path, { credentials: "same-origin", ...init });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || res.status + " " + res.statusText);
  return body;
}
function row(cells) { return "<tr>" + cells.join("") + "</tr>"; }
function renderCluster(b) {
  const ns = b.nameServers ? b.nameServers.registered + " of " + b.nameServers.of : "none (standalone)";
  const rows = [["broker", esc(b.brokerName)], ["address", esc(b.address)], ["name servers registered", esc(ns)],
    ["commit log", fmt(b.commitLogBytes) + " bytes"],
    ["disk used", b.diskUsedRatio === null ? "—" : (b.diskUsedRatio * 100).toFixed(1) + "%" + (b.diskFull ? ' <span class="bad">FULL: refusing writes</span>' : "")],
    ["delayed messages", fmt(b.scheduledMessages)], ["open transactions", fmt(b.pendingTransactions)], ["pop in flight", fmt(b.unackedPops)]];
  $("#cluster tbody").innerHTML = rows.map(([k, v]) => row(['<th>' + k + "</th>", "<td>" + v + "</td>"])).join("");
  $("#broker").textContent = b.brokerName + " @ " + b.address;
}
function renderTopics(topics) {
  $("#topics tbody").innerHTML = topics.filter((t) => !t.system || t.stored > 0).map((t) => row([
    '<td data-topic="' + esc(t.topic) + '">' + esc(t.topic) + (t.fifo ? ' <span class="muted">fifo</span>' : "") + "</td>",
    '<td class="n">' + t.readQueueCount + "/" + t.writeQueueCount + "</td>",
    '<td class="n stored">' + fmt(t.stored) + "</td>",
    '<td class="n">' + fmt(t.perSecond) + "</td>",
    '<td class="muted">' + t.queues.map((q) => q.queueId + ": [" + q.minOffset + ", " + q.maxOffset + ")").join(" · ") + "</td>"])).join("");
}
function renderGroups(groups) {
  $("#groups tbody").innerHTML = groups.map((g) => row([
    '<td>' + esc(g.group) + "</td>", '<td class="muted">' + (g.members.length ? g.members.map(esc).join("<br>") : "none online") + "</td>",
    '<td class="n lag" data-group="' + esc(g.group) + '">' + g.lag + "</td>",
    '<td class="muted">' + g.queues.map((q) => esc(q.topic) + "/" + q.queueId + ": " + (q.consumerOffset ?? "—") + " / " + q.brokerOffset).join("<br>") + "</td>"])).join("") ||
    '<tr><td colspan="4" class="muted">no group has committed an offset yet</td></tr>';
}
// what this page saw at each refresh (every 2 s), merged with the broker's ring (every 10 s), so a
// short rise between two samples of the ring still shows; bounded to an hour of refreshes
const seen = [];
function remember(history) {
  const latest = history[history.length - 1];
  if (latest) seen.push(latest);
  while (seen.length > 1800 || (seen.length && seen[0].t < Date.now() - 3600 * 1000)) seen.shift();
  return [...history.slice(0, -1), ...seen].sort((a, b) => a.t - b.t);
}
function renderChart(history) {
  const W = 900, H = 240, L = 48, R = 10, T = 10, B = 24;
  const now = history.length ? history[history.length - 1].t : Date.now();
  // the last hour, or less while the broker has not been up that long (at least a minute)
  const oldest = history.length ? history[0].t : now;
  const from = now - Math.min(3600 * 1000, Math.max(60 * 1000, now - oldest));
  const points = history.filter((s) => s.t >= from);
  const groups = [...new Set(points.flatMap((s) => Object.keys(s.lag)))].sort();
  const max = Math.max(1, ...points.flatMap((s) => Object.values(s.lag)));
  const x = (t) => L + ((t - from) / (now - from || 1)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const peak = Math.max(0, ...points.flatMap((s) => Object.values(s.lag)));
  let svg = '<svg data-peak="' + peak + '" viewBox="0 0 ' + W + " " + H + '" preserveAspectRatio="none" role="img" aria-label="consumer lag over the last hour">';
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4, yy = y(v);
    svg += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + yy + '" y2="' + yy + '" stroke="#e5e7eb"/>';
    svg += '<text x="' + (L - 6) + '" y="' + (yy + 4) + '" text-anchor="end" font-size="11" fill="#6b7280">' + fmt(v) + "</text>";
  }
  for (const f of [1, 0.75, 0.5, 0.25, 0]) {
    const ago = (now - from) * f, xx = x(now - ago);
    const label = f === 0 ? "now" : ago >= 120000 ? "-" + Math.round(ago / 60000) + " min" : "-" + Math.round(ago / 1000) + " s";
    svg += '<text x="' + xx + '" y="' + (H - 6) + '" text-anchor="' + (f === 1 ? "start" : f === 0 ? "end" : "middle") + '" font-size="11" fill="#6b7280">' + label + "</text>";
  }
  groups.forEach((g, i) => {
    const pts = points.filter((s) => g in s.lag).map((s) => x(s.t).toFixed(1) + "," + y(s.lag[g]).toFixed(1));
    if (pts.length === 1) pts.push((W - R) + "," + pts[0].split(",")[1]);
    svg += '<polyline class="lag-line" data-group="' + esc(g) + '" fill="none" stroke-width="2" stroke="' + COLORS[i % COLORS.length] + '" points="' + pts.join(" ") + '"/>';
  });
  svg += "</svg>";
  $("#lag-chart").innerHTML = svg;
  $("#lag-legend").innerHTML = groups.map((g, i) => '<span><i style="background:' + COLORS[i % COLORS.length] + '"></i>' + esc(g) + "</span>").join("") || '<span class="muted">no consumer groups yet</span>';
}
async function refresh() {
  try {
    const o = await api("/dashboard/api/overview");
    if (o.starting) { $("#broker").textContent = "starting…"; return; }
    renderCluster(o.broker); renderTopics(o.topics); renderGroups(o.groups); renderChart(remember(o.history));
    $("#dlq-groups").innerHTML = o.deadLetterGroups.map((d) => '<option value="' + esc(d.group) + '">').join("");
    $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (e) { $("#updated").textContent = "error: " + e.message; }
}
$("#lookup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("#lookup-id").value.trim(), topic = $("#lookup-topic").value.trim(), key = $("#lookup-key").value.trim();
  const q = id ? "id=" + encodeURIComponent(id) : "topic=" + encodeURIComponent(topic) + "&key=" + encodeURIComponent(key);
  try {
    const found = await api("/dashboard/api/message?" + q);
    $("#lookup-result").textContent = found.length ? JSON.stringify(found.map((m) => ({ ...m, body: atob(m.bodyBase64), bodyBase64: undefined })), null, 2) : "not found";
  } catch (e) { $("#lookup-result").textContent = e.message; }
});
async function showDeadLetters(group) {
  try {
    const list = await api("/dashboard/api/dlq?group=" + encodeURIComponent(group));
    $("#dlq-list tbody").innerHTML = list.map((m) => row(['<td class="msgid">' + esc(m.msgId) + "</td>", "<td>" + esc(m.originTopic) + "</td>", "<td>" + esc(m.tag) + "</td>",
      '<td class="n">' + m.reconsumeTimes + "</td>", '<td class="muted">' + esc(m.bodyPreview) + "</td>",
      '<td><button class="resend" data-group="' + esc(group) + '" data-msgid="' + esc(m.msgId) + '">resend</button></td>'])).join("") ||
      '<tr><td colspan="6" class="muted">no dead letters</td></tr>';
    $("#dlq-status").textContent = list.length + " dead letter(s) of " + group;
  } catch (e) { $("#dlq-status").textContent = e.message; }
}
$("#dlq").addEventListener("submit", (ev) => { ev.preventDefault(); showDeadLetters($("#dlq-group").value.trim()); });
$("#dlq-list").addEventListener("click", async (ev) => {
  const b = ev.target.closest("button.resend"); if (!b) return;
  try {
    const r = await api("/dashboard/api/dlq/resend", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ group: b.dataset.group, msgId: b.dataset.msgid }) });
    $("#dlq-status").textContent = "resent as " + r.msgId + " to " + r.topic;
    b.disabled = true; b.textContent = "resent";
  } catch (e) { $("#dlq-status").textContent = e.message; }
});
refresh(); setInterval(refresh, 2000);
</script>
</body>
</html>
`;
