import { createHash, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/**
 * The pubsub node and publish secret handed to a device at registration (XEP-0357 §5, "Enabling
 * Notifications"), made so that no table is needed to read them back. The node names the device: its
 * service, the account hash Conversations' app server sends (p2's `combineAndHash(bareJid, deviceId)`, see
 * https://github.com/iNPUTmice/p2) and the token; the tokens themselves live in `push_tokens`, where badges,
 * dead-token cleanup and the other ways of pushing find them. The secret is an HMAC of the domain and node
 * under a key derived from the component's password: the XMPP server, which stores it, is the only one
 * that can publish to the node; a node alone (or a made-up one) gets `forbidden`.
 */

export type DeviceService = "fcm" | "apns";

export interface DeviceNode {
  service: DeviceService;
  /** SHA-1 (hex) of `<bare JID>\0<device id>`: tells the app which of its accounts to wake. */
  account: string;
  token: string;
}

const VERSION = "v1";
const SECRET_CHARS = 24; // base64url: 144 bits, as p2's 18 random bytes

/** p2's `Utils.combineAndHash`: SHA-1 hex of the parts joined by NUL. */
export function accountHash(bareJid: string, deviceId: string): string {
  return createHash("sha1").update(`${bareJid}\0${deviceId}`, "utf8").digest("hex");
}

export function encodeNode(d: DeviceNode): string {
  return `${VERSION}.${d.service}.${d.account}.${d.token}`;
}

/** The device a node names, or undefined for anything we did not make. */
export function decodeNode(node: string): DeviceNode | undefined {
  const m = /^v1\.(fcm|apns)\.([0-9a-f]{40})\.([\x21-\x7e]{1,4096})$/.exec(node);
  if (!m) return undefined;
  return { service: m[1] as DeviceService, account: m[2] as string, token: m[3] as string };
}

/**
 * The key of a component's publish secrets: HKDF (RFC 5869) of its password, bound to the component's name.
 * A new password makes every secret handed out so far wrong: the servers disable those pushes and the
 * clients register again (docs/xmpp-clients.md).
 */
export function secretKey(password: string, component: string): Buffer {
  return Buffer.from(hkdfSync("sha256", password, "", `sidecars xep0357 publish secret ${component}`, 32));
}

export function publishSecret(key: Buffer, domain: string, node: string): string {
  return createHmac("sha256", key)
    .update(`${domain}\0${node}`, "utf8")
    .digest("base64url")
    .slice(0, SECRET_CHARS);
}

/** Whether `given` is the secret of `node` in `domain`, compared in constant time. */
export function secretMatches(key: Buffer, domain: string, node: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const expected = Buffer.from(publishSecret(key, domain, node));
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
