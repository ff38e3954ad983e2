// The operator console beside the buddies (docs/operations.md "Operator console"): users (search, details,
// disable/enable, unlock, export, remove), domains (list, add or replace a database domain as JSON, remove),
// lockouts (the failure counters in force, one user's) and the retention status. Same rules as admin.js:
// the same origin's admin API only, text set with textContent, nothing inline.

import { $, API, ago, api, button, el, showError } from "./common.js";

const userPath = (jid, action = "") => `/users/${encodeURIComponent(jid)}${action && `/${action}`}`;
const domainPath = (name) => `/domains/${encodeURIComponent(name)}`;

function notice(text) {
  $("error").hidden = true;
  $("notice").textContent = text;
  $("notice").hidden = false;
}

async function attempt(fn) {
  try {
    await fn();
  } catch (err) {
    $("notice").hidden = true;
    showError($("error"), err);
  }
}

// ---- sections: one shown at a time, chosen by the URL's fragment ----

const loaders = {
  users: () => loadUsers(),
  domains: () => loadDomains(),
  lockouts: () => loadLockouts(),
  retention: () => loadRetention(),
};

function show(name) {
  const wanted = document.querySelector(`section[data-section="${CSS.escape(name)}"]`) ? name : "buddies";
  for (const s of document.querySelectorAll("body > section[data-section]")) {
    s.hidden = s.dataset.section !== wanted;
  }
  for (const a of document.querySelectorAll("nav a[data-section]")) {
    if (a.dataset.section === wanted) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $("notice").hidden = true;
  loaders[wanted]?.();
}

// ---- users ----

async function loadUsers() {
  await attempt(async () => {
    const search = $("users-search").elements.search.value.trim();
    const { users } = await api(
      "GET",
      `/users?limit=100${search ? `&search=${encodeURIComponent(search)}` : ""}`,
    );
    $("users-empty").hidden = users.length > 0;
    $("users").tBodies[0].replaceChildren(...users.map(userRow));
  });
}

function userRow(u) {
  const tr = el("tr");
  tr.dataset.jid = u.jid;
  const state = u.disabled ? "disabled" : "active";
  const exportLink = el("a", {
    href: `${API}${userPath(u.jid, "export")}`,
    download: `${u.jid}.json`,
    textContent: "Export",
    className: "button-link",
  });
  tr.append(
    el("td", {}, el("span", { className: "jid", textContent: u.jid })),
    el("td", {}, el("span", { className: `state state-${state}`, textContent: state })),
    el("td", { textContent: ago(u.createdAt), title: u.createdAt }),
    el(
      "td",
      { className: "actions" },
      button("Details", () => details(u.jid)),
      u.disabled
        ? button("Enable", () => setDisabled(u.jid, "enable"))
        : button("Disable", () => setDisabled(u.jid, "disable")),
      button("Unlock", () => unlock(u.jid)),
      exportLink,
      button("Remove", () => removeUser(u.jid)),
    ),
  );
  return tr;
}

async function details(jid) {
  await attempt(async () => {
    const { user } = await api("GET", userPath(jid));
    $("user-details-title").textContent = user.jid;
    const items = [
      ["Created", user.profile ? new Date(user.profile.createdAt).toISOString() : "no account (data only)"],
      ["Disabled", user.profile?.disabledAt ? new Date(user.profile.disabledAt).toISOString() : "no"],
      ["Password kept as", user.profile?.credentials.join(", ") || "—"],
      ["Avatar", user.avatar ?? "none"],
      ["Attachments", `${(user.attachmentBytes / 1048576).toFixed(1)} MiB`],
      ...Object.entries(user.rows).map(([table, n]) => [`Rows in ${table}`, String(n)]),
    ];
    if (user.removal)
      items.push(["Removal", `${user.removal.state}, ${user.removal.pendingFiles} file(s) left`]);
    $("user-details-list").replaceChildren(
      ...items.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: v })]),
    );
    $("user-details").hidden = false;
  });
}

async function setDisabled(jid, action) {
  await attempt(async () => {
    await api("POST", userPath(jid, action), {});
    notice(`${jid} ${action === "disable" ? "disabled: refused everywhere from now on" : "enabled"}.`);
    await loadUsers();
  });
}

async function unlock(jid) {
  await attempt(async () => {
    const { forgotten } = await api("POST", userPath(jid, "unlock"), {});
    notice(`${jid}: ${forgotten} failure counter(s) forgotten.`);
  });
}

async function removeUser(jid) {
  const ok = confirm(
    `Remove ${jid} and everything of theirs (tokens, locations, attachments, avatar…)? This cannot be undone: export first if they asked for their data.`,
  );
  if (!ok) return;
  await attempt(async () => {
    const result = await api("DELETE", userPath(jid));
    notice(`${jid} removed (${result.status ?? "done"}).`);
    $("user-details").hidden = true;
    await loadUsers();
  });
}

// ---- domains ----

async function loadDomains() {
  await attempt(async () => {
    const { domains, invalid, problems } = await api("GET", "/domains");
    $("domains").tBodies[0].replaceChildren(...domains.map(domainRow));
    $("domain-problems").replaceChildren(
      ...problems.map((p) => el("li", { textContent: p })),
      ...invalid.map((i) => el("li", { textContent: `${i.name} (database): ${i.problems.join("; ")}` })),
    );
  });
}

function domainRow(d) {
  const tr = el("tr");
  tr.dataset.domain = d.name;
  const format =
    d.config.passwordFormat === "scram" ? `scram (${d.config.scramFormat})` : d.config.passwordFormat;
  const actions = el("td", { className: "actions" });
  if (d.source === "database") {
    actions.append(
      button("Edit", () => editDomain(d)),
      button("Remove", () => removeDomain(d.name)),
    );
  } else {
    actions.append(el("span", { className: "tag", textContent: "edit config/<env>.json" }));
  }
  tr.append(
    el("td", {}, el("span", { className: "jid", textContent: d.name })),
    el("td", { textContent: d.source }),
    el("td", { textContent: format }),
    el("td", { textContent: d.config.authenticator?.kind ?? "" }),
    actions,
  );
  return tr;
}

function editDomain(d) {
  const f = $("domain-form").elements;
  $("domain-form").reset();
  $("domain-error").hidden = true;
  $("domain-edit-title").textContent = d ? `Edit ${d.name}` : "Add domain";
  f.name.value = d?.name ?? "";
  f.name.readOnly = Boolean(d);
  if (d) f.entry.value = JSON.stringify(d.entry ?? d.config, null, 2);
  $("domain-edit").showModal();
}

async function saveDomain(event) {
  event.preventDefault();
  const f = $("domain-form").elements;
  try {
    let entry;
    try {
      entry = JSON.parse(f.entry.value || "{}");
    } catch (err) {
      throw new Error(`Entry: not valid JSON (${err.message}).`);
    }
    const name = f.name.value.trim();
    if (!name) throw new Error("Domain: give its name, such as chat.example.org.");
    const answer = await api("PUT", domainPath(name), entry);
    $("domain-edit").close();
    notice(answer.warning ?? `${name} saved: every process serves it within a second.`);
    await loadDomains();
  } catch (err) {
    showError($("domain-error"), err);
  }
}

async function removeDomain(name) {
  if (!confirm(`Remove the domain ${name}? Its users can no longer log in (their data stays).`)) return;
  await attempt(async () => {
    await api("DELETE", domainPath(name));
    notice(`${name} removed.`);
    await loadDomains();
  });
}

// ---- lockouts ----

let lockoutJid = null;

async function loadLockouts() {
  await attempt(async () => {
    const { lockouts: l, guard } = await api("GET", "/lockouts");
    $("lockouts-summary").textContent =
      `${l.blockedPairs} user/address pair(s) and ${l.blockedAddresses} address(es) refused now` +
      (l.lastBlockEnds ? ` (the last until ${new Date(l.lastBlockEnds).toISOString()})` : "") +
      `; ${l.slowedUsers} user(s) with wrong passwords from the XMPP server in the window. ` +
      `An address is refused for ${guard.lockSeconds} s after ${guard.maxFailures} wrong passwords for one user, ` +
      `or ${guard.maxFailuresPerAddress} for any, within ${guard.windowSeconds} s.`;
  });
}

async function lookUpLockout(event) {
  event.preventDefault();
  const jid = $("lockouts-lookup").elements.jid.value.trim();
  await attempt(async () => {
    const u = await api("GET", `/lockouts/${encodeURIComponent(jid)}`);
    lockoutJid = u.jid;
    $("lockouts-user-text").textContent =
      `${u.jid}: refused from ${u.blockedAddresses} address(es)` +
      (u.blockedUntil ? ` until ${new Date(u.blockedUntil).toISOString()}` : "") +
      `; wrong passwords from ${u.failingAddresses} address(es); ${u.serverFailures} from the XMPP server.`;
    $("lockouts-user").hidden = false;
  });
}

async function unlockLookedUp() {
  if (!lockoutJid) return;
  await unlock(lockoutJid);
  await loadLockouts();
}

// ---- retention ----

async function loadRetention() {
  await attempt(async () => {
    const { schedule, kinds, runs } = await api("GET", "/retention");
    $("retention-schedule").textContent =
      `Purged on the schedule ${schedule} (cron, UTC), once for the cluster.`;
    $("retention-kinds").tBodies[0].replaceChildren(
      ...kinds.map((k) =>
        el(
          "tr",
          {},
          el("td", { textContent: k.kind }),
          el("td", { textContent: k.forever ? "for ever" : k.keep }),
        ),
      ),
    );
    $("retention-empty").hidden = runs.length > 0;
    $("retention-runs").tBodies[0].replaceChildren(
      ...runs.map((r) => {
        const total = Object.values(r.deleted).reduce((n, v) => n + v, 0);
        const detail = r.error
          ? `failed: ${r.error}`
          : Object.entries(r.deleted)
              .filter(([, n]) => n > 0)
              .map(([t, n]) => `${t} ${n}`)
              .join(", ") || "nothing past its age";
        return el(
          "tr",
          { className: r.error ? "failed" : "" },
          el("td", { textContent: ago(r.startedAt), title: r.startedAt }),
          el("td", { textContent: r.trigger === "schedule" ? "schedule" : "sidecars purge" }),
          el("td", { className: "num", textContent: total.toLocaleString("en") }),
          el("td", { textContent: detail }),
        );
      }),
    );
  });
}

// ---- wiring ----

$("users-search").addEventListener("submit", (e) => {
  e.preventDefault();
  loadUsers();
});
$("domain-add").addEventListener("click", () => editDomain(null));
$("domain-form").addEventListener("submit", saveDomain);
$("domain-cancel").addEventListener("click", () => $("domain-edit").close());
$("lockouts-lookup").addEventListener("submit", lookUpLockout);
$("lockouts-unlock").addEventListener("click", unlockLookedUp);
window.addEventListener("hashchange", () => show(location.hash.slice(1)));
show(location.hash.slice(1));
