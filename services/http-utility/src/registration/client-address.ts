import { isIPv4, isIPv6 } from "node:net";
import type { Request } from "express";

/**
 * The client a per-address limit counts: the IPv4 address, or the /64 of an IPv6 address. One subscriber
 * is routed a whole /64 at least (RFC 6177, RFC 7934 "one /64 per host"), so counting single IPv6 addresses
 * would hand anyone 2^64 fresh budgets. An IPv4-mapped IPv6 address counts as its IPv4 address.
 */
export function clientKey(address: string | undefined): string {
  if (address === undefined || address === "") return "unknown";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(address)) return address;
  const bare = address.replace(/%.*$/, ""); // zone index (fe80::1%eth0)
  if (!isIPv6(bare)) return address;
  const [head = "", tail] = bare.split("::") as [string, string | undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups =
    tail === undefined ? headGroups : [...headGroups, ...Array(missing).fill("0"), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

/** The client of a request: express's `req.ip` (which honours `trust proxy`), as clientKey counts it. */
export const clientOf = (req: Request): string => clientKey(req.ip ?? req.socket.remoteAddress);
