import { defineAuthenticator } from "../src/authenticators/authenticator.ts";
import http, { createHttpAuthenticator } from "../src/authenticators/http-authenticator.ts";

/**
 * Example domain module (the legacy "domain auth file"): the company backend knows its people by e-mail
 * address, which cannot be an XMPP user part as it is, so the apps log in as `joe\40example.com`
 * (XEP-0106 escaping; the legacy apps wrote `joe#example.com`). This module turns the user part back into the
 * address and asks the backend through the generic http authenticator, with the same options (`url`,
 * `userExistsUrl`, `timeoutMs`, `headers`, `tls`, `allowTargets`), checked by the same schema at start.
 *
 * Buddies listed in the domain's config never reach this module: they are checked against web_users.
 */
const toAddress = (node: string) => node.replace(/\\40/g, "@").replace(/#/g, "@");

export default defineAuthenticator({
  kind: "module",
  summary: "example.org: the company backend, asked by e-mail address",
  options: http.options,
  create(options, deps) {
    const backend = createHttpAuthenticator(options, deps);
    return {
      kind: "module",
      checkPassword: (jid, password) =>
        backend.checkPassword({ ...jid, node: toAddress(jid.node) }, password),
      userExists: (jid) => backend.userExists({ ...jid, node: toAddress(jid.node) }),
    };
  },
});
