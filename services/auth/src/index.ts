/**
 * The auth service's public entry: what the other apps of this repository may use of it. http-utility
 * embeds the login core to check app callers (HTTP Basic with the XMPP password); the CLI clears lockouts
 * and serves ejabberd's extauth protocol. Everything else under services/auth/src is the service's own.
 */
export { type AppLogin, type AuthApi, type AuthCore, createAuthCore } from "./core/auth-core.ts";
export { clearLoginFailures } from "./core/brute-force-guard.ts";
export { runExtauth } from "./extauth.ts";
