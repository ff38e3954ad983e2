// The buddies admin page: plain DOM, no framework, no build step. Everything shown comes from the admin API
// of the same origin (the browser resends its Basic credentials) and is written with textContent, never
// parsed as HTML. The Content-Security-Policy of page.ts allows nothing inline and nothing from elsewhere.
// Loaded as a module: strict, deferred, and nothing leaks into the global scope.

import { $, API, ago, api, button, el, showError } from "./common.js";

const POLL_MS = 5000;

let snapshot = { buddies: [], runners: [] };
let pollTimer = null;
let logsJid = null;

const buddyPath = (jid, action = "") => `/buddies/${encodeURIComponent(jid)}${action && `/${action}`}`;

// ---- rendering ----

function buildRow(b) {
  const tr = el("tr");
  tr.dataset.jid = b.jid;
  tr.dataset.sig = JSON.stringify(b);
  const cell = (text, className = "", title = "") => el("td", { textContent: text, className, title });
  const jid = el("td", {}, el("span", { className: "jid", textContent: b.jid }));
  if (b.source === "config") jid.append(" ", el("span", { className: "tag", textContent: "config" }));
  const actions = el(
    "td",
    { className: "actions" },
    button("Restart", () => act(b.jid, "restart")),
    b.stopped ? button("Start", () => act(b.jid, "start")) : button("Stop", () => act(b.jid, "stop")),
    button("Logs", () => openLogs(b.jid)),
    button("Edit", () => openEdit(b)),
    button("Remove", () => remove(b.jid)),
  );
  tr.append(
    jid,
    cell(b.kind),
    el("td", {}, el("span", { className: `state state-${b.state}`, textContent: b.state })),
    cell(ago(b.stateSince), "since", b.stateSince),
    cell(b.lastError ?? "", "error", b.lastError ?? ""),
    cell(b.messagesIn.toLocaleString("en"), "num"),
    cell(b.messagesOut.toLocaleString("en"), "num"),
    cell(b.reconnects.toLocaleString("en"), "num"),
    cell(b.owner ? `${b.owner.host}:${b.owner.pid}` : "—"),
    actions,
  );
  return tr;
}

function render(data) {
  snapshot = data;
  const { buddies, runners } = data;
  const online = buddies.filter((b) => b.state === "online").length;
  const live = runners.filter((r) => r.live).length;
  $("summary").textContent =
    `${online} online of ${buddies.length} ${buddies.length === 1 ? "buddy" : "buddies"} · ` +
    `${live} of ${runners.length} ${runners.length === 1 ? "runner" : "runners"} live`;
  $("empty").hidden = buddies.length > 0;

  // Rebuild only the rows that changed, in place, so a focused button elsewhere keeps its focus.
  const tbody = $("buddies").tBodies[0];
  const rows = [...tbody.rows];
  const sameOrder = rows.length === buddies.length && rows.every((r, i) => r.dataset.jid === buddies[i].jid);
  if (!sameOrder) return tbody.replaceChildren(...buddies.map(buildRow));
  buddies.forEach((b, i) => {
    if (rows[i].dataset.sig !== JSON.stringify(b)) rows[i].replaceWith(buildRow(b));
  });
}

function tickTimes() {
  for (const td of document.querySelectorAll("td.since")) td.textContent = ago(td.title);
}

// ---- live updates: SSE, with polling while the stream is down ----

async function refresh() {
  try {
    render(await api("GET", "/buddies"));
  } catch (err) {
    showError($("error"), err);
  }
}

function setLive(on) {
  $("paused").hidden = on;
  if (on && pollTimer) {
    clearInterval(pollTimer);
    pollTimer = null;
  } else if (!on && !pollTimer) {
    pollTimer = setInterval(refresh, POLL_MS);
  }
}

function connect() {
  const events = new EventSource(`${API}/events`);
  events.addEventListener("open", () => setLive(true));
  events.addEventListener("buddies", (e) => {
    setLive(true);
    render(JSON.parse(e.data));
  });
  // the service could not read the cluster's state: poll, and show what the API says meanwhile
  events.addEventListener("unavailable", () => setLive(false));
  events.addEventListener("error", () => {
    setLive(false);
    // the browser retries by itself unless the answer was not a stream; then we open a new one
    if (events.readyState === EventSource.CLOSED) setTimeout(connect, POLL_MS);
  });
}

// ---- actions ----

function mergeBuddy(buddy) {
  const buddies = snapshot.buddies.map((b) => (b.jid === buddy.jid ? buddy : b));
  if (!buddies.some((b) => b.jid === buddy.jid)) buddies.push(buddy);
  render({ ...snapshot, buddies });
}

async function act(jid, action) {
  const row = document.querySelector(`tr[data-jid="${CSS.escape(jid)}"]`);
  for (const b of row?.querySelectorAll("button") ?? []) b.disabled = true;
  try {
    const { buddy } = await api("POST", buddyPath(jid, action), {});
    $("error").hidden = true;
    mergeBuddy(buddy);
  } catch (err) {
    showError($("error"), err);
  } finally {
    // a row an update has not rebuilt meanwhile still has its buttons disabled
    const buddy = snapshot.buddies.find((b) => b.jid === jid);
    if (row?.isConnected && buddy) row.replaceWith(buildRow(buddy));
  }
}

async function remove(jid) {
  if (!confirm(`Remove ${jid}? Its runner disconnects it and it is deleted from the table.`)) return;
  try {
    await api("DELETE", buddyPath(jid));
    $("error").hidden = true;
    render({ ...snapshot, buddies: snapshot.buddies.filter((b) => b.jid !== jid) });
  } catch (err) {
    showError($("error"), err);
  }
}

async function openLogs(jid) {
  logsJid = jid;
  $("logs-title").textContent = `Logs of ${jid}`;
  $("logs-lines").replaceChildren();
  if (!$("logs").open) $("logs").showModal();
  await loadLogs();
}

async function loadLogs() {
  $("logs-error").hidden = true;
  try {
    const { lines } = await api("GET", buddyPath(logsJid, "logs"));
    const items = lines.map((l) =>
      el(
        "li",
        { className: `level-${l.level}` },
        el("time", { dateTime: l.time, textContent: new Date(l.time).toLocaleTimeString("en-GB") }),
        el("span", { className: "level", textContent: l.level }),
        el("span", { className: "msg", textContent: l.msg }),
      ),
    );
    $("logs-lines").replaceChildren(...(items.length ? items : [el("li", { textContent: "No log lines." })]));
  } catch (err) {
    showError($("logs-error"), err);
  }
}

async function loadKinds(current) {
  const select = $("edit-form").elements.kind;
  const { kinds } = await api("GET", "/kinds");
  if (current && !kinds.some((k) => k.name === current))
    kinds.push({ name: current, description: "unknown kind" });
  select.replaceChildren(
    ...kinds.map((k) => el("option", { value: k.name, textContent: `${k.name} — ${k.description}` })),
  );
  if (current) select.value = current;
}

// The add/edit dialog. Password, options and nick are filled in only when the buddy carries them
// (`buddy.definition` or the buddy itself); otherwise the operator enters them again.
async function openEdit(buddy) {
  const form = $("edit-form");
  form.reset();
  const editing = buddy?.jid ?? null;
  $("edit-title").textContent = editing ? `Edit ${editing}` : "Add buddy";
  $("edit-error").hidden = true;
  const f = form.elements;
  f.jid.value = editing ?? "";
  f.jid.readOnly = Boolean(editing);
  f.rooms.value = (buddy?.rooms ?? []).join("\n");
  const def = buddy?.definition ?? buddy ?? {};
  if (def.nick) f.nick.value = def.nick;
  if (def.options) f.options.value = JSON.stringify(def.options, null, 2);
  if (def.password) {
    f.passwordFrom.value = "env" in def.password ? "env" : "file";
    f.passwordRef.value = def.password.env ?? def.password.file ?? "";
  }
  $("edit").showModal();
  try {
    await loadKinds(buddy?.kind);
  } catch (err) {
    showError($("edit-error"), err);
  }
}

async function saveEdit(event) {
  event.preventDefault();
  const f = $("edit-form").elements;
  try {
    let options;
    try {
      options = JSON.parse(f.options.value || "{}");
    } catch (err) {
      throw new Error(`Options: not valid JSON (${err.message}).`);
    }
    if (options === null || typeof options !== "object" || Array.isArray(options)) {
      throw new Error("Options: expected a JSON object such as {}.");
    }
    const body = {
      kind: f.kind.value,
      password: { [f.passwordFrom.value]: f.passwordRef.value.trim() },
      options,
      rooms: f.rooms.value.split(/\s+/).filter(Boolean),
    };
    if (f.nick.value.trim()) body.nick = f.nick.value.trim();
    const { buddy } = await api("PUT", buddyPath(f.jid.value.trim()), body);
    $("edit").close();
    $("error").hidden = true;
    mergeBuddy(buddy);
  } catch (err) {
    showError($("edit-error"), err);
  }
}

// ---- wiring (a module script runs once the document is parsed) ----

$("error-close").addEventListener("click", () => $("error").setAttribute("hidden", ""));
$("add").addEventListener("click", () => openEdit(null));
$("edit-form").addEventListener("submit", saveEdit);
$("edit-cancel").addEventListener("click", () => $("edit").close());
$("logs-refresh").addEventListener("click", loadLogs);
$("logs-close").addEventListener("click", () => $("logs").close());
setInterval(tickTimes, 15000);
refresh();
connect();
