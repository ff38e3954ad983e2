// What the admin page's modules share (admin.js: buddies; console.js: users, domains, lockouts, retention):
// the same-origin API call, DOM building with textContent only (never HTML), errors shown in a role="alert"
// box, relative times.

export const API = "/api";
export const $ = (id) => document.getElementById(id);

/** Calls the admin API; throws an Error carrying the API's own message on a non-2xx answer. */
export async function api(method, path, body) {
  const init = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(API + path, init);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(data?.error?.message ?? `${method} ${API}${path} failed: HTTP ${res.status}`);
  return data;
}

/** Shows an error in a role="alert" box: the page's banner, or the open dialog's own. */
export function showError(box, err) {
  (box.querySelector("span") ?? box).textContent = err instanceof Error ? err.message : String(err);
  box.hidden = false;
}

export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export function button(label, onClick) {
  const b = el("button", { type: "button", textContent: label });
  b.addEventListener("click", onClick);
  return b;
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const UNITS = { day: 86400, hour: 3600, minute: 60, second: 1 };
export function ago(iso) {
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const [unit, size] = Object.entries(UNITS).find(([, size]) => Math.abs(s) >= size) ?? ["second", 1];
  return Number.isNaN(s) ? "" : relative.format(Math.round(s / size), unit);
}
