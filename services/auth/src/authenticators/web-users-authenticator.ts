import { z } from "zod";
import { sameSecret, verifyNothing, verifyPassword } from "#common/credentials/scram.ts";
import * as webUsers from "#common/users/web-users.ts";
import { type Authenticator, type AuthenticatorDeps, defineAuthenticator } from "./authenticator.ts";

/** The web_users table (the default kind, and always the one for a domain's buddies). */
export default defineAuthenticator({
  kind: "web_users",
  summary: "the web_users table of this service's database",
  // it takes none: an option written here (a url meant for `http`) is refused, not silently ignored
  options: z.object({}).strict(),
  create: (_options, deps) => createWebUsersAuthenticator(deps),
});

/** Also the authenticator of every domain's buddies, whatever the domain's kind (registry.ts). */
export function createWebUsersAuthenticator(deps: AuthenticatorDeps): Authenticator {
  const { pool, domainConfig, log } = deps;
  return {
    kind: "web_users",
    // every "no" spends a derivation with the domain's parameters, as a wrong password for a hashed row does:
    // how long the answer takes does not tell which users exist (docs/security.md "Equal timing")
    async checkPassword(jid, password) {
      const row = await webUsers.findUser(pool, jid);
      const no = async (reason: "unknown_user" | "disabled" | "bad_password") => {
        await verifyNothing(password, {
          iterations: domainConfig.scramIterations,
          hashes: domainConfig.scramHashes,
        });
        return { ok: false, reason } as const;
      };
      if (!row) return no("unknown_user");
      if (row.disabled) {
        // "disabled" only to the right password: to anyone else a disabled account is a wrong password, so
        // the app API's 403 account_disabled tells no stranger which accounts exist and are disabled
        if (row.scram) {
          return {
            ok: false,
            reason: (await verifyPassword(password, row.scram)) ? "disabled" : "bad_password",
          };
        }
        return row.token !== null && sameSecret(password, row.token)
          ? { ok: false, reason: "disabled" }
          : no("bad_password");
      }
      if (row.scram) {
        return (await verifyPassword(password, row.scram))
          ? { ok: true }
          : { ok: false, reason: "bad_password" };
      }
      if (row.token !== null && sameSecret(password, row.token)) {
        // a legacy row: give it SCRAM data now, so its cleartext can go (unless the domain keeps it)
        webUsers
          .upgradeLegacyRow(pool, jid, row.token, domainConfig)
          .catch((err: Error) => log.warn({ err: err.message }, "could not rehash a legacy row"));
        return { ok: true };
      }
      return no("bad_password");
    },
    userExists: (jid) => webUsers.userExists(pool, jid),
    async getSecret(jid) {
      const row = await webUsers.findUser(pool, jid);
      if (!row || row.disabled) return undefined;
      if (!row.scram && row.token !== null && domainConfig.passwordFormat === "scram") {
        // a legacy row read by a scram domain (MongooseIM's get_password): derive its SCRAM data once and keep
        // it, rather than at every login with a new salt each time
        const scram = await webUsers
          .upgradeLegacyRow(pool, jid, row.token, domainConfig)
          .catch((err: Error) => {
            log.warn({ err: err.message }, "could not rehash a legacy row");
            return undefined;
          });
        if (scram) return { ...(domainConfig.keepCleartext ? { cleartext: row.token } : {}), scram };
      }
      return {
        ...(row.token !== null ? { cleartext: row.token } : {}),
        ...(row.scram ? { scram: row.scram } : {}),
      };
    },
    setPassword: (jid, secret) => webUsers.setPassword(pool, jid, secret, domainConfig),
    register: (jid, secret) => webUsers.addUser(pool, jid, secret, domainConfig),
    removeUser: (jid) => webUsers.removeUser(pool, jid),
  };
}
