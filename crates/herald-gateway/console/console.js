// Herald's console: a static page whose every figure and action goes through the HTTP API
// (docs/http-api.md), with the API key the operator enters when api.keys are set. Data from
// the cluster is shown as text only, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 2000;
let key = sessionStorage.getItem("herald-api-key") ?? "";

async function api(path, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  if (key) headers.Authorization = `Bearer ${key}`;
  const r = await fetch(path, { ...init, headers });
  const text = await r.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {}
  $("key-needed").hidden = r.status !== 401;
  return { status: r.status, body };
}

const why = ({ status, body }) => `${status}: ${body?.error?.message ?? body}`;

function cell(row, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "n";
  row.append(td);
  return td;
}

function uptime(s) {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

async function refreshNodes() {
  const r = await api("/v1/info");
  if (r.status !== 200) throw new Error(why(r));
  const body = $("nodes").tBodies[0];
  const rows = [];
  const total = { connections: 0, channels: 0, subscriptions: 0 };
  for (const n of r.body.nodes) {
    const tr = document.createElement("tr");
    cell(tr, n.id);
    cell(tr, n.state).className = `state-${n.state}`;
    cell(tr, n.version);
    cell(tr, uptime(n.uptime_seconds), true);
    cell(tr, n.connections, true);
    cell(tr, n.channels, true);
    cell(tr, n.subscriptions, true);
    for (const k of Object.keys(total)) total[k] += n[k];
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  $("total-connections").textContent = total.connections;
  $("total-channels").textContent = total.channels;
  $("total-subscriptions").textContent = total.subscriptions;
}

async function refreshChannels() {
  const prefix = encodeURIComponent($("prefix").value);
  const r = await api(`/v1/channels?limit=200&prefix=${prefix}`);
  if (r.status !== 200) throw new Error(why(r));
  const rows = r.body.channels.map((c) => {
    const tr = document.createElement("tr");
    tr.className = "pick";
    tr.title = "use this channel below";
    cell(tr, c.channel);
    cell(tr, c.subscriptions ?? "", true);
    tr.onclick = () => {
      for (const id of ["presence-channel", "pub-channel", "watch-channel"]) $(id).value = c.channel;
    };
    return tr;
  });
  $("channels").tBodies[0].replaceChildren(...rows);
  $("channels-more").hidden = !r.body.next_cursor;
}

async function refresh() {
  try {
    await refreshNodes();
    await refreshChannels();
    $("status").textContent = `up to date at ${new Date().toLocaleTimeString()}`;
    $("status").className = "meta";
  } catch (e) {
    $("status").textContent = `cannot read the API: ${e.message}`;
    $("status").className = "warn";
  }
}

$("key").value = key;
$("key-form").onsubmit = (e) => {
  e.preventDefault();
  key = $("key").value.trim();
  sessionStorage.setItem("herald-api-key", key);
  refresh();
};
$("channels-form").onsubmit = (e) => e.preventDefault();
$("prefix").oninput = () => refreshChannels().catch(() => {});

$("presence-form").onsubmit = async (e) => {
  e.preventDefault();
  const channel = $("presence-channel").value.trim();
  const r = await api(`/v1/channels/${encodeURIComponent(channel)}/presence`);
  const list = $("presence-members");
  if (r.status !== 200) {
    list.replaceChildren();
    $("presence-result").textContent = why(r);
    return;
  }
  list.replaceChildren(
    ...r.body.members.map((m) => {
      const li = document.createElement("li");
      li.textContent = m.info === null ? m.user : `${m.user} ${JSON.stringify(m.info)}`;
      return li;
    }),
  );
  $("presence-result").textContent = `${r.body.members.length} member(s) of ${channel}`;
};

$("publish-form").onsubmit = async (e) => {
  e.preventDefault();
  let data;
  try {
    data = JSON.parse($("pub-data").value);
  } catch {
    $("pub-result").textContent = "the data is not JSON";
    return;
  }
  const body = { channel: $("pub-channel").value.trim(), data };
  const event = $("pub-event").value.trim();
  if (event) body.event = event;
  const r = await api("/v1/publish", { method: "POST", body: JSON.stringify(body) });
  $("pub-result").textContent =
    r.status === 200 ? `published: offset ${r.body.offset ?? "none"}, id ${r.body.message_id}` : why(r);
};

// Watching subscribes over the WebSocket listener, as any client does.
let watching = null;
function watchLine(text) {
  const log = $("watch-log");
  const div = document.createElement("div");
  div.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  log.append(div);
  while (log.childElementCount > 500) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

$("watch-form").onsubmit = (e) => {
  e.preventDefault();
  if (watching) watching.close();
  const channel = $("watch-channel").value.trim();
  const token = $("watch-token").value.trim();
  const url = new URL($("watch-url").value);
  if (token) url.searchParams.set("token", token);
  const ws = new WebSocket(url);
  watching = ws;
  $("watch-state").textContent = "connecting";
  ws.onopen = () => ws.send(JSON.stringify({ id: 1, subscribe: { channels: [channel] } }));
  ws.onmessage = (m) => {
    if (ws !== watching) return;
    const frame = JSON.parse(m.data);
    if (frame.id === 1) {
      const failed = frame.error ?? frame.ok?.failed?.[0];
      if (failed) {
        $("watch-state").textContent = `refused: ${failed.message ?? failed.reason ?? failed.code}`;
        return;
      }
      $("watch-state").textContent = `watching ${channel}`;
    } else if (frame.push) {
      const p = frame.push;
      const event = p.event ? ` ${p.event}` : "";
      watchLine(`#${p.offset ?? "-"}${event} ${JSON.stringify(p.data)}`);
    } else if (frame.gap) {
      watchLine(`gap: ${frame.gap.reason}`);
    }
  };
  ws.onclose = (c) => {
    if (ws === watching) $("watch-state").textContent = `closed (${c.code})`;
  };
};

api("/console/settings.json").then(({ body }) => {
  const scheme = body.tls ? "wss" : "ws";
  $("watch-url").value = `${scheme}://${location.hostname}:${body.websocket_port}/ws`;
});
refresh();
setInterval(refresh, REFRESH_MS);
