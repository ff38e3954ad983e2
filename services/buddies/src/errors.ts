import { defineErrors } from "#common/errors.ts";
import { commonErrors } from "#common/http/common-errors.ts";

/**
 * Every error the buddies service answers, each declared once (docs/architecture.md "Endpoints: declared
 * once"): the admin API and its keys (docs/buddies.md "Admin API"), and the HTTP hooks of the built-in kinds
 * (docs/buddies.md "HTTP hooks"). Handlers and built-in kinds throw `errors.x(…)`, never an HttpError of their
 * own; a third-party kind, which cannot import this file, may still throw common's HttpError. The entries of
 * the common layer (validation, body parsers, database, not_found) are spread in, so that this one list holds
 * every code the service can answer. A code may have several entries, never one entry two meanings.
 */

const ADMIN_REALM = 'Basic realm="xmpp-sidecars buddies admin", charset="UTF-8"';
const retryAfter = (s: number) => ({ "retry-after": String(s) });

export const errors = {
  ...commonErrors,
  ...defineErrors({
    // ---- who is calling (admin/admin-auth.ts) ------------------------------------------------------------
    noAdminKeys: {
      status: 401,
      code: "invalid_credentials",
      description:
        "no admin key is configured at all: the operator must make one; comes with `WWW-Authenticate: Basic`",
      message:
        "No admin key is configured: run `sidecars buddies admin-key <name>`, add the entry it prints to services.buddies.admins, reload.",
      headers: { "www-authenticate": ADMIN_REALM },
    },
    invalidAdminKey: {
      status: 401,
      code: "invalid_credentials",
      description: "no, malformed or unknown admin (or hook) key; comes with `WWW-Authenticate: Basic`",
      message: "Send an admin key: HTTP Basic `<name>:<key>` or `Authorization: Bearer <key>`.",
      headers: { "www-authenticate": ADMIN_REALM },
    },
    // browsers resend Basic credentials to any page that posts here: a state change from elsewhere is CSRF
    crossOrigin: {
      status: 403,
      code: "cross_origin",
      description: "a state-changing admin request from another origin than the admin page",
      message: "Admin actions are accepted only from the admin page itself.",
    },

    // ---- admin API (admin/routes.ts) ---------------------------------------------------------------------
    invalidJid: {
      status: 400,
      code: "invalid_jid",
      description: "not a buddy's bare JID (the message says why)",
      message: (problem: string) => problem,
    },
    domainNotServed: {
      status: 422,
      code: "domain_not_served",
      description: "a definition in a domain the buddies do not serve",
      message: (problem: string) => problem,
    },
    unknownKind: {
      status: 422,
      code: "unknown_kind",
      description: "a definition of a kind that is neither built in nor in `buddies.kindsDir`",
      message: (problem: string) => problem,
    },
    invalidOptions: {
      status: 422,
      code: "invalid_options",
      description: "options the kind's schema refuses, each problem named in the message",
      message: (problems: readonly string[]) => problems.join("; "),
    },
    definedInConfig: {
      status: 409,
      code: "defined_in_config",
      description: "a buddy defined in the config file cannot be deleted through the API",
      message: (jid: string, domain: string) =>
        `${jid} is defined in config: remove it from buddies.domains.${domain}.definitions and reload`,
    },
    ownerWithoutAddress: {
      status: 503,
      code: "owner_unreachable",
      description: "the runner that owns the buddy has no admin address this runner can reach",
      message: "The runner that owns this buddy has no reachable admin address; retry on that machine.",
    },
    ownerNotAnswering: {
      status: 503,
      code: "owner_unreachable",
      description: "the runner that owns the buddy did not answer the forwarded request",
      message: "The runner that owns this buddy did not answer; retry in a few seconds.",
    },

    // ---- users (admin/users-routes.ts) ------------------------------------------------------------------
    invalidUserJid: {
      status: 400,
      code: "invalid_jid",
      description: "not a user's bare JID `node@domain` (the message says why)",
      message: (problem: string) => problem,
    },
    unknownUserDomain: {
      status: 422,
      code: "domain_not_served",
      description: "a user of a domain that is not configured",
      message: (domain: string) => `${domain} is not a domain of \`domains\` in the config`,
    },
    userIsBuddy: {
      status: 409,
      code: "user_is_buddy",
      description: "the account is a buddy's login: remove the buddy first (the message says how)",
      message: (problem: string) => problem,
    },
    removalRunning: {
      status: 409,
      code: "removal_running",
      description: "another process is removing this user right now; retry after `Retry-After`",
      message: (problem: string) => problem,
      headers: retryAfter(10),
    },
    removalIncomplete: {
      status: 503,
      code: "removal_incomplete",
      description:
        "every row of the user is gone but some stored files could not be deleted (storage down): the removal is recorded and finishes when asked again",
      message: (problem: string) => problem,
      headers: retryAfter(30),
    },

    // ---- domains at runtime (admin/domains-routes.ts) ------------------------------------------------------
    invalidDomain: {
      status: 422,
      code: "invalid_domain",
      description:
        "a domain entry that the config schema, the checks across the config or its authenticator refuse, each problem named in the message",
      message: (problems: readonly string[]) => problems.join("; "),
    },
    domainInConfig: {
      status: 409,
      code: "defined_in_config",
      description: "a domain defined in the config files cannot be removed through the API",
      message: (name: string) =>
        `${name} is defined in the config files: remove it from \`domains\` there and reload`,
    },
    domainInUse: {
      status: 409,
      code: "domain_in_use",
      description: "the config names the domain (an API key, a legacy app, buddies): change that first",
      message: (problems: readonly string[]) => problems.join("; "),
    },

    // ---- hooks (admin/routes.ts) -------------------------------------------------------------------------
    buddyNotRunning: {
      status: 503,
      code: "buddy_offline",
      description: "the buddy runs nowhere in the cluster; retry after `Retry-After`",
      message: (jid: string) => `${jid} is not running; start it, or retry once it is online.`,
      headers: retryAfter(10),
    },
    buddyNotOnline: {
      status: 503,
      code: "buddy_offline",
      description: "the buddy is starting or reconnecting; retry after `Retry-After`",
      message: (jid: string, state: string) => `${jid} is ${state}; retry once it is online.`,
      headers: retryAfter(10),
    },

    // ---- hooks of the built-in kinds (kinds/notify.ts, kinds/recipients.ts, kinds/zabbix.ts) -------------
    noActionRecipient: {
      status: 409,
      code: "no_recipient",
      description: "notification-action: the buddy has no `actionsTo` to tell",
      message: (buddyJid: string) => `${buddyJid} has nobody to tell: set options.actionsTo`,
    },
    noAlertRecipient: {
      status: 400,
      code: "no_recipient",
      description: 'zabbix: no "to" in the alert and none in the buddy\'s options',
      message: 'no "to" in the body and none in the buddy\'s options.to: set one',
    },
    // a room the buddy is not in would take the message and drop it: refused before anything is sent
    notInRoom: {
      status: 409,
      code: "not_in_room",
      description: "a room the buddy is not in: add it to the buddy's rooms, or send to a user",
      message: (buddyJid: string, room: string, rooms: readonly string[]) =>
        `${buddyJid} is not in the room ${room} (${rooms.length ? `it is in ${rooms.join(", ")}` : "it is in no room"}): add the room to the buddy's rooms, or send to a user`,
    },
  }),
};
